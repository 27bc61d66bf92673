r"""Generative PCNs: labels (or a latent) at the bottom of the chain, images at the top.

In generative mode a model of input dimension K (the label) and output dimension D (the
image) is trained with x = the one-hot label as the *initial* latent and y = the image:
``make_train_step(..., mode=Mode.GENERATIVE)`` clamps only the image and infers the latent with
the activities (:class:`pclab.InferenceProblem`). This module evaluates and samples such
models:

* :func:`evaluate_generative` — classification and reconstruction by generative inference: the
  image is clamped, the latent starts at the **mean label** of the evaluated set (its class
  frequencies, identical for every example, so it carries no information about any one image;
  1/K each for balanced classes) and the activities at the feedforward pass from it; inference
  runs with the run's solver and step count. Then ``recon_mse`` = (1/(nD)) Σ_i ‖y_i − ŷ(x*_i)‖²,
  the mean squared error per pixel of the image *generated* from the inferred latent x*
  (the feedforward pass, so the reconstruction goes through the latent), and
  ``test_accuracy`` = mean_i [argmax x*_i = argmax label_i]. ``test_loss`` = ``recon_mse``.
* :func:`sample` — the feedforward pass from clamped labels: ŷ(label), the generated images.
* :func:`samples_figure` — a PNG grid of one sample per class.

Models are any :class:`pclab.nn.AbstractPCN` with vector inputs (dense: ``mlp``, ``resnet``);
for a rule's wrapper model (bPC, hPC) inference uses its PCN interface (the bottom-up
network's PC energy).
"""

from __future__ import annotations

import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..energy import EnergySpec
from ..inference import infer
from ..options import Mode


def _check_pair(labels, images) -> None:
    for name, a in (("labels", labels), ("images", images)):
        if not hasattr(a, "shape") or a.ndim != 2:
            raise ValueError(f"{name} must be a 2-d array (n, features); got shape {getattr(a, 'shape', None)}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels and images have different numbers of rows: {labels.shape[0]} and {images.shape[0]}")
    if labels.shape[0] == 0:
        raise ValueError("evaluate_generative() got an empty data set")


@eqx.filter_jit
def _generative_sums(model, labels, images, latent0, spec, inference):
    """(Σ squared reconstruction error, number of correct latent argmaxes) over one batch."""
    lat0 = jnp.broadcast_to(latent0, labels.shape).astype(images.dtype)
    sol = infer(model, lat0, images, solver=inference.solver, spec=spec, max_steps=inference.max_steps,
                rtol=inference.rtol, atol=inference.atol, init=inference.init, mode=Mode.GENERATIVE, throw=False)
    recon = model(sol.latent)
    hits = jnp.argmax(sol.latent, axis=-1) == jnp.argmax(labels, axis=-1)
    return jnp.sum(jnp.square(recon - images)), jnp.sum(hits)


def evaluate_generative(model, labels: Float[Array, "n K"], images: Float[Array, "n D"], spec: EnergySpec,
                        inference, batch_size: int = 500) -> dict[str, float]:
    """Reconstruction and classification by generative inference (module docstring).

    Args:
        model: a PCN mapping K label units to D pixels. labels: (n, K) one-hot. images: (n, D).
        spec: the energy's output term. inference: a :class:`pclab.learning.InferenceConfig`
            (solver, max_steps, tolerances, init of the activities).
        batch_size: examples per compiled call (memory).
    Returns:
        ``{"recon_mse", "test_accuracy", "test_loss"}`` as floats (``test_loss`` = ``recon_mse``).
    """
    _check_pair(labels, images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not valid; expected an integer >= 1")
    labels, images = jnp.asarray(labels), jnp.asarray(images)
    model.check_batch(labels[:1].astype(images.dtype), images[:1])
    latent0 = jnp.mean(labels.astype(images.dtype), axis=0)
    n, d = images.shape
    sq, hits = 0.0, 0.0
    for i in range(0, n, batch_size):
        s, h = _generative_sums(model, labels[i : i + batch_size], images[i : i + batch_size], latent0, spec, inference)
        sq, hits = sq + float(s), hits + float(h)
    mse = sq / (n * d)
    return {"recon_mse": mse, "test_accuracy": hits / n, "test_loss": mse}


@eqx.filter_jit
def _feedforward(model, x):
    return model(x)


def sample(model, labels: Float[Array, "n K"]) -> Float[Array, "n D"]:
    """The generated images: the feedforward pass ŷ(label) of the labels clamped as the latent."""
    labels = jnp.asarray(labels)
    dtype = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))[0].dtype
    x = labels.astype(dtype)
    model.check_input(x)
    return _feedforward(model, x)


def _grid_shape(d: int, image_shape) -> tuple[int, ...]:
    if image_shape is None:
        s = math.isqrt(d)
        return (s, s) if s * s == d else (1, d)
    shape = tuple(int(v) for v in image_shape)
    if int(np.prod(shape)) != d:
        raise ValueError(f"image_shape={shape} has {int(np.prod(shape))} pixels; the model generates {d} per image")
    if len(shape) == 3 and shape[2] == 1:
        shape = shape[:2]
    if len(shape) not in (2, 3):
        raise ValueError(f"image_shape={shape} is not valid; expected (H, W) or (H, W, C)")
    return shape


def samples_figure(model, n_classes: int, path, image_shape=(28, 28)) -> Path:
    """Write a PNG grid of one generated image per class (:func:`sample` of the one-hot
    labels 0..K−1) to ``path``, atomically; returns the path. ``image_shape``: (H, W), (H, W, C)
    or ``None`` (square if the pixel count is a square, else one row). Each image is shown
    min–max scaled (the data are standardised)."""
    from ..report.figures import panels, save_figure

    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
        raise ValueError(f"n_classes={n_classes!r} is not valid; expected an integer >= 1")
    images = np.asarray(sample(model, jnp.eye(n_classes)), np.float64)
    shape = _grid_shape(images.shape[1], image_shape)
    ncols = min(n_classes, 10)
    fig, axes = panels(n_classes, ncols=ncols, panel_size=(1.3, 1.45), suptitle="generated samples, one per class")
    for k, ax in enumerate(axes):
        img = images[k].reshape(shape)
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"class {k}", fontsize=8)
    return save_figure(fig, path)
