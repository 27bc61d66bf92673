"""Time pclab's training step against an older pclab in one process, interleaved.

    python benchmarks/ab_versions.py OLD_SRC [--solver gd|newton] [--depth 128]

OLD_SRC is the ``src`` folder of another checkout (e.g. ``git worktree add ../old REV``). Its
package is copied under the name ``pclab_old`` so both import side by side; each timed call
of one version is followed by one of the other (medians of ``--repeats`` after 2 warm-ups each), so load
on a shared machine hits both alike. Workload: the μPC ReLU ResNet of ``pclab bench``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import optax


def _step(lib, depth, solver_name, steps):
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    m = lib.resnet(k[0], 128, 128, depth, 10, act="relu", param="mupc")
    x = jax.random.normal(k[1], (128, 128))
    y = jax.nn.one_hot(jax.random.randint(k[2], (128,), 0, 10), 10)
    solver = lib.NewtonSolver() if solver_name == "newton" else lib.GradientDescent(0.1)
    opt = optax.adam(1e-3)
    step = lib.make_train_step(opt, "pc", spec=lib.EnergySpec("mse"), inference=lib.InferenceConfig(solver, steps))
    state = opt.init(eqx.filter(m, eqx.is_array))
    t0 = time.perf_counter()
    jax.block_until_ready(step(m, state, x, y))
    return (lambda: jax.block_until_ready(step(m, state, x, y))), time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("old_src", type=Path)
    p.add_argument("--solver", choices=["gd", "newton"], default="gd")
    p.add_argument("--depth", type=int, default=128)
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(a.old_src / "pclab", tmp / "pclab_old")
    sys.path.insert(0, str(tmp))
    import pclab
    import pclab_old

    steps = 1 if a.solver == "newton" else 16
    old, c_old = _step(pclab_old, a.depth, a.solver, steps)
    new, c_new = _step(pclab, a.depth, a.solver, steps)
    for f in (old, new, old, new):
        f()
    t_old, t_new = [], []
    for _ in range(a.repeats):
        for f, ts in ((old, t_old), (new, t_new)):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
    mo, mn = statistics.median(t_old), statistics.median(t_new)
    print(f"{a.solver} depth {a.depth}: first step old {c_old:.2f} s new {c_new:.2f} s; "
          f"median step old {1e3 * mo:.1f} ms new {1e3 * mn:.1f} ms; new/old {mn / mo:.3f}")


if __name__ == "__main__":
    main()
