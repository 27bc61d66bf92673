"""Pixel normalisation, done one explicit way for every image set.

1. Integer pixels ``p`` in ``[0, max_value]`` (255 for uint8 images, 16 for digits) are
   scaled to ``u = p / max_value`` in ``[0, 1]``.
2. If ``standardise``: ``x = (u - mean) / std`` with the mean and (population) standard
   deviation of ``u`` over the *training* set only, so no test statistics leak in.
   Greyscale sets use one scalar mean/std; colour sets (channels last) one per channel.

Statistics are exact: they come from pixel-value histograms in integer arithmetic, and
the mapping is applied through a float32 lookup table indexed by the pixel value.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 512  # images per histogram chunk (keeps the temporaries in cache)


def pixel_histogram(pixels: np.ndarray, max_value: int, *, per_channel: bool) -> np.ndarray:
    """Counts of each pixel value: ``(max_value + 1,)`` or ``(channels, max_value + 1)``.

    Args:
        pixels: ``(n, ...)`` integers in ``[0, max_value]``; channels last if ``per_channel``.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype.kind not in "iu":
        raise ValueError(f"pixels: expected integer pixel values, got dtype {pixels.dtype}")
    if pixels.size and (pixels.min() < 0 or pixels.max() > max_value):
        raise ValueError(f"pixels: expected values in [0, {max_value}], got [{pixels.min()}, {pixels.max()}]")
    channels = pixels.shape[-1] if per_channel else 1
    counts = np.zeros((channels, max_value + 1), dtype=np.int64)
    for start in range(0, pixels.shape[0], _CHUNK):
        chunk = pixels[start : start + _CHUNK].reshape(-1, channels)
        for c in range(channels):
            counts[c] += np.bincount(chunk[:, c], minlength=max_value + 1)
    return counts if per_channel else counts[0]


def pixel_stats(pixels: np.ndarray, max_value: int, *, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of ``pixels / max_value``: scalars, or ``(channels,)``."""
    counts = pixel_histogram(pixels, max_value, per_channel=per_channel).astype(np.float64)
    values = np.arange(max_value + 1, dtype=np.float64) / max_value
    n = counts.sum(axis=-1)
    if np.any(n == 0):
        raise ValueError("pixels: cannot compute statistics of an empty set")
    mean = (counts * values).sum(axis=-1) / n
    var = (counts * (values - mean[..., None]) ** 2).sum(axis=-1) / n
    return mean, np.sqrt(var)


def normalise_pixels(
    train: np.ndarray,
    test: np.ndarray,
    *,
    max_value: int,
    per_channel: bool,
    standardise: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scale and (optionally) standardise integer images, then flatten them.

    Args:
        train: ``(n_train, *image_shape)`` integer pixels (statistics come from here).
        test: ``(n_test, *image_shape)`` integer pixels.
        max_value: the largest possible pixel value (255, or 16 for digits).
        per_channel: one mean/std per last-axis channel (colour images) instead of one.
        standardise: if false, only scale to ``[0, 1]`` (then mean 0, std 1 are returned).

    Returns:
        ``(x_train (n_train, d) float32, x_test (n_test, d) float32, mean, std)`` with
        ``mean``/``std`` float32 scalars or ``(channels,)``.
    """
    channels = train.shape[-1] if per_channel else 1
    if standardise:
        mean, std = pixel_stats(train, max_value, per_channel=per_channel)
        if np.any(std == 0):
            raise ValueError("train: constant pixels have zero standard deviation")
    else:
        mean, std = np.zeros(channels if per_channel else ()), np.ones(channels if per_channel else ())
    values = np.arange(max_value + 1, dtype=np.float64) / max_value
    table = ((values[:, None] - np.reshape(mean, (1, -1))) / np.reshape(std, (1, -1))).astype(np.float32)

    def apply(pixels: np.ndarray) -> np.ndarray:
        pixels = np.asarray(pixels)
        if pixels.size and (pixels.min() < 0 or pixels.max() > max_value):
            raise ValueError(f"pixels: expected values in [0, {max_value}]")
        idx = pixels.astype(np.intp, copy=False) if pixels.dtype != np.uint8 else pixels
        out = table[idx, np.arange(channels)] if per_channel else table[idx, 0]
        return out.reshape(pixels.shape[0], -1)

    return apply(train), apply(test), mean.astype(np.float32), std.astype(np.float32)
