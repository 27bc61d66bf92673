"""A synthetic grammar for sequence models: streams of Dyck-k words (balanced brackets).

Tokens: ``0 = "|"`` (word boundary) and, for bracket kind ``j < kinds``, ``1 + 2j`` its
opener and ``2 + 2j`` its closer: ``"|()[]{}<>"`` for ``kinds = 4``; ``V = 1 + 2·kinds``.

Each sequence starts with ``"|"`` and is then generated one token at a time from the stack
of open brackets (depth ``d``):

* ``d = 0``: ``"|"`` with probability ``p_end``, else an opener of a uniformly drawn kind;
* ``0 < d < max_depth``: an opener of a uniform kind with probability ``p_open``, else the
  closer of the innermost open bracket;
* ``d = max_depth``: the closer of the innermost open bracket.

So every sequence is a string of balanced words separated by ``"|"``, and its last word may
still be open (it is a prefix of a balanced word). Since the stack is a function of the
tokens so far, the next token's distribution given all previous tokens of the sequence is
the rule above, and its entropy depends only on the depth:
``H_0 = -p_end ln p_end - (1 - p_end) ln((1 - p_end)/kinds)``,
``H_d = -p_open ln(p_open/kinds) - (1 - p_open) ln(1 - p_open)`` for ``0 < d < max_depth``,
``H_max_depth = 0``. A perfect model's mean cross-entropy is their mean over the target
positions (`dyck_optimal_loss`, exact, from the depth's distribution at each position).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pclab.data._checks import check_float, check_int
from pclab.data.synthetic import _seed_sequence

DYCK_SYMBOLS = "|()[]{}<>"
BOUNDARY = 0


def _check(kinds: int, p_open: float, p_end: float, max_depth: int) -> tuple[int, float, float, int]:
    kinds = check_int("kinds", kinds, minimum=1)
    if kinds > 4:
        raise ValueError(f"kinds: expected an integer in [1, 4], got {kinds}")
    p_open, p_end = check_float("p_open", p_open), check_float("p_end", p_end)
    if not 0.0 < p_open < 1.0 or not 0.0 < p_end < 1.0:
        raise ValueError(f"p_open, p_end: expected numbers in (0, 1), got {p_open}, {p_end}")
    return kinds, p_open, p_end, check_int("max_depth", max_depth, minimum=1)


def dyck_vocab_size(kinds: int) -> int:
    """``1 + 2·kinds`` tokens."""
    return 1 + 2 * kinds


def dyck_depth_entropies(*, kinds: int = 2, p_open: float = 0.5, p_end: float = 0.25, max_depth: int = 8) -> np.ndarray:
    """``(max_depth + 1,)`` float64: the next token's entropy (nats) at each stack depth."""
    kinds, p_open, p_end, max_depth = _check(kinds, p_open, p_end, max_depth)
    h = np.empty(max_depth + 1)
    h[0] = -p_end * np.log(p_end) - (1 - p_end) * np.log((1 - p_end) / kinds)
    h[1:max_depth] = -p_open * np.log(p_open / kinds) - (1 - p_open) * np.log(1 - p_open)
    h[max_depth] = 0.0
    return h


def dyck_optimal_loss(context: int, *, kinds: int = 2, p_open: float = 0.5, p_end: float = 0.25,
                      max_depth: int = 8) -> float:
    """A perfect model's expected cross-entropy (nats per token) on sequences of ``context`` targets.

    The mean over positions ``t < context`` of ``E[H_{d_t}]``, with the depth after the
    ``t``-th input token, ``d_t``, propagated exactly from ``d_0 = 0`` (the leading ``"|"``).
    """
    context = check_int("context", context, minimum=1)
    h = dyck_depth_entropies(kinds=kinds, p_open=p_open, p_end=p_end, max_depth=max_depth)
    p = np.zeros(max_depth + 1)
    p[0] = 1.0
    total = 0.0
    for _ in range(context):
        total += float(p @ h)
        q = np.zeros_like(p)
        q[0] += p[0] * p_end
        q[1] += p[0] * (1 - p_end)
        if max_depth > 1:
            q[2:] += p[1:max_depth] * p_open
            q[:max_depth - 1] += p[1:max_depth] * (1 - p_open)
        q[max_depth - 1] += p[max_depth]
        p = q
    return total / context


