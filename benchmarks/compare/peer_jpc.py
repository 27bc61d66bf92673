"""jpc's side of the comparison (jpc 1.0.0, from a source folder; it pins jax ≤ 0.5.2).

Variants: ``docs`` as its μPC training script teaches (``init_activities_with_ffwd``, then one
jitted ``update_pc_activities`` call per inference step from Python, then ``update_pc_params``),
and ``fused`` (the same calls inside one ``eqx.filter_jit``, the inference loop unrolled). jpc's
energy is a batch mean, so its activity step is B·η (workload.py). jpc's ``make_mlp`` with
``param_type="mupc"`` and ``make_skip_model`` are exactly the workload's μPC ResNet; with
``"sp"`` and no skips, its MLP.
"""

from __future__ import annotations

from importlib.metadata import version

import equinox as eqx
import jax
import jax.numpy as jnp
import jpc
import optax

from workload import Spec, main, read_data, time_steps


def run(spec: Spec, variant: str) -> dict:
    if variant not in ("docs", "fused"):
        raise SystemExit(f"variant={variant!r}: expected 'docs' or 'fused'")
    weights, x, y = read_data(spec)
    x, y = jnp.asarray(x), jnp.asarray(y)
    param_type = "mupc" if spec.skips else "sp"
    model = jpc.make_mlp(jax.random.PRNGKey(0), spec.d_in, spec.width, spec.depth, spec.d_out, "relu",
                         use_bias=False, param_type=param_type)
    model = [eqx.tree_at(lambda s: s.layers[1].weight, layer, jnp.asarray(w)) for layer, w in zip(model, weights)]
    skip = jpc.make_skip_model(spec.depth) if spec.skips else None
    opt, act_opt = optax.adam(spec.lr), optax.sgd(spec.batch * spec.activity_lr)
    kw = dict(output=y, input=x, param_type=param_type)

    def pc_step(state):
        model, opt_state = state
        z = jpc.init_activities_with_ffwd(model=model, input=x, skip_model=skip, param_type=param_type)
        act_state = act_opt.init(z)
        for _ in range(spec.infer_steps):
            r = jpc.update_pc_activities(params=(model, skip), activities=z, optim=act_opt, opt_state=act_state, **kw)
            z, act_state = r["activities"], r["opt_state"]
        r = jpc.update_pc_params(params=(model, skip), activities=z, optim=opt, opt_state=opt_state, **kw)
        return r["model"], r["opt_state"]

    fn = eqx.filter_jit(pc_step) if variant == "fused" else pc_step

    def step(state):
        return jax.block_until_ready(fn(state))

    @eqx.filter_jit
    def loss(model):
        z = jpc.init_activities_with_ffwd(model=model, input=x, skip_model=skip, param_type=param_type)
        return jpc.mse_loss(z[-1], y)

    out = time_steps(step, (model, opt.init((eqx.filter(model, eqx.is_array), skip))), spec, lambda s: loss(s[0]))
    return {"library": "jpc", "version": version("jpc"), "jax": jax.__version__, **out}


if __name__ == "__main__":
    main(run)
