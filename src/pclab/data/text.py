"""Token-sequence data for next-token prediction: `TextDataset` and `load_text_dataset`.

======================  =====  =================================================================
name                    V      source
======================  =====  =================================================================
``"python-stdlib"``     98     CPython 3.11 standard library source, verified against a shipped
                               manifest (`pclab.data.stdlib_corpus`); characters as in
                               `pclab.data.char_vocab`; split by file (about 90 / 10)
``"dyck"``              5      balanced brackets from a seeded generator (`pclab.data.grammar`),
                               ``1 + 2·kinds`` tokens, with a known optimal loss
======================  =====  =================================================================

Every set gives inputs ``x (n, T) int32`` and targets ``y (n, T) int32`` with ``y[:, t]`` the
token after ``x[:, t]`` (so ``y[:, :-1] == x[:, 1:]``), for a context length ``T`` chosen by
the caller; `one_hot_tokens` makes ``(..., V)`` float32 targets from a batch of them.

The `Dataset` of `load_dataset` holds flat float inputs with one class label each; a
sequence of token ids with a target per position does not fit it, hence this separate type.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from typing import Any, Literal

import numpy as np

from pclab.data._checks import check_float, check_int
from pclab.data.char_vocab import CHAR_ALPHABET, CHAR_VOCAB_SIZE, UNK_ID
from pclab.data.grammar import DYCK_SYMBOLS, dyck_arrays, dyck_optimal_loss, dyck_vocab_size
from pclab.data.stdlib_corpus import (
    DEFAULT_VAL_FRACTION,
    is_validation_file,
    load_stdlib_tokens,
    read_manifest,
    split_tokens,
)

TEXT_DATASETS: tuple[str, ...] = ("python-stdlib", "dyck")
_ALIASES = {"stdlib": "python-stdlib", "python_stdlib": "python-stdlib", "dyck-k": "dyck"}


def bits_per_char(mean_ce_nats: Any) -> Any:
    """Bits per character (or per token) from a mean cross-entropy in nats: ``mean_ce / ln 2``.

    Works on Python floats and NumPy / JAX arrays alike (element-wise).
    """
    return mean_ce_nats / math.log(2.0)


def one_hot_tokens(tokens: Any, vocab_size: int) -> np.ndarray:
    """One-hot encode token ids of any shape ``(...)`` to ``(..., vocab_size)`` float32.

    Use it on batches: the whole ``python-stdlib`` training set one-hot is gigabytes.
    """
    tokens = np.asarray(tokens)
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    if tokens.size and (tokens.dtype.kind not in "iu" or tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"tokens: expected integers in [0, {vocab_size})")
    return np.eye(vocab_size, dtype=np.float32)[tokens]


def next_token_windows(tokens: np.ndarray, context: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cut a token stream into next-token windows.

    Window ``i`` covers ``tokens[i·stride : i·stride + context + 1]``: its first ``context``
    tokens are the inputs, its last ``context`` the targets. The default ``stride = context``
    makes the targets of consecutive windows tile the stream without overlap (every token
    but the first is a target exactly once, up to the tail that does not fill a window).

    Args:
        tokens: ``(N,)`` integer token ids, ``N >= context + 1``.
        context: ``T >= 1``.
        stride: ``>= 1``; default ``context``.

    Returns:
        ``(x, y)``, each ``(n, T) int32`` with ``n = (N - T - 1) // stride + 1``.
    """
    tokens = np.asarray(tokens)
    context = check_int("context", context, minimum=1)
    stride = context if stride is None else check_int("stride", stride, minimum=1)
    if tokens.ndim != 1 or tokens.shape[0] < context + 1:
        raise ValueError(f"tokens: expected a stream (N,) with N >= context + 1 = {context + 1}, got {tokens.shape}")
    windows = np.lib.stride_tricks.sliding_window_view(tokens, context + 1)[::stride]
    return windows[:, :-1].astype(np.int32), windows[:, 1:].astype(np.int32)