def dyck_sequences(n: int, length: int, *, kinds: int = 2, p_open: float = 0.5, p_end: float = 0.25,
                   max_depth: int = 8, seed: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` independent sequences of ``length`` tokens (the first is ``"|"``) from the grammar.

    Args:
        seed: an int >= 0 or a JAX PRNG key (NumPy's PCG64 is seeded from it, as in
            `pclab.data.synthetic`).

    Returns:
        ``(tokens (n, length) int32, depth (n, length) int32)``: ``depth[:, t]`` is the number
        of open brackets after ``tokens[:, :t + 1]``, which fixes the next token's distribution.
    """
    kinds, p_open, p_end, max_depth = _check(kinds, p_open, p_end, max_depth)
    n, length = check_int("n", n, minimum=0), check_int("length", length, minimum=1)
    return _generate(np.random.default_rng(_seed_sequence(seed)), n, length, kinds, p_open, p_end, max_depth)


def _generate(rng: np.random.Generator, n: int, length: int, kinds: int, p_open: float, p_end: float,
              max_depth: int) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.zeros((n, length), np.int32)
    depth = np.zeros((n, length), np.int32)
    stack = np.zeros((n, max_depth), np.int32)  # kinds of the open brackets, innermost at depth - 1
    d = np.zeros(n, np.int64)
    rows = np.arange(n)
    for t in range(1, length):
        u, kind = rng.random(n), rng.integers(0, kinds, n)
        p = np.where(d == 0, 1 - p_end, np.where(d == max_depth, 0.0, p_open))  # probability of opening
        opens = u < p
        closes = (d > 0) & ~opens
        top = stack[rows, np.maximum(d - 1, 0)]
        tok = np.where(opens, 1 + 2 * kind, np.where(closes, 2 + 2 * top, BOUNDARY))
        stack[rows[opens], d[opens]] = kind[opens]
        d = d + opens - closes
        tokens[:, t], depth[:, t] = tok, d
    return tokens, depth


def dyck_arrays(context: int, *, n_train: int = 4096, n_val: int = 512, kinds: int = 2, p_open: float = 0.5,
                p_end: float = 0.25, max_depth: int = 8, seed: Any = 0) -> dict[str, np.ndarray]:
    """Next-token windows of Dyck sequences: ``x = s[:, :context]``, ``y = s[:, 1:]``.

    Train and validation sequences come from independent streams of ``seed`` (so the
    validation set does not change with ``n_train``).

    Returns:
        ``x_train, y_train (n_train, context) int32``, ``x_val, y_val (n_val, context) int32``
        and ``h_train, h_val (n, context) float64``: the entropy of the true distribution of
        each target given the inputs up to it (a perfect model's expected loss there).
    """
    context = check_int("context", context, minimum=1)
    n_train, n_val = check_int("n_train", n_train, minimum=1), check_int("n_val", n_val, minimum=1)
    h = dyck_depth_entropies(kinds=kinds, p_open=p_open, p_end=p_end, max_depth=max_depth)
    kinds, p_open, p_end, max_depth = _check(kinds, p_open, p_end, max_depth)
    out = {}
    for split, n, ss in zip(("train", "val"), (n_train, n_val), _seed_sequence(seed).spawn(2)):
        tokens, depth = _generate(np.random.default_rng(ss), n, context + 1, kinds, p_open, p_end, max_depth)
        out[f"x_{split}"], out[f"y_{split}"] = np.ascontiguousarray(tokens[:, :-1]), np.ascontiguousarray(tokens[:, 1:])
        out[f"h_{split}"] = h[depth[:, :-1]]
    return out

