"""Synthetic data sets: a random teacher network, Gaussian blobs, and regression teachers.

Randomness comes from NumPy's PCG64 generator seeded by an integer (or by the bits of a
JAX key), split with `numpy.random.SeedSequence` into independent streams for the
teacher, the training inputs, the test inputs and the label calibration. So the teacher and
the test set do not change when ``n_train`` does, and results do not depend on the JAX
version or backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pclab.data._checks import check_float, check_int

ACTIVATIONS = {
    "linear": lambda h: h,
    "tanh": np.tanh,
    "relu": lambda h: np.maximum(h, 0.0),
}
_CALIBRATION_SAMPLES = 20_000
_CALIBRATION_STEPS = 200


def _seed_sequence(key_or_seed: Any) -> np.random.SeedSequence:
    """A SeedSequence from a non-negative int seed or a JAX PRNG key (typed or raw uint32)."""
    if isinstance(key_or_seed, (int, np.integer)) and not isinstance(key_or_seed, bool):
        return np.random.SeedSequence(check_int("seed", key_or_seed, minimum=0))
    try:
        import jax

        key = key_or_seed
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        bits = np.asarray(key)
    except (AttributeError, TypeError) as err:
        raise ValueError(f"key_or_seed: expected an int >= 0 or a JAX key, got {key_or_seed!r}") from err
    if bits.dtype != np.uint32:
        raise ValueError(f"key_or_seed: expected an int >= 0 or a JAX key, got dtype {bits.dtype}")
    return np.random.SeedSequence([int(b) for b in bits.ravel()])


def _teacher_logits(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = np.tanh(x @ params["w1"].T / np.sqrt(x.shape[1]) + params["b1"])
    return h @ params["w2"].T / np.sqrt(h.shape[1]) + params["b2"]


def teacher_classification(
    *,
    num_classes: int = 10,
    dim: int = 20,
    n_train: int = 10_000,
    n_test: int = 2_000,
    hidden: int = 64,
    seed: int = 0,
    balance: bool = True,
) -> dict[str, np.ndarray]:
    """Inputs ``x ~ N(0, I_dim)`` labelled by the argmax of a fixed random tanh network.

    The teacher is ``logits = W2 tanh(W1 x / sqrt(dim) + b1) / sqrt(hidden) + b2`` with
    standard normal ``W1 (hidden, dim)``, ``b1``, ``W2 (num_classes, hidden)``. If
    ``balance``, ``b2`` is tuned on a separate calibration sample so that every class has
    about the same frequency; otherwise ``b2 = 0``.

    Returns:
        ``x_train (n_train, dim) float32``, ``y_train (n_train,) int64``, ``x_test``, ``y_test``.
    """
    num_classes = check_int("num_classes", num_classes, minimum=2)
    dim = check_int("dim", dim, minimum=1)
    n_train = check_int("n_train", n_train, minimum=1)
    n_test = check_int("n_test", n_test, minimum=0)
    hidden = check_int("hidden", hidden, minimum=1)
    teacher_ss, train_ss, test_ss, calib_ss = _seed_sequence(seed).spawn(4)
    rng = np.random.default_rng(teacher_ss)
    params = {
        "w1": rng.standard_normal((hidden, dim)),
        "b1": rng.standard_normal(hidden),
        "w2": rng.standard_normal((num_classes, hidden)),
        "b2": np.zeros(num_classes),
    }
    if balance:
        logits = _teacher_logits(params, np.random.default_rng(calib_ss).standard_normal((_CALIBRATION_SAMPLES, dim)))
        for _ in range(_CALIBRATION_STEPS):  # push up rare classes, down frequent ones
            freq = np.bincount(np.argmax(logits + params["b2"], axis=1), minlength=num_classes)
            if np.abs(freq * num_classes / freq.sum() - 1.0).max() < 0.02:
                break
            params["b2"] -= 0.1 * np.log((freq + 1.0) / (freq.sum() + num_classes) * num_classes)
    out = {}
    for split, ss, n in (("train", train_ss, n_train), ("test", test_ss, n_test)):
        x = np.random.default_rng(ss).standard_normal((n, dim))
        out[f"x_{split}"] = x.astype(np.float32)
        out[f"y_{split}"] = np.argmax(_teacher_logits(params, x), axis=1).astype(np.int64)
    return out


def gaussian_blobs(
    *,
    num_classes: int = 3,
    dim: int = 2,
    n_train: int = 600,
    n_test: int = 300,
    separation: float = 3.0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Balanced Gaussian clusters: class means ``separation * N(0, I_dim)``, unit-variance noise.

    Labels cycle through the classes (``i % num_classes``) and are then shuffled, so each
    class has ``n // num_classes`` or one more examples.

    Returns:
        ``x_train (n_train, dim) float32``, ``y_train (n_train,) int64``, ``x_test``, ``y_test``.
    """
    num_classes = check_int("num_classes", num_classes, minimum=2)
    dim = check_int("dim", dim, minimum=1)
    n_train = check_int("n_train", n_train, minimum=1)
    n_test = check_int("n_test", n_test, minimum=0)
    separation = check_float("separation", separation)
    means_ss, train_ss, test_ss = _seed_sequence(seed).spawn(3)
    means = separation * np.random.default_rng(means_ss).standard_normal((num_classes, dim))
    out = {}
    for split, ss, n in (("train", train_ss, n_train), ("test", test_ss, n_test)):
        rng = np.random.default_rng(ss)
        y = rng.permutation(np.arange(n) % num_classes)
        out[f"x_{split}"] = (means[y] + rng.standard_normal((n, dim))).astype(np.float32)
        out[f"y_{split}"] = y.astype(np.int64)
    return out