@dataclasses.dataclass(frozen=True, eq=False)
class TextDataset:
    """Next-token prediction windows over a vocabulary of ``V`` tokens.

    Attributes:
        name: the name given to `load_text_dataset`.
        x_train: ``(n_train, T)`` int32 input tokens in ``[0, V)``.
        y_train: ``(n_train, T)`` int32: ``y_train[i, t]`` is the token after ``x_train[i, t]``.
        x_val: ``(n_val, T)`` int32, the validation split (held-out files / sequences).
        y_val: ``(n_val, T)`` int32.
        vocab_size: ``V``.
        alphabet: the symbol each id stands for (``len == V``), for `decode`.
        optimal_loss: the mean cross-entropy (nats per target) of a perfect model, where known
            (``dyck``: exact expectation, `dyck_optimal_loss`); ``None`` for natural text.
        info: facts about the set (file and character counts, stride, generator settings).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    vocab_size: int
    alphabet: tuple[str, ...]
    optimal_loss: float | None = None
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.alphabet) != self.vocab_size:
            raise ValueError(f"alphabet: expected {self.vocab_size} symbols, got {len(self.alphabet)}")
        for split in ("train", "val"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 2 or y.shape != x.shape or x.dtype != np.int32 or y.dtype != np.int32:
                raise ValueError(f"{split}: expected int32 x and y of one shape (n, T), got "
                                 f"{x.dtype} {x.shape} and {y.dtype} {y.shape}")
            if x.shape[1] != self.x_train.shape[1]:
                raise ValueError(f"x_{split}: context {x.shape[1]} differs from the training set's")
            for a in (x, y):
                if a.size and (a.min() < 0 or a.max() >= self.vocab_size):
                    raise ValueError(f"{split}: token ids outside [0, {self.vocab_size})")

    @property
    def context(self) -> int:
        """``T``, the number of positions per window."""
        return self.x_train.shape[1]

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    @property
    def n_val(self) -> int:
        return self.x_val.shape[0]

    def one_hot(self, split: Literal["train", "val"] = "train") -> np.ndarray:
        """``(n, T, V)`` float32 one-hot targets of ``split`` (large: prefer `one_hot_tokens` per batch)."""
        if split not in ("train", "val"):
            raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
        return one_hot_tokens(getattr(self, f"y_{split}"), self.vocab_size)

    def decode(self, ids: Any) -> str:
        """The text of token ids (any shape, read in C order)."""
        ids = np.asarray(ids).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"ids: expected integers in [0, {self.vocab_size})")
        return "".join(self.alphabet[i] for i in ids.tolist())

    def __repr__(self) -> str:
        return (f"TextDataset(name={self.name!r}, train={self.x_train.shape}, val={self.x_val.shape}, "
                f"vocab_size={self.vocab_size})")


def _stdlib(context: int, cache_dir: Any, *, root: str | os.PathLike[str] | None = None,
            manifest: Any = None, val_fraction: float = DEFAULT_VAL_FRACTION, stride: int | None = None) -> TextDataset:
    val_fraction = check_float("val_fraction", val_fraction)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a number in (0, 1), got {val_fraction}")
    m = read_manifest(manifest)
    paths = [e["path"] for e in m["files"]]
    arrays = load_stdlib_tokens(cache_dir=cache_dir, root=root, manifest=m if manifest is not None else None)
    streams = split_tokens(arrays, paths, val_fraction)
    n_val_files = sum(is_validation_file(p, val_fraction) for p in paths)
    x_train, y_train = next_token_windows(streams["train"], context, stride)
    x_val, y_val = next_token_windows(streams["val"], context, stride)
    info = {"files_train": len(paths) - n_val_files, "files_val": n_val_files,
            "chars_train": int(streams["train"].size), "chars_val": int(streams["val"].size),
            "unknown_chars": int(np.count_nonzero(arrays["tokens"] == UNK_ID)),
            "stride": context if stride is None else stride, "python": m.get("python")}
    return TextDataset("python-stdlib", x_train, y_train, x_val, y_val, CHAR_VOCAB_SIZE, CHAR_ALPHABET, None, info)


def _dyck(context: int, cache_dir: Any, **options: Any) -> TextDataset:
    arrays = dyck_arrays(context, **options)
    grammar = {k: options.get(k, p.default) for k, p in inspect.signature(dyck_arrays).parameters.items()
               if k in ("kinds", "p_open", "p_end", "max_depth")}
    info = {**grammar, "seed": options.get("seed", 0), "h_val_mean": float(arrays["h_val"].mean())}
    v = dyck_vocab_size(grammar["kinds"])
    return TextDataset("dyck", arrays["x_train"], arrays["y_train"], arrays["x_val"], arrays["y_val"], v,
                       tuple(DYCK_SYMBOLS[:v]), dyck_optimal_loss(context, **grammar), info)


_LOADERS = {"python-stdlib": (_stdlib, ("root", "manifest", "val_fraction", "stride")),
            "dyck": (_dyck, ("n_train", "n_val", "kinds", "p_open", "p_end", "max_depth", "seed"))}


def load_text_dataset(name: str, context: int, *, cache_dir: str | os.PathLike[str] | None = None,
                      **options: Any) -> TextDataset:
    """Load a token-sequence data set (one of `TEXT_DATASETS`) as next-token windows of ``context``.

    Args:
        name: ``"python-stdlib"`` or ``"dyck"``.
        context: ``T``, the number of input (and target) positions per window.
        cache_dir: where the encoded corpus is cached (see `pclab.data.cache`); ``dyck`` is
            generated and not cached.
        **options: per data set:
            ``python-stdlib``: ``root`` (the standard library folder; default
            ``$PCLAB_STDLIB_DIR`` or this Python's), ``manifest`` (a dict or JSON path; default
            the shipped one), ``val_fraction`` (0.1), ``stride`` (``context``: windows whose
            targets do not overlap);
            ``dyck``: ``n_train`` (4096), ``n_val`` (512), ``kinds`` (2), ``p_open`` (0.5),
            ``p_end`` (0.25), ``max_depth`` (8), ``seed`` (0; or a JAX key).

    Returns:
        a `TextDataset`: ``x_train, y_train (n_train, T) int32``, ``x_val, y_val (n_val, T) int32``.

    Raises:
        ValueError: unknown name or option, or a corpus too short for ``context``.
        DatasetUnavailable: corpus files missing; `ChecksumMismatch` (a subclass): a file
            differs from the manifest. The message names the files and how to get matching ones.
    """
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in _LOADERS:
        raise ValueError(f"name: unknown text data set {name!r}; valid names: {', '.join(TEXT_DATASETS)}")
    context = check_int("context", context, minimum=1)
    fn, valid = _LOADERS[key]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"load_text_dataset({key!r}): unknown option(s) {unknown}; valid options: {list(valid)}")
    return fn(context, cache_dir, **options)
