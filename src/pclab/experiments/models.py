"""The models ``pclab train --model NAME`` builds, as registered entries.

Each :class:`ModelEntry` builds a PCN from a :class:`TrainConfig`, the input shape and the
number of outputs, and says what it reads: flat vectors, images (``(H, W, C)``, channels
last) or token ids (``(B, T)`` windows of a text data set, a vocabulary of V in and V out).
A new architecture registers one entry; the runner, sweep and cost model ask it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

import jax

from ..nn import convnet, mlp, resnet, transformer
from ..params import get_param
from ..registry import Registry


class Inputs(str, enum.Enum):
    """What a model reads: flat vectors (n, D), images (n, H, W, C) or token ids (n, T)."""

    VECTORS = "vectors"
    IMAGES = "images"
    TOKENS = "tokens"


@dataclass(frozen=True)
class ModelEntry:
    """``build(config, input_shape, n_out)`` → a PCN; ``inputs``: what it reads (images keep
    their shape (H, W, C) instead of being flattened; token models get the vocabulary V as
    both ``input_shape`` and ``n_out``)."""

    build: Callable
    inputs: Inputs = Inputs.VECTORS

    @property
    def images(self) -> bool:
        return self.inputs is Inputs.IMAGES

    @property
    def tokens(self) -> bool:
        return self.inputs is Inputs.TOKENS


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


def _transformer(config, vocab, n_out):
    return transformer(jax.random.PRNGKey(config.seed), int(vocab), d_model=config.d_model, heads=config.heads,
                       blocks=config.blocks, context=config.context, param=get_param(config.param, config.gamma))


MODELS.register("resnet", ModelEntry(_dense(resnet)))
MODELS.register("mlp", ModelEntry(_dense(mlp)))
MODELS.register("conv", ModelEntry(_conv, Inputs.IMAGES))
MODELS.register("transformer", ModelEntry(_transformer, Inputs.TOKENS))
