"""Seed vocabularies: the most frequent byte substrings of a corpus.

``seed_pieces`` chooses the trainer's seeds among the right-closed frequent substrings of
the units (``substrings.count_substrings``), best count * length first (the bytes a piece
would cover), on a seeded sample of the units when they are large.

``frequent_substrings`` is a small pure-Python variant for quick realistic test
vocabularies: the corpus is cut into pre-tokens (a letter run, a digit run or a punctuation run, each
with at most one leading space, or a run of white space); every substring of a pre-token
up to ``max_len`` bytes is counted, weighted by the pre-token's count.  Scores are log
relative frequencies.  This is the seeding step of Unigram training (ALGORITHMS.md
section 7.1) and, on its own, a quick realistic vocabulary for tests and benchmarks.

Not here: EM and pruning.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np
import regex
from numba import njit

from ..logmath import log_normalize
from ..utf8 import utf8_valid
from .substrings import count_substrings
from .units import Units

# Seeds only need to contain the pieces that EM will keep, so on large corpora they are
# counted on a seeded random sample of the distinct units of about this many bytes.
SEED_SAMPLE_BYTES = 2_000_000


def seed_pieces(
    units: Units,
    size: int,
    max_piece_bytes: int,
    whole_characters: bool,
    split_digits: bool,
    sample_bytes: int = SEED_SAMPLE_BYTES,
    min_count: float = 2.0,
) -> tuple[list[bytes], np.ndarray]:
    """Up to ``size`` multi-byte seed pieces, best count * length first, and their counts
    (in the sample).  With ``whole_characters`` every seed is valid UTF-8; with
    ``split_digits`` no seed holds a digit.  Deterministic."""
    if int(units.ends[-1] if len(units) else 0) > sample_bytes:
        units = units.subset(units.sample(sample_bytes))
    pos, length, count, _ = count_substrings(
        units.buf, units.starts, units.ends, units.counts, max_piece_bytes, min_count, whole_characters
    )
    ok = _allowed(units.buf, pos, length, whole_characters, split_digits)
    pos, length, count = pos[ok], length[ok], count[ok]
    value = count * length
    if len(value) > size:  # only the best candidates need a full sort
        top = np.argpartition(-value, size - 1)[:size]
    else:
        top = np.arange(len(value))
    # Ties by position then length: a fixed order whatever the sort.
    top = top[np.lexsort((length[top], pos[top], -value[top]))]
    raw = units.buf.tobytes()
    pieces = [raw[p : p + n] for p, n in zip(pos[top].tolist(), length[top].tolist())]
    return pieces, count[top]


@njit(cache=True, nogil=True)
def _allowed(buf, pos, length, whole_characters, split_digits):
    """Which substrings may be seeds: valid UTF-8 (with ``whole_characters``) and
    without ASCII digits (with ``split_digits``)."""
    ok = np.ones(pos.shape[0], np.bool_)
    for k in range(pos.shape[0]):
        i = pos[k]
        end = i + length[k]
        if split_digits:
            for t in range(i, end):
                if 48 <= buf[t] <= 57:
                    ok[k] = False
                    break
        if whole_characters and ok[k]:
            ok[k] = utf8_valid(buf, i, end)
    return ok


PRETOKEN = regex.compile(rb" ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+")


def count_pretokens(lines: Iterable[bytes]) -> Counter[bytes]:
    """Pre-token counts of a corpus given as byte lines."""
    counts: Counter[bytes] = Counter()
    for line in lines:
        counts.update(PRETOKEN.findall(line))
    return counts


def frequent_substrings(
    pretokens: Counter[bytes], size: int, max_len: int = 16
) -> tuple[list[bytes], list[float]]:
    """The ``size`` most frequent multi-byte substrings plus all 256 single bytes.

    Returns ``(pieces, scores)`` with scores = log(count / total); a byte that never occurs
    gets the score of a count of 0.5.  Ties in count are broken by the bytes, so the result
    is deterministic.
    """
    counts: Counter[bytes] = Counter()
    for token, c in pretokens.items():
        n = len(token)
        for i in range(n):
            for j in range(i + 1, min(n, i + max_len) + 1):
                counts[token[i:j]] += c
    multi = [(c, p) for p, c in counts.items() if len(p) > 1]
    multi.sort(key=lambda cp: (-cp[0], cp[1]))
    chosen = multi[: max(0, size - 256)]
    singles = [(counts.get(bytes([b]), 0.5), bytes([b])) for b in range(256)]
    pieces = [p for _, p in singles] + [p for _, p in chosen]
    scores = log_normalize(np.array([c for c, _ in singles + chosen], np.float64))
    return pieces, scores.tolist()
