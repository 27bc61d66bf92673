"""Evaluation of the feedforward network: loss and accuracy over a data set, in batches."""

from __future__ import annotations

from typing import Callable, NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..energy import EnergySpec, output_loss
from ..options import OutputLoss


class Evaluation(NamedTuple):
    loss: float
    accuracy: float


def eval_sums(model, x, y: Array, loss: OutputLoss) -> tuple[Array, Array]:
    """(Σ_i ℓ(y_i, ŷ_i), number of argmax hits) over one batch of the feedforward network.
    For outputs with more axes (tokens), accuracy counts per position, divided by the number
    of positions, so that dividing by the batch size gives the per-token accuracy."""
    y_hat = model(x)
    hits = (jnp.argmax(y_hat, -1) == jnp.argmax(y, -1)).reshape(y.shape[0], -1)
    return jnp.sum(output_loss(y_hat, y, loss)), jnp.sum(jnp.mean(hits, axis=1))


_eval_sums_jit = eqx.filter_jit(eval_sums)


def evaluate(model, x, y, spec: EnergySpec = EnergySpec(), batch_size: int = 1000,
             target: Callable | None = None) -> Evaluation:
    """Feedforward loss and accuracy (argmax ŷ == argmax y) over a data set, in batches.
    ``target`` maps a batch of stored targets to the model's (e.g. token ids → one-hot)."""
    target = (lambda yb: yb) if target is None else target  # noqa: E731
    loss, acc = batched_means(lambda xb, yb: _eval_sums_jit(model, xb, target(yb), spec.loss), x, y, batch_size)
    return Evaluation(float(loss), float(acc))


def batched_means(fn: Callable, x, y, batch_size: int):
    """Run ``fn(x_batch, y_batch) -> (loss_sum, correct)`` over the data in batches and return
    (mean loss, accuracy) as NumPy values (arrays if ``fn`` is vmapped over models)."""
    n = x.shape[0]
    if n == 0:
        raise ValueError("evaluate() got an empty data set")
    tot_loss, tot_correct = 0.0, 0.0
    for i in range(0, n, batch_size):
        l, c = fn(x[i : i + batch_size], y[i : i + batch_size])
        tot_loss = tot_loss + np.asarray(l, np.float64)
        tot_correct = tot_correct + np.asarray(c, np.float64)
    return tot_loss / n, tot_correct / n
