"""FabricPC's side of the comparison (fabricpc 0.6.0 from the package index), as its README
teaches: nodes joined by ``Edge``s into ``graph(..., inference=InferenceSGD(...))`` (with the
default ``FeedforwardStateInit``), ``initialize_params``, and the jitted step of
``fabricpc.training.make_train_step(structure, optax.adam(lr), algorithm="pc")``.

Against pclab's mathematics:

- FabricPC's ``Linear`` is post-activation (z_mu = φ(W x)); the workload's f_l applies φ to
  its input (a·W φ(z)), which no built-in node does. So one custom node, ``PreActLinear``, a
  ``LinearResidual`` (the "in" slot has weights, the "skip" slot is an identity) whose
  ``predict`` is z_mu = Σ x_skip + a·W φ(x_in), without bias, written as the README's
  "Custom Nodes" section teaches. Its ``activation`` is the φ on its input (identity on the stem).
- μPC is user code. FabricPC's ``MuPCConfig`` exists, but it gives the hidden blocks
  a = √2/√(N·(L−2)) (ReLU's Kaiming gain, and depth counted as the L−2 merge nodes) where
  the workload has 1/√(N L), and the readout √2/N where it has 1/N. So it is not used: each node multiplies by a_1, a_l or a_L from
  ``Spec.multipliers()``, and the identity skips of the μPC ResNet are edges into the "skip" slots.
- Energy convention: during inference FabricPC takes the gradient of the batch *sum* of the
  per-example energies, which is the workload's per-example convention, so
  ``eta_infer = spec.activity_lr`` needs no conversion. Its weight gradients are that same
  sum divided by the batch size (``grad_denominator``), so Adam gets the gradient of the
  batch-mean energy, as in pclab.
- The only difference left is the order of float32 operations.
"""

from __future__ import annotations

from importlib.metadata import version

import jax
import jax.numpy as jnp
import optax
from fabricpc import initialize_params, setup_jax
from fabricpc.core.activations import IdentityActivation, ReLUActivation
from fabricpc.core.energy import GaussianEnergy, graph_energy
from fabricpc.core.inference import InferenceSGD
from fabricpc.core.initializers import KaimingInitializer, NormalInitializer
from fabricpc.core.topology import Edge
from fabricpc.graph_assembly import TaskMap, graph
from fabricpc.graph_initialization.state_initializer import initialize_graph_state
from fabricpc.nodes import Linear, LinearResidual
from fabricpc.nodes.base import NodeBase
from fabricpc.training import build_clamps, make_train_step

from workload import Spec, main, read_data, time_steps


class PreActLinear(LinearResidual):
    """z_mu = Σ x_skip + a · W φ(x_in): the workload's f_l, with φ = ``activation``."""

    def __init__(self, shape, name, a, activation=ReLUActivation()):
        NodeBase.__init__(self, shape=shape, name=name, activation=activation, energy=GaussianEnergy(),
                          latent_init=NormalInitializer(), weight_init=KaimingInitializer(),
                          use_bias=False, flatten_input=False, a=a)

    @staticmethod
    def predict(params, inputs, state, node_info):
        phi, a = node_info.activation, node_info.node_config["a"]
        z_mu = sum(a * (type(phi).forward(x, phi.config) @ params.weights[k])
                   for k, x in inputs.items() if k.endswith(":in"))
        return z_mu + sum(x for k, x in inputs.items() if k.endswith(":skip")), None


def run(spec: Spec, variant: str) -> dict:
    setup_jax()
    weights, x, y = read_data(spec)
    a1, ah, aL = spec.multipliers()
    inp = Linear(shape=(spec.d_in,), name="x")
    hidden = [PreActLinear((spec.width,), "h1", a1, activation=IdentityActivation())]
    hidden += [PreActLinear((spec.width,), f"h{l}", ah) for l in range(2, spec.depth)]
    out = PreActLinear((spec.d_out,), "y", aL)
    chain = [inp, *hidden, out]
    edges = [Edge(source=s, target=t.slot("in")) for s, t in zip(chain, chain[1:])]
    if spec.skips:
        edges += [Edge(source=s, target=t.slot("skip")) for s, t in zip(hidden, hidden[1:])]
    structure = graph(nodes=chain, edges=edges, task_map=TaskMap(x=inp, y=out),
                      inference=InferenceSGD(eta_infer=spec.activity_lr, infer_steps=spec.infer_steps))

    # Load W0..W{L-1} ((out, in)) into the ("in")-edge weights, which FabricPC keeps as (in, out).
    params = initialize_params(structure, jax.random.PRNGKey(0))
    nodes = dict(params.nodes)
    for (s, t), w in zip(zip(chain, chain[1:]), weights):
        nodes[t.name] = nodes[t.name]._replace(weights={f"{s.name}->{t.name}:in": jnp.asarray(w.T)})
    params = params._replace(nodes=nodes)

    opt = optax.adam(spec.lr)
    train = make_train_step(structure, opt, algorithm="pc")
    batch, key = {"x": jnp.asarray(x), "y": jnp.asarray(y)}, jax.random.PRNGKey(0)

    def step(state):
        params, opt_state, _, _ = train(*state, batch, key)
        return jax.block_until_ready((params, opt_state))

    @jax.jit
    def loss(params):  # ½ mean_b ‖y − ŷ‖²: the output node's energy after the feedforward pass
        clamps = build_clamps(batch, structure, clamp_target=True)
        ff = initialize_graph_state(structure, spec.batch, key, clamps=clamps, params=params)
        return graph_energy(ff, structure, node_names=[out.name]) / spec.batch

    res = time_steps(step, (params, opt.init(params)), spec, lambda s: loss(s[0]))
    return {"library": "fabricpc", "version": version("fabricpc"), "jax": jax.__version__, **res}


if __name__ == "__main__":
    main(run)
