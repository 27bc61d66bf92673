r"""Freshly initialised PCNs and their layer maps, drawn with NumPy (no XLA compilation).

Sweeps over width × depth need one network per grid cell; drawing the weights with
``jax.random`` compiles a program per shape, which dominates on a small CPU. These helpers
draw the same *distribution* as :func:`pclab.mlp` / :func:`pclab.resnet` (not the same
numbers): W from the parameterisation's initialisation (U(±1/√fan_in) for SP, N(0, 1)
otherwise) and multipliers a_l from :meth:`pclab.Parameterisation.multipliers`. The layer
maps of the linear network are

    B_1 = a_1 W_1 (N, D),   B_l = s·I + a_l W_l (N, N) for l = 2..L−1,   B_L = a_L W_L (O, N),

with s = 1 for residual nets (``skips=True``), else 0.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..nn.dense import PCN
from ..options import Activation, parse_option
from ..params import ParamInfo, Role, WeightInit, get_param


def _draw(rng: np.random.Generator, init: WeightInit, shape: tuple[int, ...]) -> np.ndarray:
    if init is WeightInit.UNIFORM_FAN_IN:
        bound = 1.0 / np.sqrt(shape[-1])
        return rng.uniform(-bound, bound, size=shape)
    return rng.standard_normal(size=shape)


def _weights(seed, d_in, width, depth, d_out, param, skips):
    for name, v, lo in (("d_in", d_in, 1), ("width", width, 1), ("depth", depth, 2), ("d_out", d_out, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}={v!r} is not valid; expected an integer >= {lo}")
    p = get_param(param)
    rng = np.random.default_rng(seed)
    init = p.weight_init(ParamInfo(Role.HIDDEN, width))
    ws = (_draw(rng, init, (width, d_in)), _draw(rng, init, (depth - 2, width, width)), _draw(rng, init, (d_out, width)))
    return ws, p.multipliers(d_in, width, depth, bool(skips))


def random_pcn(
    seed: int | np.random.Generator,
    d_in: int,
    width: int,
    depth: int,
    d_out: int,
    *,
    act: str = "linear",
    param: str = "mupc",
    skips: bool = True,
    dtype=jnp.float32,
) -> PCN:
    """A bias-free :class:`pclab.PCN` with ``depth`` = L ≥ 2 weight layers, weights drawn by NumPy."""
    (w_in, w_hid, w_out), mult = _weights(seed, d_in, width, depth, d_out, param, skips)
    return PCN(w_in=jnp.asarray(w_in, dtype), w_hidden=jnp.asarray(w_hid, dtype), w_out=jnp.asarray(w_out, dtype),
               b_in=None, b_hidden=None, b_out=None, act=parse_option(Activation, act, "act"), skips=bool(skips),
               mult=mult)


def random_layer_maps(
    seed: int | np.random.Generator,
    d_in: int,
    width: int,
    depth: int,
    d_out: int,
    *,
    param: str = "mupc",
    skips: bool = True,
    dtype=np.float64,
) -> list[np.ndarray]:
    """Maps B_1..B_L (NumPy arrays) of a random linear PCN; the same draws as :func:`random_pcn`."""
    (w_in, w_hid, w_out), mult = _weights(seed, d_in, width, depth, d_out, param, skips)
    eye = np.eye(width) if skips else 0.0
    maps = [mult.input * w_in] + [eye + mult.hidden * w for w in w_hid] + [mult.output * w_out]
    return [m.astype(dtype) for m in maps]
