"""Cost of one PC training step per inference solver, as a ratio to one BP step.

All steps are timed in one process on the same μPC ResNet and random batch (medians after
warm-up; pclab.bench.median_time). Usage:

    python benchmarks/solver_cost.py --depth 128 --width 128 --batch 128
"""

import argparse
import json

import equinox as eqx
import jax
import optax

import pclab
from pclab.bench import median_time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=128)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    kx, ky, km = jax.random.split(jax.random.PRNGKey(0), 3)
    net = pclab.resnet(km, 784, args.width, args.depth, 10, act="relu", param="mupc")
    x = jax.random.normal(kx, (args.batch, 784))
    y = jax.nn.one_hot(jax.random.randint(ky, (args.batch,), 0, 10), 10)
    opt = optax.adam(1e-3)
    state = opt.init(eqx.filter(net, eqx.is_array))

    def block(out):
        return jax.block_until_ready(out)

    steps = {"bp": pclab.make_train_step(opt, "bp")}
    for name, solver, t in [("gd T=8", pclab.GradientDescent(0.2), 8), ("gd T=16", pclab.GradientDescent(0.2), 16),
                            ("newton 1", pclab.NewtonSolver(), 1), ("newton 2", pclab.NewtonSolver(), 2)]:
        steps[name] = pclab.make_train_step(opt, "pc", inference=pclab.InferenceConfig(solver, max_steps=t))
    times = {name: median_time(lambda s=s: block(s(net, state, x, y)), args.repeats) for name, s in steps.items()}
    print(json.dumps({
        "backend": jax.default_backend(), **vars(args),
        "step_s": {k: round(v, 4) for k, v in times.items()},
        "ratio_to_bp": {k: round(v / times["bp"], 2) for k, v in times.items()},
    }, indent=1))


if __name__ == "__main__":
    main()
