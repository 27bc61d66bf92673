r"""``AbstractPCN``: what every predictive coding network provides.

A PCN is a chain of layer maps f_1 … f_L with input z_0 = x, free activities z_1 … z_{L−1}
and output ŷ = f_L(z_{L−1}). The activities are a pytree whose every leaf is a *stack* of
layers of one shape, batch on axis 1:

* stacked dense layers: one leaf (L−1, B, N);
* a conv stage: (K, B, C, H, W), K = its downsampling layer and blocks;
* transformer blocks: (1 + n_blocks, B, T, d) (the embedding, then each block's output).

Energies, inference, learning, parameterisations and diagnostics only use the methods below,
so a new architecture is a new subclass and nothing else (see ``tests/core/test_core_custom``).
The prediction error of layer l is e_l = z_l − f_l(z_{l−1}); given the activities every
error is independent, so :meth:`predictions` computes all of them at once (``vmap`` over a
stack), while :meth:`activities` is the sequential feedforward pass (``lax.scan``).
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

Activities = PyTree[Array]  # leaves (K, B, ...)


class AbstractPCN(eqx.Module):
    """Base class of PC networks. Subclasses are Equinox modules (weights are leaves)."""

    # ----- the network ---------------------------------------------------------------------
    @abc.abstractmethod
    def activities(self, x: Any, inject: Activities | None = None) -> Activities:
        """Feedforward activities z_l = f_l(z_{l−1}) (+ δ_l if ``inject`` = δ is given, so that
        the prediction errors of the result are exactly δ). Leaves (K, B, ...)."""

    @abc.abstractmethod
    def predictions(self, z: Activities, x: Any) -> Activities:
        """f_l(z_{l−1}) for l = 1..L−1, all at once; the same structure as ``z``."""

    @abc.abstractmethod
    def output(self, z: Activities) -> Array:
        """ŷ = f_L(z_{L−1}), shape (B, ...) (reads only the last activity)."""

    @abc.abstractmethod
    def param_info(self) -> PyTree:
        """A :class:`pclab.ParamInfo` for every array of ``eqx.filter(self, eqx.is_array)``,
        in the same tree structure (``None`` where there is no array)."""

    @abc.abstractmethod
    def layers(self, tree: PyTree) -> list[list[Array]]:
        """Split a model-shaped pytree (a gradient, say) into its L layers' arrays, in order."""

    @abc.abstractmethod
    def check_input(self, x: Any) -> None:
        """Raise ``ValueError`` naming ``x`` and what is expected if it does not fit."""

    # ----- derived, overridable ------------------------------------------------------------
    def __call__(self, x: Any) -> Array:
        """Feedforward output ŷ(x) (the BP network)."""
        return self.output(self.activities(x))

    @property
    def unroll_inference(self) -> bool:
        """Whether fixed-step inference is unrolled: ``False`` (a rolled loop) keeps compile
        time flat in the number of steps; models whose layers run slowly inside a rolled loop
        (convolutions on XLA:CPU) return ``True``."""
        return False

    @property
    def linear(self) -> bool:
        """Whether every layer map is affine (exact inference needs it)."""
        return False

    def linear_twin(self) -> "AbstractPCN | None":
        """The same network with φ replaced by the identity, when every layer map then becomes
        affine in (z_{l−1}, x), i.e. f_l(z) = A_l(W_l) φ(z) + S_l z (+ b_l) with A_l linear and
        S_l a fixed skip; ``None`` (the default) when the model is not of that form (attention).
        bPC's top-down maps are the transposes A_lᵀ, S_lᵀ of the twin."""
        return None

    def activity_grad(self, z: Activities, x: Any, y: Array, spec) -> Activities:
        """∂(Σ_i E_i)/∂z (each example's own gradient), by autodiff. Models may override it
        with a hand-written form (tested equal)."""
        from ..energy import example_energies

        return jax.grad(lambda v: jnp.sum(example_energies(self, v, x, y, spec)))(z)

    def exact_activities(self, x: Any, y: Array, spec) -> Activities | None:
        """The exact equilibrium of a linear model with MSE output, or ``None`` when the model
        has no specialised solve (``ExactSolver`` then takes one Gauss–Newton step, which is
        exact in that case)."""
        return None

    def matmul_flops(self, batch: int) -> int:
        """FLOPs of one pass of all layer maps over a batch (the cost model's unit)."""
        return 0

    def check_batch(self, x: Any, y: Array) -> None:
        """Raise ``ValueError`` naming the argument if ``x`` or ``y`` do not fit the model."""
        self.check_input(x)
        if not hasattr(y, "shape"):
            raise ValueError(f"y must be an array; got {type(y).__name__}")
        out = jax.eval_shape(self.__call__, x)
        if tuple(y.shape) != tuple(out.shape):
            raise ValueError(f"y has shape {tuple(y.shape)}; the model's output for this x has shape "
                             f"{tuple(out.shape)}")
        if not isinstance(y, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(y))):
            raise ValueError("y contains NaN or inf values; expected finite numbers")

    def zero_activities(self, x: Any) -> Activities:
        """Activities of the right structure, all zero."""
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(self.activities, x))

    def check_activities(self, z: Activities, x: Any, name: str = "z0") -> None:
        """Raise ``ValueError`` if ``z`` does not have the structure and shapes of the
        activities for ``x``."""
        want = jax.eval_shape(self.activities, x)
        ws, zs = jax.tree_util.tree_structure(want), jax.tree_util.tree_structure(z)
        if ws != zs:
            raise ValueError(f"{name} has pytree structure {zs}; expected {ws}")
        for w, v in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(z)):
            if tuple(v.shape) != tuple(w.shape):
                raise ValueError(f"{name} has a leaf of shape {tuple(v.shape)}; expected {tuple(w.shape)}")


