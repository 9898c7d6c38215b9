"""Quick realistic vocabularies for tests: the most frequent substrings of pre-tokens.

The corpus is cut into pre-tokens (a letter run, a digit run or a punctuation run, each
with at most one leading space, or a run of white space); every substring of a pre-token
up to ``max_len`` bytes is counted, weighted by the pre-token's count.  Scores are log
relative frequencies: the seeding step of Unigram training in a few lines of plain
Python, without EM (the package's trainer seeds from ``train.substrings``).
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np
import regex

from viterbisample.logmath import log_normalize

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
