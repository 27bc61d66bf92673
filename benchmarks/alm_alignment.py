"""PC/BP and PC-ALM/BP weight-gradient cosine on a deep μPC ResNet, at equal inference steps.

One MNIST batch, the μPC ReLU ResNet at initialisation, GD inference from the feedforward
pass at activity lr ``--activity-lr`` for T steps; the cosine of each rule's weight gradient
(``rule.grads``) with the BP gradient, over all weights and per layer. Usage:

    python benchmarks/alm_alignment.py --depth 32 --width 128 --batch 128 --steps 8 32 128
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import pclab
from pclab.data import load_dataset
from pclab.learning import ALM, PC, InferenceConfig, bp_grad
from pclab.theory.alignment import cosine_similarity


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--activity-lr", type=float, default=0.2)
    ap.add_argument("--rho", type=float, default=1.0)
    ap.add_argument("--dual-lr", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    ds = load_dataset(args.dataset)
    x = jnp.asarray(ds.x_train[: args.batch])
    y = jnp.asarray(ds.one_hot("train")[: args.batch])
    model = pclab.resnet(jax.random.PRNGKey(args.seed), x.shape[1], args.width, args.depth, y.shape[1],
                         act="relu", param="mupc")
    spec = pclab.EnergySpec()
    g_bp = bp_grad(model, x, y, spec)
    rules = {"pc": PC(), **{f"alm(rho={args.rho:g},dual_lr={b:g})": ALM(rho=args.rho, dual_lr=b) for b in args.dual_lr}}
    rows = []
    for t in args.steps:
        inference = InferenceConfig(pclab.GradientDescent(args.activity_lr), max_steps=t)
        for name, rule in rules.items():
            start = time.perf_counter()
            g, info = jax.jit(lambda m, xb, yb, r=rule: r.grads(m, xb, yb, spec, inference))(model, x, y)
            per_layer = np.array([float(cosine_similarity(a, b)) for a, b in zip(model.layers(g), model.layers(g_bp))])
            rows.append(dict(rule=name, steps=t, cosine=round(float(cosine_similarity(g, g_bp)), 4),
                             layers_cos_gt_0_9=int(np.sum(per_layer > 0.9)), layers_reached=int(np.sum(per_layer != 0)),
                             n_layers=len(per_layer), median_layer_cos=round(float(np.median(per_layer)), 4),
                             status=int(info.status), seconds=round(time.perf_counter() - start, 2)))
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
