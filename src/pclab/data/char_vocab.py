"""The fixed character vocabulary of the text corpus: printable ASCII, tab, newline and unknown.

=====  =====================================================================
id     character
=====  =====================================================================
0      unknown: every other character (non-ASCII letters, ``\\r``, form feed,
       other control characters); decodes to ``U+FFFD`` (``"\\ufffd"``)
1      ``"\\t"``
2      ``"\\n"``
3–97   ``" "`` (32) to ``"~"`` (126), in code-point order: id = code point − 29
=====  =====================================================================

So ``CHAR_VOCAB_SIZE = 98``. One character (one Unicode code point of the UTF-8 text) is one
token, so a non-ASCII letter is one unknown token, not several. Text that uses only the
known characters round-trips exactly: ``decode_chars(encode_chars(s)) == s``. The table
never changes; `CHAR_VOCAB_VERSION` names it in cache manifests.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

UNK_ID = 0
UNK_CHAR = "\ufffd"
CHAR_ALPHABET: tuple[str, ...] = (UNK_CHAR, "\t", "\n", *(chr(c) for c in range(32, 127)))
CHAR_VOCAB_SIZE = len(CHAR_ALPHABET)  # 98
CHAR_VOCAB_VERSION = "printable-ascii-tab-newline-unk-98"

# Code point -> id for the 128 ASCII code points (UNK_ID for the control characters and DEL).
_ASCII_TO_ID = np.zeros(128, dtype=np.uint8)
for _i, _c in enumerate(CHAR_ALPHABET[1:], start=1):
    _ASCII_TO_ID[ord(_c)] = _i


def encode_chars(text: str) -> np.ndarray:
    """Token ids of ``text``, one per character.

    Returns:
        ``(len(text),) uint8`` ids in ``[0, CHAR_VOCAB_SIZE)``; characters outside the
        vocabulary map to `UNK_ID`.
    """
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    return _ASCII_TO_ID[np.minimum(points, 127)]  # 127 (DEL) is unknown, and so is all above it


def decode_chars(ids: Iterable[int] | np.ndarray) -> str:
    """The text of token ids (any shape, read in C order); `UNK_ID` becomes ``"\\ufffd"``.

    Raises:
        ValueError: an id outside ``[0, CHAR_VOCAB_SIZE)``.
    """
    ids = np.asarray(ids).ravel()
    if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= CHAR_VOCAB_SIZE):
        raise ValueError(f"ids: expected integers in [0, {CHAR_VOCAB_SIZE}), got {ids.dtype} "
                         f"in [{ids.min()}, {ids.max()}]")
    return "".join(CHAR_ALPHABET[i] for i in ids.tolist())