def teacher_regression(
    key_or_seed: Any,
    n: int,
    d_in: int,
    d_out: int,
    *,
    depth: int = 2,
    width: int | None = None,
    activation: str = "tanh",
    noise_std: float = 0.0,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Regression data from a random ``depth``-layer teacher network.

    ``x ~ N(0, I_{d_in})`` and ``y = W_L phi(... phi(W_1 x)) + noise_std * eps`` with
    ``W_l ~ N(0, 1/fan_in)`` entries (no biases), hidden width ``width`` (default ``d_in``)
    and ``phi`` one of ``"linear"``, ``"tanh"``, ``"relu"`` (not applied to the output).
    ``activation="linear"`` gives a deep *linear* teacher, for the closed-form theory.

    Args:
        key_or_seed: an int seed >= 0 or a JAX PRNG key.
        dtype: float dtype of the returned arrays (computation is in float64).

    Returns:
        ``(x (n, d_in), y (n, d_out))`` numpy arrays of ``dtype``.
    """
    n = check_int("n", n, minimum=0)
    d_in = check_int("d_in", d_in, minimum=1)
    d_out = check_int("d_out", d_out, minimum=1)
    depth = check_int("depth", depth, minimum=1)
    width = d_in if width is None else check_int("width", width, minimum=1)
    noise_std = check_float("noise_std", noise_std)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError(f"dtype: expected a floating dtype, got {dtype!r}")
    phi = ACTIVATIONS[activation]
    weights_ss, x_ss, noise_ss = _seed_sequence(key_or_seed).spawn(3)
    rng = np.random.default_rng(weights_ss)
    sizes = [d_in] + [width] * (depth - 1) + [d_out]
    weights = [rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    x = np.random.default_rng(x_ss).standard_normal((n, d_in))
    h = x
    for layer, w in enumerate(weights):
        h = h @ w.T
        if layer < len(weights) - 1:
            h = phi(h)
    y = h + noise_std * np.random.default_rng(noise_ss).standard_normal((n, d_out))
    return x.astype(dtype), y.astype(dtype)
