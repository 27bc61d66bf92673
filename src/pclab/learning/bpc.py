r"""Bidirectional predictive coding (bPC; Oliviers, Tang & Bogacz, arXiv 2505.23415, 2025).

A bPC network has, besides the PCN's bottom-up maps f_l (which predict z_l from z_{l−1}),
top-down maps g_l that predict each layer from the layer above, z_l ≈ g_l(z_{l+1}), down to
the input. For one example, with z_0 = x (the clamped input, or the free latent in generative
mode) and z_L = y (the clamped target), the energy is

    E_i = Σ_{l=1}^{L−1} ½‖z_l − f_l(z_{l−1})‖² + λ ℓ(y, f_L(z_{L−1}))         (the PC energy)
        + α [ ½‖x − g_0(z_1)‖² + Σ_{l=1}^{L−1} ½‖z_l − g_l(z_{l+1})‖² ]         (top-down terms)

with top-down maps, for a dense PCN of width N, input dim D, output dim O,

    g_0(z_1)     = V_0 φ(z_1) + c_0                       V_0: (D, N)      predicts x
    g_l(z_{l+1}) = s·z_{l+1} + V_l φ(z_{l+1}) + c_l       V_l: (N, N)      l = 1..L−2
    g_{L−1}(y)   = V_{L−1} y + c_{L−1}                     V_{L−1}: (N, O)  predicts z_{L−1} from y

(s = 1 for a residual PCN, mirroring its skips; the clamped data y enters linearly, as x does
in f_1; c_l exist when the PCN has biases).

**Any model whose layer maps are f_l(z) = A_l(W_l) φ(z) + S_l z** (those with a
:meth:`~pclab.nn.AbstractPCN.linear_twin`: dense and conv PCNs, not attention) gets the
transposed maps instead, with top-down weights V of the same shapes as the bottom-up W:

    (g_0, g_1, …, g_{L−1}) = A(V)ᵀ (φ(z_1), …, φ(z_{L−1}), y) + Sᵀ (z_1 − φ(z_1), …, z_{L−1} − φ(z_{L−1}), 0)

i.e. g_{l−1}(z_l) = A_l(V_l)ᵀ φ(z_l) + S_lᵀ z_l and g_{L−1}(y) = A_L(V_L)ᵀ y: a transposed
convolution predicts the finer stage from the coarser one, a skip passes z_l down unchanged.
Both transposes are the vector–Jacobian products of the model's linear twin (φ = identity)
with the weights V and with zero weights, so a new architecture needs nothing but its twin.
V is drawn N(0, std(W)²) leaf by leaf (the bottom-up multipliers apply to both). α ≥ 0 (``--algo-opt alpha=…``, default 1e-3)
weighs the top-down terms against the bottom-up ones, which keep weight 1 and the output
precision λ. In supervised mode (image → label) the top-down terms are the generative ones and
the PCN the discriminative one; in generative mode (label → image) it is the other way round.
The paper weighs the two directions with α_disc and α_gen; only their ratio matters up to the
activity step size. **With α = 0 the energy, the
activity gradient and the bottom-up weight gradients are exactly PC's** (the top-down
weights then get zero gradient).

Inference starts from the bottom-up feedforward pass and descends Σ_i E_i
over z_1..z_{L−1} (and the latent in generative mode) with the run's gradient solver;
learning is one optimiser step on ∇ of (1/B) Σ_i E_i in both weight sets. The step's
``StepInfo.energy`` is the PC (bottom-up) part of the energy after inference. The model bPC trains
is a :class:`BidirectionalPCN` (``rule.prepare(pcn, key)``) holding the PCN and the top-down
weights. As an :class:`~pclab.nn.AbstractPCN` it *is* the bottom-up network: its feedforward
pass (evaluation, ``model(x)``), activities, predictions, PC energy and layers are those of the
PCN; the bPC energy is :func:`bpc_energies`. Dense PCNs give a :class:`BidirectionalPCN`,
other models with a linear twin a :class:`TransposedBidirectionalPCN`.
Shapes (dense): activities (L−1, B, N); x (B, D); y (B, O).
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..energy import EnergySpec, energy, example_energies, output_loss
from ..nn.base import AbstractPCN, AbstractWrappedPCN, batch_sum_squares
from ..nn.dense import PCN, dense, stacked
from ..options import ActivityInit, Mode, parse_option
from ..params import ParamInfo, Role
from ..inference.problem import AbstractProblem
from .gradient_inference import add, check_gradient_solver, descend
from .rules import LEARNING_RULES, AbstractLearningRule, StepInfo


class AbstractBidirectionalPCN(AbstractWrappedPCN):
    """A PCN (``base``) with top-down maps: :meth:`top_down` gives their predictions."""

    base: eqx.AbstractVar[AbstractPCN]

    @abc.abstractmethod
    def top_down(self, z, y, x=None):
        """(the prediction g_0 of the input, shaped like x; the predictions g_1..g_{L−1} of
        the activities, shaped like z). ``x`` gives the input's shape where a model needs it."""