class AbstractWrappedPCN(AbstractPCN):
    """A PCN that adds parameters beside an inner PCN ``base`` (bPC's top-down weights, hPC's
    amortiser) and is, as a PCN, that inner network: every method of :class:`AbstractPCN`
    delegates to ``base``. Subclasses give :meth:`param_info` (their extra parameters' roles)
    and may override any delegated method (e.g. :meth:`matmul_flops`)."""

    base: eqx.AbstractVar[AbstractPCN]

    def activities(self, x, inject=None):
        return self.base.activities(x, inject)

    def predictions(self, z, x):
        return self.base.predictions(z, x)

    def output(self, z):
        return self.base.output(z)

    def __call__(self, x):
        return self.base(x)

    def activity_grad(self, z, x, y, spec):
        return self.base.activity_grad(z, x, y, spec)

    def exact_activities(self, x, y, spec):
        return self.base.exact_activities(x, y, spec)

    @property
    def linear(self) -> bool:
        return self.base.linear

    def linear_twin(self):
        return self.base.linear_twin()

    def matmul_flops(self, batch: int) -> int:
        return self.base.matmul_flops(batch)

    def check_input(self, x) -> None:
        self.base.check_input(x)

    def check_batch(self, x, y) -> None:
        self.base.check_batch(x, y)

    def layers(self, tree):
        """The inner PCN's L layers (the added parameters are not layers of the chain, so the
        per-layer PC/BP gradient cosine compares the weights both rules train)."""
        return self.base.layers(tree.base)


def batch_sum_squares(tree: Activities) -> Array:
    """Σ over layers and features of the squares, per example: (B,) (batch on axis 1)."""
    leaves = jax.tree_util.tree_leaves(tree)
    return sum(jnp.sum(jnp.square(t), axis=(0, *range(2, t.ndim))) for t in leaves)


def layer_sum_squares(tree: Activities) -> Array:
    """Batch-mean of ½‖·‖² of every layer, concatenated over the leaves: (L−1,)."""
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.concatenate([0.5 * jnp.mean(jnp.sum(jnp.square(t), axis=tuple(range(2, t.ndim))), axis=1)
                            for t in leaves])


def batch_size(tree: Activities) -> int:
    return jax.tree_util.tree_leaves(tree)[0].shape[1]
