r"""Convolutional PCN: residual conv stages with strided downsampling and a pooled readout.

Channels-last layout (NHWC): inputs x (B, H, W, C_in); kernels (C_out, C_in, k, k). Stage s has C_s channels at
resolution (H/2^s, W/2^s) and n_s residual blocks; its layers are

    z_{s,0} = a_in · conv(x, K_stem)                       (s = 0: the stem)
    z_{s,0} = a_down · conv_stride2(φ(z_{s−1,last}), K_s)   (s > 0: downsampling)
    z_{s,k} = z_{s,k−1} + a_res · conv(φ(z_{s,k−1}), K_{s,k})   k = 1..n_s

and the output is ŷ = a_out · W_out · mean_{h,w} φ(z_{last}) (global average pooling). Every
z is a PC activity: the activities are a tuple over stages of (1 + n_s, B, H_s, W_s, C_s)
arrays, the block kernels of a stage one (n_s, C_s, C_s, k, k) array, and both the feedforward
pass and the predictions are a ``lax.scan`` over blocks. Measured on a 2-core CPU, XLA runs a
convolution whose operands are slices of a stack inside a rolled loop ~40× slower than
unrolled (a vmapped, i.e. grouped, convolution 5× slower), so the block scans are unrolled by
default (``unroll=True``: compile time grows with the number of blocks); ``unroll=False``
keeps a rolled loop (flat compile time, e.g. for GPUs). The same holds for the inference loop
around them: with ``unroll=True`` fixed-step inference is unrolled too (measured 10× faster
for 8 GD steps of an 8-block net, compile time growing with T).
Multipliers come from the parameterisation by role: the stem an ``input`` (fan-in C_in·k²),
downsampling ``hidden`` (C·k²), block kernels ``residual`` (C·k², blocks = all blocks, so
μPC gives 1/√(C·k²·n_blocks)), the readout ``output`` (fan-in C, μPC 1/C).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..options import Activation, parse_option
from ..params import ParamInfo, Parameterisation, Role, get_param
from .base import AbstractPCN
from .ops import conv2d, linear


class ConvPCN(AbstractPCN):
    """A residual convolutional PCN (module docstring). Build with :func:`pclab.convnet`.

    Attributes:
        stem: (C_0, C_in, k, k). down: tuple of (C_s, C_{s−1}, k, k) for s ≥ 1.
        blocks: tuple of (n_s, C_s, C_s, k, k). w_out: (O, C_last).
        act: φ. image: (H, W, C_in) the input shape it was built for. mult: (a_in, a_out);
        mult_down, mult_res: per stage (fan-ins differ between stages).
    """

    stem: Float[Array, "C0 Cin k k"]
    down: tuple[Float[Array, "C C k k"], ...]
    blocks: tuple[Float[Array, "n C C k k"], ...]
    w_out: Float[Array, "O C"]
    act: Activation = eqx.field(static=True)
    image: tuple[int, int, int] = eqx.field(static=True)
    mult: tuple[float, float] = eqx.field(static=True)
    mult_down: tuple[float, ...] = eqx.field(static=True)
    mult_res: tuple[float, ...] = eqx.field(static=True)
    unroll: bool = eqx.field(static=True, default=True)

    @property
    def n_blocks(self) -> int:
        return sum(b.shape[0] for b in self.blocks)

    @property
    def depth(self) -> int:
        """L, the number of layer maps (stem, downsampling and blocks, readout)."""
        return 1 + len(self.down) + self.n_blocks + 1

    @property
    def unroll_inference(self) -> bool:
        return self.unroll

    @property
    def linear(self) -> bool:
        return self.act is Activation.LINEAR

    def linear_twin(self):
        return dataclasses.replace(self, act=Activation.LINEAR)

    def _block(self, s: int, z: Float[Array, "B H W C"], k: Float[Array, "C C k k"]) -> Float[Array, "B H W C"]:
        return z + self.mult_res[s] * conv2d(self.act(z), k)

    def _transition(self, s: int, prev) -> Float[Array, "B H W C"]:
        if s == 0:
            return self.mult[0] * conv2d(prev, self.stem)
        return self.mult_down[s - 1] * conv2d(self.act(prev), self.down[s - 1], stride=2)

    def activities(self, x, inject=None):
        out, prev = [], x
        for s, ks in enumerate(self.blocks):
            d = None if inject is None else inject[s]
            z0 = self._transition(s, prev)
            z0 = z0 if d is None else z0 + d[0]

            def body(z, kd):
                k, dk = kd
                z = self._block(s, z, k) + (0.0 if dk is None else dk)
                return z, z

            _, zs = jax.lax.scan(body, z0, (ks, None if d is None else d[1:]), unroll=self.unroll)
            stage = jnp.concatenate([z0[None], zs], axis=0)
            out.append(stage)
            prev = stage[-1]
        return tuple(out)

    def predictions(self, z, x):
        preds, prev = [], x
        for s, ks in enumerate(self.blocks):
            first = self._transition(s, prev)
            rest = jax.lax.scan(lambda c, a: (c, self._block(s, *a)), None, (z[s][:-1], ks), unroll=self.unroll)[1]
            preds.append(jnp.concatenate([first[None], rest], axis=0))
            prev = z[s][-1]
        return tuple(preds)

    def output(self, z) -> Float[Array, "B O"]:
        pooled = jnp.mean(self.act(z[-1][-1]), axis=(1, 2))
        return self.mult[1] * linear(pooled, self.w_out)

    def param_info(self):
        c = [self.stem.shape[0]] + [d.shape[0] for d in self.down]
        k2 = self.stem.shape[2] * self.stem.shape[3]
        tree = eqx.filter(self, eqx.is_array)
        return eqx.tree_at(
            lambda m: (m.stem, m.down, m.blocks, m.w_out), tree,
            (ParamInfo(Role.INPUT, self.image[2] * k2),
             tuple(ParamInfo(Role.HIDDEN, c[s] * k2) for s in range(len(self.down))),
             tuple(ParamInfo(Role.RESIDUAL, c[s] * k2, self.n_blocks) for s in range(len(self.blocks))),
             ParamInfo(Role.OUTPUT, c[-1])))

    def layers(self, tree):
        out = [[tree.stem]]
        for s, ks in enumerate(tree.blocks):
            if s > 0:
                out.append([tree.down[s - 1]])
            out.extend([ks[k]] for k in range(ks.shape[0]))
        return out + [[tree.w_out]]

    def check_input(self, x) -> None:
        if not hasattr(x, "shape") or x.ndim != 4:
            raise ValueError(f"x must be a 4-d array (batch, height, width, channels); got shape "
                             f"{getattr(x, 'shape', None)}")
        if tuple(x.shape[1:]) != self.image:
            raise ValueError(f"x has image shape {tuple(x.shape[1:])}; the model was built for (H, W, C) = {self.image}")
        if x.shape[0] < 1:
            raise ValueError("x is empty: batch size must be >= 1")

    def matmul_flops(self, batch: int) -> int:
        k2 = self.stem.shape[2] * self.stem.shape[3]
        h, w, c_prev = self.image
        total = 0
        for s, ks in enumerate(self.blocks):
            c = ks.shape[1]
            hw = (h >> s) * (w >> s)
            total += 2 * batch * hw * c * c_prev * k2 + 2 * batch * hw * c * c * k2 * ks.shape[0]
            c_prev = c
        return total + 2 * batch * c_prev * self.w_out.shape[0]


def convnet(
    key: jax.Array,
    image: tuple[int, int, int],
    d_out: int,
    *,
    channels: tuple[int, ...] = (16, 32),
    blocks: int | tuple[int, ...] = 2,
    kernel: int = 3,
    act: "Activation | str" = "relu",
    param: "Parameterisation | str" = "mupc",
    unroll: bool = True,
    dtype=jnp.float32,
) -> ConvPCN:
    """A residual conv PCN for images of shape ``image`` = (H, W, C_in) (channels last).

    ``channels``: C_s per stage (stage s > 0 halves the resolution with a stride-2 conv);
    ``blocks``: residual blocks per stage (an int for all stages); ``kernel``: odd k.
    H and W must be divisible by 2^(stages − 1).
    """
    if len(image) != 3 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in image):
        raise ValueError(f"image={image!r} is not valid; expected (height, width, channels) of integers >= 1")
    if not channels or any(not isinstance(c, int) or c < 1 for c in channels):
        raise ValueError(f"channels={channels!r} is not valid; expected a non-empty tuple of integers >= 1")
    nb = (blocks,) * len(channels) if isinstance(blocks, int) else tuple(blocks)
    if len(nb) != len(channels) or any(not isinstance(n, int) or n < 0 for n in nb):
        raise ValueError(f"blocks={blocks!r} is not valid; expected an integer >= 0 or one per stage ({len(channels)})")
    if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel={kernel!r} is not valid; expected an odd integer >= 1")
    f = 2 ** (len(channels) - 1)
    if image[0] % f or image[1] % f:
        raise ValueError(f"image={image!r}: height and width must be divisible by 2^(stages-1) = {f} "
                         f"(the strides of {len(channels)} stages)")
    if isinstance(d_out, bool) or not isinstance(d_out, int) or d_out < 1:
        raise ValueError(f"d_out={d_out!r} is not valid; expected an integer >= 1")
    act, param, dtype = parse_option(Activation, act, "act"), get_param(param), jnp.dtype(dtype)
    k2, total = kernel * kernel, max(1, sum(nb))
    keys = jax.random.split(key, 2 + 2 * len(channels))
    i_stem, i_out = ParamInfo(Role.INPUT, image[2] * k2), ParamInfo(Role.OUTPUT, channels[-1])
    i_down = [ParamInfo(Role.HIDDEN, channels[s - 1] * k2) for s in range(1, len(channels))]
    i_res = [ParamInfo(Role.RESIDUAL, c * k2, total) for c in channels]
    stem = param.init(keys[0], (channels[0], image[2], kernel, kernel), i_stem, dtype)
    down = tuple(param.init(keys[2 + s], (channels[s], channels[s - 1], kernel, kernel), i_down[s - 1], dtype)
                 for s in range(1, len(channels)))
    blks = tuple(param.init(keys[2 + len(channels) + s], (nb[s], channels[s], channels[s], kernel, kernel),
                            i_res[s], dtype) for s in range(len(channels)))
    w_out = param.init(keys[1], (d_out, channels[-1]), i_out, dtype)
    return ConvPCN(stem, down, blks, w_out, act, tuple(image), (param.multiplier(i_stem), param.multiplier(i_out)),
                   tuple(param.multiplier(i) for i in i_down), tuple(param.multiplier(i) for i in i_res), bool(unroll))