class BidirectionalPCN(AbstractBidirectionalPCN):
    """A dense PCN (``base``) with top-down weights (see the module docstring).

    Attributes:
        base: the bottom-up :class:`pclab.PCN`.
        v_in: (D, N) V_0, predicting the input from z_1.
        v_hidden: (L−2, N, N) V_1..V_{L−2}, V_l predicting z_l from z_{l+1}.
        v_out: (N, O) V_{L−1}, predicting z_{L−1} from the target.
        c_in, c_hidden, c_out: (D,), (L−2, N), (N,) biases, or ``None`` (as the base).

    The top-down weights carry no multiplier (they are stored at their scale) and have
    :class:`~pclab.Role` ``INPUT`` in :meth:`param_info`, so parameterisations leave their
    learning rate unscaled.
    """

    base: PCN
    v_in: Float[Array, "D N"]
    v_hidden: Float[Array, "H N N"]
    v_out: Float[Array, "N O"]
    c_in: Float[Array, " D"] | None
    c_hidden: Float[Array, "H N"] | None
    c_out: Float[Array, " N"] | None

    # ----- the top-down network ------------------------------------------------------------
    def top_down(self, z: Float[Array, "L-1 B N"], y: Float[Array, "B O"], x=None):
        """(g_0(z_1) of shape (B, D), the predictions g_1..g_{L−1} of z_1..z_{L−1} (L−1, B, N))."""
        phi = self.base.act(z)
        g0 = dense(phi[0], self.v_in)
        gh = stacked(phi[1:], self.v_hidden)
        if self.base.skips:
            gh = gh + z[1:]
        gt = dense(y, self.v_out)
        if self.c_in is not None:
            g0, gh, gt = g0 + self.c_in, gh + self.c_hidden[:, None, :], gt + self.c_out
        return g0, jnp.concatenate([gh, gt[None]], axis=0)

    def matmul_flops(self, batch: int) -> int:
        return 2 * self.base.matmul_flops(batch)

    def param_info(self):
        n, o = self.base.width, self.base.d_out
        tree = eqx.filter(self, eqx.is_array)
        tree = eqx.tree_at(lambda m: m.base, tree, self.base.param_info())
        infos = (ParamInfo(Role.INPUT, n), ParamInfo(Role.INPUT, n), ParamInfo(Role.INPUT, o))
        tree = eqx.tree_at(lambda m: (m.v_in, m.v_hidden, m.v_out), tree, infos)
        if self.c_in is not None:
            biases = tuple(ParamInfo(i.role, i.fan_in, is_bias=True) for i in infos)
            tree = eqx.tree_at(lambda m: (m.c_in, m.c_hidden, m.c_out), tree, biases)
        return tree


class TransposedBidirectionalPCN(AbstractBidirectionalPCN):
    """Any PCN with a :meth:`~pclab.nn.AbstractPCN.linear_twin` (``base``) and top-down
    weights ``v`` of the shapes of its arrays, whose top-down maps are the twin's transposes
    (module docstring). ``v`` has the :class:`~pclab.Role` ``INPUT`` (no learning-rate
    scaling), as the dense top-down weights do."""

    base: AbstractPCN
    v: AbstractPCN  # the base's float arrays only (eqx.filter(base, eqx.is_inexact_array) structure)

    def top_down(self, z, y, x=None):
        """(g_0 shaped like x, g shaped like z (leaves (K, B, ...))): A(V)ᵀ(φ(z), y) + Sᵀ(z − φ(z), 0)."""
        if x is None:
            raise ValueError("top_down of a TransposedBidirectionalPCN needs x (for its shape)")
        static = eqx.filter(self.base, eqx.is_inexact_array, inverse=True)
        with_v = eqx.combine(self.v, static).linear_twin()
        skips_only = eqx.combine(jax.tree_util.tree_map(jnp.zeros_like, self.v), static).linear_twin()
        zero_x, zero_z = jnp.zeros_like(x), jax.tree_util.tree_map(jnp.zeros_like, z)

        def transpose(net, cotangent):  # (A ⊕ S)ᵀ of the affine map (x, z) ↦ (predictions, output)
            _, pull = jax.vjp(lambda a, b: (net.predictions(b, a), net.output(b)), zero_x, zero_z)
            return pull(cotangent)

        act = self.base.act  # a model with a linear twin has an elementwise φ ``act``
        gx, gz = transpose(with_v, (jax.tree_util.tree_map(act, z), y))
        sx, sz = transpose(skips_only, (jax.tree_util.tree_map(lambda t: t - act(t), z), jnp.zeros_like(y)))
        return gx + sx, jax.tree_util.tree_map(jnp.add, gz, sz)

    def matmul_flops(self, batch: int) -> int:
        return 2 * self.base.matmul_flops(batch)

    def param_info(self):
        info = self.base.param_info()
        top = jax.tree_util.tree_map(lambda i: ParamInfo(Role.INPUT, i.fan_in, is_bias=i.is_bias), info,
                                     is_leaf=lambda i: isinstance(i, ParamInfo))
        tree = eqx.filter(self, eqx.is_array)
        return eqx.tree_at(lambda m: (m.base, m.v), tree, (info, top))


