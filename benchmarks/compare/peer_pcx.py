"""pcx's side of the comparison (pcx 0.6.3, from the package index), written as pcx's tutorials
teach: an ``EnergyModule`` with one ``Vode`` per hidden layer and a frozen output ``Vode`` holding
the label, a ``pxf.vmap``-ed forward and energy, and one ``pxf.jit``-ed ``train_on_batch``: a
``STATUS.INIT`` forward pass, T ``pxf.value_and_grad`` + ``pxu.Optim(sgd)`` steps on the Vode
values, then one ``pxu.Optim(adam)`` step on the ``LayerParam``s.

pcx has no μPC: the multipliers a_1, a_l, a_L (``Spec.multipliers()``) and the residual
``z + a_l W_l φ(z)`` are user code in ``Model.__call__``. The energy is the tutorials'
``pmean`` over the batch of each example's summed Vode energies, i.e. the batch mean of
workload.py's per-example E, so its activity gradient is ∂E/∂z / B and the activity step is
B·η (workload.py); the Adam step is on that same batch-mean energy. No other difference in the
mathematics from pclab: same weights (``pxnn.Linear`` without bias, ``(out, in)``), feedforward
initialisation, plain GD for T steps, optax defaults for Adam (in float64 both peers' losses agree
to ~1e-14; in float32 the MLP's agree to ~1e-4 after 6 updates, the size of pclab's own change
when η moves by 1e-7).

The feedforward loss is computed inside the ``pxf.jit``: returning ŷ from it, as the tutorials'
eval does, crashes jaxlib 0.4.38 on CPU for the MLP ("DotThunk requires ... dim0-major layout",
since ŷ is both a returned value and a Vode value) and is wrong with the legacy CPU runtime.
"""

from __future__ import annotations

from importlib.metadata import version

import jax
import jax.numpy as jnp
import optax
import pcx as px
import pcx.functional as pxf
import pcx.nn as pxnn
import pcx.predictive_coding as pxc
import pcx.utils as pxu

from workload import Spec, main, read_data, time_steps


class Model(pxc.EnergyModule):
    def __init__(self, spec: Spec) -> None:
        super().__init__()
        sizes = [spec.d_in] + [spec.width] * (spec.depth - 1) + [spec.d_out]
        self.mult = px.static(spec.multipliers())
        self.skips = px.static(spec.skips)
        self.layers = [pxnn.Linear(i, o, bias=False) for i, o in zip(sizes[:-1], sizes[1:])]
        self.vodes = [pxc.Vode() for _ in range(spec.depth - 1)] + [pxc.Vode(pxc.se_energy)]
        self.vodes[-1].h.frozen = True  # the output Vode holds the label y during training

    def __call__(self, x, y):
        a1, ah, aL = self.mult.get()
        z = self.vodes[0](a1 * self.layers[0](x))
        for layer, vode in zip(self.layers[1:-1], self.vodes[1:-1]):
            z = vode((z if self.skips.get() else 0.0) + ah * layer(jax.nn.relu(z)))
        self.vodes[-1](aL * self.layers[-1](jax.nn.relu(z)))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


@pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0, 0), out_axes=0)
def forward(x, y, *, model: Model):
    return model(x, y)


@pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0,), out_axes=(None, 0),
          axis_name="batch")
def energy(x, *, model: Model):
    y_ = model(x, None)
    return jax.lax.pmean(model.energy(), "batch"), y_  # batch mean of the per-example energy


@pxf.jit(static_argnums=0)
def train_on_batch(T: int, x, y, *, model: Model, optim_w: pxu.Optim, optim_h: pxu.Optim):
    model.train()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)
    optim_h.init(pxu.M_hasnot(pxc.VodeParam, frozen=True)(model))
    for _ in range(T):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]),
                                      has_aux=True)(energy)(x, model=model)
        optim_h.step(model, g["model"])
    optim_h.clear()
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        _, g = pxf.value_and_grad(pxu.M(pxnn.LayerParam).to([False, True]), has_aux=True)(energy)(x, model=model)
    optim_w.step(model, g["model"])


@pxf.jit()
def feedforward_loss(x, y, *, model: Model):
    model.eval()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        y_hat = forward(x, None, model=model)
    return 0.5 * jnp.mean(jnp.sum((y - y_hat) ** 2, axis=1))


def run(spec: Spec, variant: str) -> dict:
    weights, x, y = read_data(spec)
    x, y = jnp.asarray(x), jnp.asarray(y)
    px.RKG.seed(0)
    model = Model(spec)
    for layer, w in zip(model.layers, weights):
        layer.nn.weight.set(jnp.asarray(w))
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)  # creates the Vode values, so that the optimisers see every parameter
        optim_h = pxu.Optim(lambda: optax.sgd(spec.batch * spec.activity_lr))  # B·η: the energy is a batch mean
        optim_w = pxu.Optim(lambda: optax.adam(spec.lr), pxu.M(pxnn.LayerParam)(model))

    def step(state):
        model, optim_w, optim_h = state
        train_on_batch(spec.infer_steps, x, y, model=model, optim_w=optim_w, optim_h=optim_h)
        jax.block_until_ready(jax.tree_util.tree_leaves((model, optim_w)))
        return state  # pcx updates the model and optimisers in place

    out = time_steps(step, (model, optim_w, optim_h), spec, lambda s: feedforward_loss(x, y, model=s[0]))
    return {"library": "pcx", "version": version("pcx"), "jax": jax.__version__, **out}


if __name__ == "__main__":
    main(run)
