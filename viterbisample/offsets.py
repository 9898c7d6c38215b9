"""Token offsets: where each token of a segmentation came from in the original text.

A segmentation covers the normalized bytes, token after token, so token k spans bytes
[a_k, a_k + length_k) of them.  The normalizer says which input byte each normalized byte
came from (``Normalizer.normalize_with_offsets``), and a ``str`` input's bytes belong to
its characters, so each token gets the span of input characters (of bytes, for a
``bytes`` input) from the one its first byte came from to the one its last byte came
from, inclusive.  That holds for Viterbi paths and samples alike: a sampled token that
holds part of a multi-byte character gets that whole character, so two tokens that split
a character overlap on it.  What a normalizer inserts (a dummy prefix space) counts as
coming from the input byte it stands before.
"""

from __future__ import annotations

import numpy as np

from .text import Text


def char_of_byte(text: Text, data: bytes) -> np.ndarray | None:
    """For each byte of ``data`` (the UTF-8 of ``text``, surrogateescape) the index of the
    character it belongs to; None when they are the same (ASCII text, or bytes input)."""
    if not isinstance(text, str) or len(text) == len(data):
        return None
    sizes = [len(c.encode("utf-8", "surrogateescape")) for c in text]
    return np.repeat(np.arange(len(text), dtype=np.int64), sizes)


def token_spans(
    token_lengths: np.ndarray, source: np.ndarray | None, chars: np.ndarray | None
) -> list[tuple[int, int]]:
    """The (start, end) of each token in the input, from the byte lengths of the tokens
    (special tokens: length 0, span (0, 0)), the input byte of each normalized byte
    (``source``, None for the identity) and the character of each input byte (``chars``,
    None when bytes are characters)."""
    ends = np.cumsum(token_lengths)
    starts = ends - token_lengths
    spans = []
    for a, b, n in zip(starts.tolist(), ends.tolist(), token_lengths.tolist()):
        if n == 0:
            spans.append((0, 0))
            continue
        first, last = (a, b - 1) if source is None else (int(source[a]), int(source[b - 1]))
        if chars is not None:
            first, last = int(chars[first]), int(chars[last])
        spans.append((first, last + 1))
    return spans