def bidirectional(pcn: AbstractPCN, key: Array) -> AbstractBidirectionalPCN:
    """Add top-down weights. A dense PCN (:class:`BidirectionalPCN`): V ~ N(0, 1/fan_in), the
    hidden V_l further divided by √(L−2) for a residual PCN (small branches beside the skip);
    zero biases if it has biases. Any other model with a linear twin
    (:class:`TransposedBidirectionalPCN`): each array of V ~ N(0, std(W)²) of its W."""
    if not isinstance(pcn, PCN):
        check_transposable("bidirectional()", pcn)
        arrays = eqx.filter(pcn, eqx.is_inexact_array)
        leaves, treedef = jax.tree_util.tree_flatten(arrays)
        keys = jax.random.split(key, len(leaves))
        v = [jax.random.normal(k, w.shape, w.dtype) * jnp.std(w) for k, w in zip(keys, leaves)]
        return TransposedBidirectionalPCN(pcn, jax.tree_util.tree_unflatten(treedef, v))
    n, d, o, h = pcn.width, pcn.d_in, pcn.d_out, pcn.depth - 2
    dtype = pcn.w_in.dtype
    branch = 1.0 / math.sqrt(max(h, 1)) if pcn.skips else 1.0
    draw = jax.random.normal(key, (d * n + h * n * n + n * o,), dtype)  # one draw: one RNG kernel to compile
    v_in = draw[: d * n].reshape(d, n) / math.sqrt(n)
    v_hidden = draw[d * n : d * n + h * n * n].reshape(h, n, n) * (branch / math.sqrt(n))
    v_out = draw[d * n + h * n * n :].reshape(n, o) / math.sqrt(o)
    bias = pcn.b_in is not None
    zeros = (lambda *s: jnp.zeros(s, dtype)) if bias else (lambda *s: None)
    return BidirectionalPCN(pcn, v_in, v_hidden, v_out, zeros(d), zeros(h, n), zeros(n))


def check_transposable(what: str, model) -> None:
    """Raise ``ValueError`` unless ``model`` (an instance or a registered model name) has a linear twin."""
    if model is None or isinstance(model, (PCN, AbstractBidirectionalPCN)):
        return
    if isinstance(model, str):
        if model.lower() in TRANSPOSABLE_MODELS:
            return
        got = f"model={model!r}"
    else:
        if isinstance(model, AbstractPCN) and model.linear_twin() is not None:
            return
        got = type(model).__name__
    raise ValueError(f"{what}: bPC needs layer maps A(W) φ(z) + S z (a linear twin) for its transposed "
                     f"top-down maps; valid: model={', '.join(map(repr, TRANSPOSABLE_MODELS))}; got {got}")


TRANSPOSABLE_MODELS = ("mlp", "resnet", "conv")  # the registered models with a linear twin


def bpc_energies(model: AbstractBidirectionalPCN, z, x, y, spec: EnergySpec = EnergySpec(), alpha=1.0) -> Float[Array, " B"]:
    """Per-example bPC energies E_i (module docstring): the PC energy of the bottom-up network
    plus α times the top-down prediction errors of the input and of every hidden layer."""
    g0, g = model.top_down(z, y, x)
    top_down = 0.5 * (jnp.sum(jnp.square(x - g0).reshape(x.shape[0], -1), axis=1) + batch_sum_squares(jax.tree_util.tree_map(jnp.subtract, z, g)))
    return example_energies(model.base, z, x, y, spec) + alpha * top_down


