r"""The dense PCN: a fully connected or residual network whose hidden layers are stacked on a
depth axis.

Layers l = 1..L (``depth = L`` weight layers) map activities z_{l−1} → predictions

    f_1(x) = a_1 W_1 x + b_1
    f_l(z) = s·z + a_l W_l φ(z) + b_l        l = 2..L−1, s = 1 with skips (ResNet), else 0
    f_L(z) = a_L W_L φ(z) + b_L

(arXiv 2505.13124, §2 "Predictive coding networks" and §3 "μPC"). The L−2 hidden weights of shape (N, N) are one array of shape
(L−2, N, N); activities z_1..z_{L−1} are one array of shape (L−1, B, N).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..options import Activation, parse_option
from ..params import Multipliers, ParamInfo, Parameterisation, Role, get_param
from .base import AbstractPCN


# PC energies are sums of squared *differences* of layer outputs computed by different kernels
# (a scanned forward pass vs. one batched matmul): reduced-precision matmuls (TF32 on GPUs)
# leave errors of ~1e-3 at the feedforward start and corrupt inference. All PCN matmuls
# therefore run at full precision.
_HIGHEST = jax.lax.Precision.HIGHEST


def dense(x: Float[Array, "... I"], w: Float[Array, "O I"]) -> Float[Array, "... O"]:
    """x Wᵀ at full precision."""
    return jnp.matmul(x, w.T, precision=_HIGHEST)


def dense_t(e: Float[Array, "... O"], w: Float[Array, "O I"]) -> Float[Array, "... I"]:
    """e W (the transposed map) at full precision."""
    return jnp.matmul(e, w, precision=_HIGHEST)


def stacked(z: Float[Array, "H B I"], w: Float[Array, "H O I"]) -> Float[Array, "H B O"]:
    """Per-layer z_h W_hᵀ for all layers h at once (one batched matmul over depth)."""
    return jnp.einsum("hbi,hoi->hbo", z, w, precision=_HIGHEST)


def stacked_t(e: Float[Array, "H B O"], w: Float[Array, "H O I"]) -> Float[Array, "H B I"]:
    """Per-layer e_h W_h (the transposed map), for all layers at once."""
    return jnp.einsum("hbo,hoi->hbi", e, w, precision=_HIGHEST)


def _check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is not valid; expected an integer >= 1")
    return value


class PCN(AbstractPCN):
    """A fully connected (``skips=False``) or residual (``skips=True``) PCN.

    Activities: one array (L−1, B, N). It overrides the autodiff activity gradient with a
    hand-written one and the exact solver with a block-tridiagonal solve (both tested).

    Attributes:
        w_in: (N, D) input weights W_1.
        w_hidden: (L−2, N, N) stacked hidden weights W_2..W_{L−1}.
        w_out: (O, N) output weights W_L.
        b_in, b_hidden, b_out: biases (N,), (L−2, N), (O,), or ``None``.
        act: φ. skips: identity skip at hidden layers. mult: the multipliers a_1, a_l, a_L.
    """

    w_in: Float[Array, "N D"]
    w_hidden: Float[Array, "H N N"]
    w_out: Float[Array, "O N"]
    b_in: Float[Array, " N"] | None
    b_hidden: Float[Array, "H N"] | None
    b_out: Float[Array, " O"] | None
    act: Activation = eqx.field(static=True)
    skips: bool = eqx.field(static=True)
    mult: Multipliers = eqx.field(static=True)

    # ----- sizes -------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """L, the number of weight layers."""
        return self.w_hidden.shape[0] + 2

    @property
    def width(self) -> int:
        return self.w_in.shape[0]

    @property
    def d_in(self) -> int:
        return self.w_in.shape[1]

    @property
    def d_out(self) -> int:
        return self.w_out.shape[0]

    @property
    def linear(self) -> bool:
        return self.act is Activation.LINEAR

    def linear_twin(self):
        return dataclasses.replace(self, act=Activation.LINEAR)

    # ----- the layer maps ----------------------------------------------------------------
    def predict_first(self, x: Float[Array, "B D"]) -> Float[Array, "B N"]:
        """f_1(x) = a_1 W_1 x + b_1."""
        mu = self.mult.input * dense(x, self.w_in)
        return mu if self.b_in is None else mu + self.b_in

    def predict_hidden(self, z: Float[Array, "H B N"]) -> Float[Array, "H B N"]:
        """f_l(z_{l−1}) for all hidden layers at once: one batched matmul over depth."""
        return self.hidden_from_phi(z, self.act(z))

    def hidden_from_phi(self, z: Float[Array, "H B N"], phi: Float[Array, "H B N"]) -> Float[Array, "H B N"]:
        """:meth:`predict_hidden` given φ(z) already computed: s·z + a W φ(z) + b."""
        mu = self.mult.hidden * stacked(phi, self.w_hidden)
        if self.skips:
            mu = mu + z
        return mu if self.b_hidden is None else mu + self.b_hidden[:, None, :]

    def predict_output(self, z: Float[Array, "B N"]) -> Float[Array, "B O"]:
        """f_L(z_{L−1}) = a_L W_L φ(z) + b_L."""
        return self.output_from_phi(self.act(z))

    def output_from_phi(self, phi: Float[Array, "B N"]) -> Float[Array, "B O"]:
        """:meth:`predict_output` given φ(z_{L−1}) already computed."""
        mu = self.mult.output * dense(phi, self.w_out)
        return mu if self.b_out is None else mu + self.b_out

    def _hidden_layer(self, z, wb):
        w, b = wb
        mu = self.mult.hidden * dense(self.act(z), w)
        if self.skips:
            mu = mu + z
        return mu if b is None else mu + b

    # ----- the AbstractPCN interface -------------------------------------------------------
    def predictions(self, z: Float[Array, "L-1 B N"], x: Float[Array, "B D"]) -> Float[Array, "L-1 B N"]:
        """f_1(x), f_2(z_1), …, f_{L−1}(z_{L−2}): one batched matmul over depth."""
        return jnp.concatenate([self.predict_first(x)[None], self.predict_hidden(z[:-1])], axis=0)

    def output(self, z: Float[Array, "L-1 B N"]) -> Float[Array, "B O"]:
        return self.predict_output(z[-1])

    def param_info(self):
        hidden = (ParamInfo(Role.RESIDUAL, self.width, self.depth) if self.skips
                  else ParamInfo(Role.HIDDEN, self.width))
        infos = [ParamInfo(Role.INPUT, self.d_in), hidden, ParamInfo(Role.OUTPUT, self.width)]
        tree = eqx.filter(self, eqx.is_array)
        tree = eqx.tree_at(lambda m: (m.w_in, m.w_hidden, m.w_out), tree, tuple(infos))
        for name, info in zip(("b_in", "b_hidden", "b_out"), infos):
            if getattr(self, name) is not None:
                bias = ParamInfo(info.role, info.fan_in, info.blocks, info.branch_power, is_bias=True)
                tree = eqx.tree_at(lambda m, n=name: getattr(m, n), tree, bias)
        return tree

    def layers(self, tree) -> list[list[Array]]:
        first = [tree.w_in] + ([] if tree.b_in is None else [tree.b_in])
        hidden = [[tree.w_hidden[k]] + ([] if tree.b_hidden is None else [tree.b_hidden[k]])
                  for k in range(tree.w_hidden.shape[0])]
        last = [tree.w_out] + ([] if tree.b_out is None else [tree.b_out])
        return [first, *hidden, last]

    def check_input(self, x) -> None:
        if not hasattr(x, "shape") or x.ndim != 2:
            raise ValueError(f"x must be a 2-d array (batch, features); got shape {getattr(x, 'shape', None)}")
        if x.shape[1] != self.d_in:
            raise ValueError(f"x has {x.shape[1]} features; the model's input dim d_in is {self.d_in}")
        if x.shape[0] < 1:
            raise ValueError("x is empty: batch size must be >= 1")
        if not isinstance(x, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(x))):
            raise ValueError("x contains NaN or inf values; expected finite numbers")

    def check_batch(self, x, y) -> None:
        self.check_input(x)
        if not hasattr(y, "shape") or y.ndim != 2:
            raise ValueError(f"y must be a 2-d array (batch, features); got shape {getattr(y, 'shape', None)}")
        if y.shape[1] != self.d_out:
            raise ValueError(f"y has {y.shape[1]} features; the model's output dim d_out is {self.d_out}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y have different batch sizes: {x.shape[0]} and {y.shape[0]}")
        if not isinstance(y, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(y))):
            raise ValueError("y contains NaN or inf values; expected finite numbers")

    def activity_grad(self, z: Float[Array, "L-1 B N"], x, y, spec) -> Float[Array, "L-1 B N"]:
        r"""∂(Σ_i E_i)/∂z written out (tested against ``jax.grad``), so that each inference
        step is two batched matmuls and a few fused elementwise passes:

            ∂E/∂z_l = e_l − s·e_{l+1} − a φ'(z_l) ⊙ (W_{l+1}ᵀ e_{l+1})          l < L−1
            ∂E/∂z_{L−1} = e_{L−1} + λ a_L φ'(z_{L−1}) ⊙ (W_Lᵀ ∂ℓ/∂ŷ)
        """
        from ..energy import output_grad

        phi, dphi = jax.jvp(self.act, (z,), (jnp.ones_like(z),))  # φ and φ' in one pass
        e = z - jnp.concatenate([self.predict_first(x)[None], self.hidden_from_phi(z[:-1], phi[:-1])], axis=0)
        back = self.mult.hidden * dphi[:-1] * stacked_t(e[1:], self.w_hidden)
        if self.skips:
            back = back + e[1:]
        y_hat = self.output_from_phi(phi[-1])
        top = spec.precision * self.mult.output * dphi[-1] * dense_t(output_grad(y_hat, y, spec.loss), self.w_out)
        return e - jnp.concatenate([back, -top[None]], axis=0)

    def exact_activities(self, x, y, spec):
        from ..inference.exact import block_tridiagonal_activities

        return block_tridiagonal_activities(self, x, y, spec)

    def matmul_flops(self, batch: int) -> int:
        return count_matmul_flops(self, batch)

    # ----- passes ------------------------------------------------------------------------
    def activities(
        self, x: Float[Array, "B D"], inject: Float[Array, "L-1 B N"] | None = None
    ) -> Float[Array, "L-1 B N"]:
        """Feedforward activities z_1..z_{L−1} (a ``lax.scan`` over depth).

        With ``inject`` = (δ_1..δ_{L−1}), each layer adds its own term,
        z_l = f_l(z_{l−1}) + δ_l: the activities whose prediction errors are exactly δ.
        """
        z1 = self.predict_first(x)
        rest = None
        if inject is not None:
            z1, rest = z1 + inject[0], inject[1:]

        def body(z, wbd):
            w, b, d = wbd  # d is None (an empty pytree) without injection
            z = self._hidden_layer(z, (w, b))
            z = z if d is None else z + d
            return z, z

        _, zs = jax.lax.scan(body, z1, (self.w_hidden, self.b_hidden, rest))
        return jnp.concatenate([z1[None], zs], axis=0)

    def __call__(self, x: Float[Array, "B D"]) -> Float[Array, "B O"]:
        """Feedforward output ŷ(x) (the BP network)."""
        z = jax.lax.scan(
            lambda z, wb: (self._hidden_layer(z, wb), None),
            self.predict_first(x),
            (self.w_hidden, self.b_hidden),
        )[0]
        return self.predict_output(z)


def _build(key, d_in, width, depth, d_out, act, param, skips, bias, dtype) -> PCN:
    d_in = _check_size("d_in", d_in)
    width = _check_size("width", width)
    d_out = _check_size("d_out", d_out)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
        raise ValueError(f"depth={depth!r} is not valid; expected an integer >= 2 (weight layers)")
    act = parse_option(Activation, act, "act")
    param = get_param(param)
    dtype = jnp.dtype(dtype)
    k_in, k_h, k_out = jax.random.split(key, 3)
    h = depth - 2
    hidden = ParamInfo(Role.RESIDUAL, width, depth) if skips else ParamInfo(Role.HIDDEN, width)
    w_in = param.init(k_in, (width, d_in), ParamInfo(Role.INPUT, d_in), dtype)
    w_hidden = param.init(k_h, (h, width, width), hidden, dtype)
    w_out = param.init(k_out, (d_out, width), ParamInfo(Role.OUTPUT, width), dtype)
    zeros = (lambda *s: jnp.zeros(s, dtype)) if bias else (lambda *s: None)
    return PCN(
        w_in=w_in,
        w_hidden=w_hidden,
        w_out=w_out,
        b_in=zeros(width),
        b_hidden=zeros(h, width),
        b_out=zeros(d_out),
        act=act,
        skips=bool(skips),
        mult=param.multipliers(d_in, width, depth, bool(skips)),
    )


def mlp(
    key: jax.Array,
    d_in: int,
    width: int,
    depth: int,
    d_out: int,
    *,
    act: "Activation | str" = "tanh",
    param: "Parameterisation | str" = "sp",
    bias: bool = False,
    dtype=jnp.float32,
) -> PCN:
    """A fully connected PCN with ``depth`` weight layers (D → N → … → N → O)."""
    return _build(key, d_in, width, depth, d_out, act, param, False, bias, dtype)


def resnet(
    key: jax.Array,
    d_in: int,
    width: int,
    depth: int,
    d_out: int,
    *,
    act: "Activation | str" = "relu",
    param: "Parameterisation | str" = "mupc",
    bias: bool = False,
    dtype=jnp.float32,
) -> PCN:
    """A residual PCN: identity skip at every hidden layer except the first and last."""
    return _build(key, d_in, width, depth, d_out, act, param, True, bias, dtype)


def layer_maps(model: PCN) -> list[jax.Array]:
    """The linear layer maps B_1..B_L of a *linear* PCN, shapes (N, D), (N, N)…, (O, N).

    ``B_l = a_l W_l`` (+ I for residual hidden layers). Used by the theory functions.
    """
    if not model.linear:
        raise ValueError(f"layer_maps needs a linear model (act='linear'), got act={model.act.value!r}")
    if model.b_in is not None:
        raise ValueError("layer_maps needs a model without biases (bias=False): the maps B_l cannot carry them")
    eye = jnp.eye(model.width, dtype=model.w_hidden.dtype)
    hidden = model.mult.hidden * model.w_hidden + (eye if model.skips else 0.0)
    return [model.mult.input * model.w_in, *list(hidden), model.mult.output * model.w_out]


def count_matmul_flops(model: PCN, batch: int) -> int:
    """FLOPs of one pass of all layer matmuls over a batch: Σ_l 2·B·in_l·out_l."""
    n, d, o, h = model.width, model.d_in, model.d_out, model.depth - 2
    return 2 * batch * (n * d + h * n * n + o * n)


