"""The models ``pclab train --model NAME`` builds, as registered entries.

Each :class:`ModelEntry` builds a PCN from a :class:`TrainConfig`, the input shape and the
number of classes, and says whether it takes images (``(H, W, C)``, channels last) or flat
vectors. A new architecture registers one entry; the runner, sweep and cost model ask it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax

from ..nn import convnet, mlp, resnet
from ..params import get_param
from ..registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    """``build(config, input_shape, n_classes)`` → a PCN; ``images``: inputs keep their image
    shape (H, W, C) instead of being flattened."""

    build: Callable
    images: bool = False


MODELS: Registry[ModelEntry] = Registry("model")


def _dense(builder):
    def build(config, d_in, d_out):
        return builder(jax.random.PRNGKey(config.seed), int(d_in), config.width, config.depth, d_out, act=config.act,
                       param=get_param(config.param, config.gamma), bias=config.bias)

    return build


def _conv(config, image, d_out):
    channels = tuple(config.channels * 2**s for s in range(config.stages))
    return convnet(jax.random.PRNGKey(config.seed), tuple(image), d_out, channels=channels, blocks=config.blocks,
                   act=config.act, param=get_param(config.param, config.gamma))


MODELS.register("resnet", ModelEntry(_dense(resnet)))
MODELS.register("mlp", ModelEntry(_dense(mlp)))
MODELS.register("conv", ModelEntry(_conv, images=True))