def bpc_energy(model: AbstractBidirectionalPCN, z, x, y, spec: EnergySpec = EnergySpec(), alpha=1.0) -> Float[Array, ""]:
    """The batch-mean bPC energy (1/B) Σ_i E_i (its weight gradient is the bPC update)."""
    return jnp.mean(bpc_energies(model, z, x, y, spec, alpha))


class BidirectionalProblem(AbstractProblem):
    """The inference problem of bPC for gradient solvers: min Σ_i E_i over z (supervised) or
    over (latent, z) (generative)."""

    model: AbstractBidirectionalPCN
    x: Array
    y: Array
    alpha: Array | float
    spec: EnergySpec = eqx.field(static=True)
    mode: Mode = eqx.field(static=True)

    def total_energy(self, free):
        latent, z = self.split(free)
        x = self.x if latent is None else latent
        return jnp.sum(bpc_energies(self.model, z, x, self.y, self.spec, self.alpha))

    def grad(self, free):
        return jax.grad(self.total_energy)(free)


class BPC(AbstractLearningRule):
    r"""Bidirectional PC (module docstring): PC energy + α × top-down prediction errors.

    Attributes:
        alpha: α ≥ 0, the weight of the top-down terms (0: exactly PC). Default 1e-3: in
            supervised mode the top-down terms are the generative ones, and for classification
            Oliviers et al. (2025) down-weight them (jpc's bPC example uses 1e-3); α = 1 weighs
            both directions equally. In generative mode the top-down terms are the
            discriminative ones (image → label).
    """

    alpha: float = 1e-3

    def __check_init__(self):
        a = self.alpha
        if not eqx.is_array(a) and (isinstance(a, bool) or not isinstance(a, (int, float))
                                     or not 0 <= a < float("inf")):
            raise ValueError(f"alpha={a!r} is not valid; expected a finite number >= 0")

    def prepare(self, model, key):
        if isinstance(model, AbstractBidirectionalPCN):
            return model
        check_transposable("algo='bpc'", model)
        return bidirectional(model, key)

    def validate(self, *, model=None, solver=None, mode=Mode.SUPERVISED):
        parse_option(Mode, mode, "mode")
        check_transposable("algo='bpc'", model)
        check_gradient_solver("bpc", solver, "descends its own (bidirectional) energy")

    def infer(self, model: AbstractBidirectionalPCN, x, y, spec, inference, mode=Mode.SUPERVISED, record_energy=False, z0=None):
        """bPC inference from ``z0`` (default: the bottom-up feedforward pass, or zeros if
        ``inference.init`` says so): (latent or None, z, :class:`Descent`)."""
        mode = parse_option(Mode, mode, "mode")
        if not isinstance(model, AbstractBidirectionalPCN):
            raise ValueError(f"algo='bpc' trains a BidirectionalPCN; got {type(model).__name__} "
                             "(build it with rule.prepare(pcn, key))")
        self.validate(solver=inference.solver, mode=mode)
        model.check_batch(x, y)
        solver = inference.solver
        problem = BidirectionalProblem(model, x, y, self.alpha, spec, mode)
        if z0 is None:
            z0 = model.activities(x)
        if parse_option(ActivityInit, inference.init, "init") is ActivityInit.ZEROS:
            z0 = jax.tree_util.tree_map(jnp.zeros_like, z0)
        u0, s0 = solver.init(problem, problem.free(z0))

        def step(c):
            u, s = c
            du, s = solver.step(problem, u, s)
            return (add(u, du), s), du

        trace = (lambda c: problem.total_energy(solver.free(problem, c[0])) / problem.batch) if record_energy else None
        run = descend(step, (u0, s0), max_steps=inference.max_steps, rtol=inference.rtol, atol=inference.atol,
                      energy=trace)
        latent, z = problem.split(solver.free(problem, run.carry[0]))
        return latent, z, run

    def grads(self, model, x, y, spec, inference, mode=Mode.SUPERVISED):
        z0 = model.activities(x)  # the feedforward pass: start of inference and the BP loss
        ff_loss = jnp.mean(output_loss(model.output(z0), y, spec.loss))
        latent, z, run = self.infer(model, x, y, spec, inference, mode, z0=z0)
        z = jax.lax.stop_gradient(z)
        x_used = x if latent is None else jax.lax.stop_gradient(latent)
        grads = eqx.filter_grad(lambda m: bpc_energy(m, z, x_used, y, spec, self.alpha))(model)
        # the reported energy is the bottom-up (PC) part: like PC's it starts at λ·loss at the
        # feedforward pass, which the run's divergence check assumes (the top-down part does not)
        f = energy(model.base, z, x_used, y, spec)
        return grads, StepInfo(ff_loss, f, run.steps, run.status)


LEARNING_RULES.register("bpc", BPC())
