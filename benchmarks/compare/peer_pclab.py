"""pclab's side of the comparison: ``make_train_step`` with GD inference, as its README teaches.

Variants ``devices=1`` and ``devices=2``: the batch on one device, or split over 2 (on a CPU,
``pclab.use_cpu_devices(2)``: one XLA device per core; see ``pclab.parallel``)."""

from __future__ import annotations

import math
from importlib.metadata import version

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import pclab
from workload import Spec, main, read_data, time_steps


def run(spec: Spec, variant: str) -> dict:
    mesh = pclab.parallel.data_parallel_mesh(int(variant.removeprefix("devices=") or 1))
    weights, x, y = read_data(spec)
    build = pclab.resnet if spec.skips else pclab.mlp
    net = build(jax.random.PRNGKey(0), spec.d_in, spec.width, spec.depth, spec.d_out, act="relu",
                param="mupc" if spec.skips else "sp")
    got = (net.mult.input, net.mult.hidden, net.mult.output)
    if not all(math.isclose(a, b) for a, b in zip(got, spec.multipliers())):
        raise SystemExit(f"pclab's multipliers {got} differ from the workload's {spec.multipliers()}")
    net = eqx.tree_at(lambda m: (m.w_in, m.w_hidden, m.w_out), net,
                      (jnp.asarray(weights[0]), jnp.stack(weights[1:-1]), jnp.asarray(weights[-1])))
    opt = optax.adam(spec.lr)
    inference = pclab.InferenceConfig(pclab.GradientDescent(spec.activity_lr), max_steps=spec.infer_steps)
    train = pclab.make_train_step(opt, "pc", spec=pclab.EnergySpec("mse"), inference=inference)
    x, y = jnp.asarray(x), jnp.asarray(y)
    state = (net, opt.init(eqx.filter(net, eqx.is_array)))
    if mesh is not None:
        state, (x, y) = pclab.replicate(state, mesh), pclab.shard_batch((x, y), mesh)

    def step(state):
        return jax.block_until_ready(train(*state, x, y)[:2])

    loss = eqx.filter_jit(lambda m: pclab.loss(m, x, y))
    out = time_steps(step, state, spec, lambda s: loss(s[0]))
    return {"library": "pclab", "version": version("pclab"), "jax": jax.__version__, **out}


if __name__ == "__main__":
    main(run)
