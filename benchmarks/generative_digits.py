"""A generative PCN on digits through the library: labels clamped at the bottom as the initial
latent, 8×8 images at the top; held-out reconstruction error and classification by generative
inference (pclab.learning.evaluate_generative) after every epoch, and a figure of samples.

    python benchmarks/generative_digits.py --epochs 15 --algo pc --out samples.png
"""

import argparse
import json
import time

import equinox as eqx
import jax
import numpy as np
import optax

import pclab
from pclab.data import load_dataset
from pclab.learning import InferenceConfig, evaluate_generative, samples_figure
from pclab.options import Mode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--activity-lr", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=10, help="inference steps")
    ap.add_argument("--algo", default="pc")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="PNG of one sample per class")
    args = ap.parse_args()

    ds = load_dataset("digits")
    labels, images = ds.one_hot("train").astype(np.float32), ds.x_train.astype(np.float32)
    test_labels, test_images = ds.one_hot("test").astype(np.float32), ds.x_test.astype(np.float32)
    rule = pclab.get_rule(args.algo)
    key = jax.random.PRNGKey(args.seed)
    model = rule.prepare(pclab.mlp(key, 10, args.width, args.depth, images.shape[1], act="tanh"),
                         jax.random.fold_in(key, 1))
    spec = pclab.EnergySpec()
    inference = InferenceConfig(pclab.GradientDescent(args.activity_lr), max_steps=args.steps)
    opt = optax.adam(args.lr)
    state = opt.init(eqx.filter(model, eqx.is_array))
    step = pclab.make_train_step(opt, rule, spec=spec, inference=inference, mode=Mode.GENERATIVE)
    rng = np.random.default_rng(args.seed)
    n_steps, start = 0, time.perf_counter()
    ev = evaluate_generative(model, test_labels, test_images, spec, inference)
    print(json.dumps(dict(epoch=0, steps=0, **{k: round(v, 4) for k, v in ev.items()})), flush=True)
    for epoch in range(1, args.epochs + 1):
        perm = rng.permutation(labels.shape[0])
        for i in range(0, labels.shape[0] - args.batch + 1, args.batch):
            idx = perm[i:i + args.batch]
            model, state, info = step(model, state, labels[idx], images[idx])
            n_steps += 1
        ev = evaluate_generative(model, test_labels, test_images, spec, inference)
        print(json.dumps(dict(epoch=epoch, steps=n_steps, train_energy=round(float(info.energy), 4),
                              **{k: round(v, 4) for k, v in ev.items()},
                              seconds=round(time.perf_counter() - start, 1))), flush=True)
    if args.out:
        print("samples:", samples_figure(model, 10, args.out, image_shape=(8, 8)))


if __name__ == "__main__":
    main()
