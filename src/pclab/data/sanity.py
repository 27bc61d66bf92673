"""Check real data sets against known facts (not part of the test suite: needs the data).

Run ``python -m pclab.data.sanity [NAME ...]`` (default: mnist fashion-mnist). For each
set it loads the verified uint8 arrays (fetching and caching them if needed), prints the
time taken, sizes, class counts, and the mean/std of the training pixels in 0..255, and
compares them with the published values below. The exit status is 1 if any differs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from pclab.data.fashion_mnist import load_fashion_mnist_arrays
from pclab.data.mnist import load_mnist_arrays
from pclab.data.normalise import pixel_stats

# name -> (loader, n_train, n_test, train pixel mean, train pixel std, per-class train count or None)
FACTS: dict[str, tuple[Callable[[], dict[str, np.ndarray]], int, int, float, float, int | None]] = {
    "mnist": (load_mnist_arrays, 60_000, 10_000, 33.318, 78.567, None),
    "fashion-mnist": (load_fashion_mnist_arrays, 60_000, 10_000, 72.940, 90.021, 6000),
}


def check(name: str) -> bool:
    """Load ``name``, print its statistics, and return whether they match `FACTS`."""
    loader, n_train, n_test, mean, std, per_class = FACTS[name]
    start = time.perf_counter()
    arrays = loader()
    seconds = time.perf_counter() - start
    m, s = (255 * v for v in pixel_stats(arrays["x_train"], 255, per_channel=False))
    counts = np.bincount(arrays["y_train"], minlength=10)
    print(f"{name}: loaded in {seconds:.3f} s; train {arrays['x_train'].shape}, test {arrays['x_test'].shape}")
    print(f"  train pixel mean {m:.3f} (expected {mean}), std {s:.3f} (expected {std})")
    print(f"  train class counts {counts.tolist()}")
    ok = (
        arrays["x_train"].shape[0] == n_train
        and arrays["x_test"].shape[0] == n_test
        and abs(m - mean) < 5e-4
        and abs(s - std) < 5e-4
        and (per_class is None or bool(np.all(counts == per_class)))
    )
    print("  OK" if ok else "  MISMATCH")
    return ok


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(FACTS)
    unknown = [n for n in names if n not in FACTS]
    if unknown:
        print(f"unknown name(s) {unknown}; valid: {list(FACTS)}", file=sys.stderr)
        return 2
    return 0 if all([check(n) for n in names]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
