"""The `Dataset` type every loader returns, and one-hot targets."""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """One-hot encode integer labels.

    Args:
        labels: ``(n,)`` integers in ``[0, num_classes)``.
        num_classes: ``k >= 1``.

    Returns:
        ``(n, k)`` float32 array with a single 1 per row.

    Raises:
        ValueError: a label outside ``[0, num_classes)``, non-integer labels, or ``k < 1``.
    """
    labels = np.asarray(labels)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes: expected an integer >= 1, got {num_classes!r}")
    if labels.ndim != 1:
        raise ValueError(f"labels: expected shape (n,), got {labels.shape}")
    if labels.size and labels.dtype.kind not in "iu":
        raise ValueError(f"labels: expected integer labels, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels: expected values in [0, {num_classes}), got range "
            f"[{labels.min()}, {labels.max()}]"
        )
    out = np.zeros((labels.shape[0], int(num_classes)), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels.astype(np.int64)] = 1.0
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set as flat numpy arrays.

    Attributes:
        name: the registry name (``"mnist"``, ``"digits"``, ...).
        x_train: ``(n_train, d)`` float32 inputs, ``d = prod(image_shape)``.
        y_train: ``(n_train,)`` int64 labels in ``[0, num_classes)``.
        x_test: ``(n_test, d)`` float32.
        y_test: ``(n_test,)`` int64.
        num_classes: number of classes ``k``.
        image_shape: shape of one example before flattening, e.g. ``(28, 28)``,
            ``(32, 32, 3)`` (channels last), ``(8, 8)``; ``(d,)`` for vector data.
        mean: what was subtracted after scaling pixels to ``[0, 1]``: a scalar for
            greyscale sets, ``(channels,)`` for colour sets; 0 if not standardised.
        std: what the centred values were divided by (same shape as ``mean``); 1 if not.

    Inputs satisfy ``x = (pixels / max_pixel - mean) / std``; `unnormalise` inverts it.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    image_shape: tuple[int, ...]
    mean: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((), np.float32))
    std: np.ndarray = dataclasses.field(default_factory=lambda: np.ones((), np.float32))

    def __post_init__(self) -> None:
        d = int(np.prod(self.image_shape))
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 2 or x.shape[1] != d:
                raise ValueError(f"x_{split}: expected shape (n, {d}), got {x.shape}")
            if y.shape != (x.shape[0],):
                raise ValueError(f"y_{split}: expected shape ({x.shape[0]},), got {y.shape}")
            if x.dtype != np.float32 or y.dtype != np.int64:
                raise ValueError(f"{split}: expected float32 inputs and int64 labels")
            if y.size and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(f"y_{split}: expected labels in [0, {self.num_classes})")

    @property
    def dim(self) -> int:
        """Input dimension ``d``."""
        return self.x_train.shape[1]

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    @property
    def n_test(self) -> int:
        return self.x_test.shape[0]

    def one_hot(self, split: Literal["train", "test"] = "train") -> np.ndarray:
        """``(n, num_classes)`` float32 one-hot targets of ``split``."""
        return one_hot(self._labels(split), self.num_classes)

    def images(self, split: Literal["train", "test"] = "train") -> np.ndarray:
        """Inputs of ``split`` reshaped to ``(n, *image_shape)`` (a view, still normalised)."""
        self._labels(split)  # validates ``split``
        x = getattr(self, f"x_{split}")
        return x.reshape((x.shape[0], *self.image_shape))

    def unnormalise(self, x: np.ndarray) -> np.ndarray:
        """Map normalised inputs ``(..., d)`` back to ``[0, 1]`` pixel values."""
        x = np.asarray(x)
        lead = x.shape[:-1]
        img = x.reshape((*lead, *self.image_shape)) * self.std + self.mean
        return img.reshape(x.shape).astype(np.float32)

    def _labels(self, split: str) -> np.ndarray:
        if split == "train":
            return self.y_train
        if split == "test":
            return self.y_test
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
            f"num_classes={self.num_classes}, image_shape={self.image_shape})"
        )
