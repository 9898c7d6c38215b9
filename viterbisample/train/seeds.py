"""Seed vocabularies: the most frequent byte substrings of a corpus.

The corpus is cut into pre-tokens (a letter run, a digit run or a punctuation run, each
with at most one leading space, or a run of white space); every substring of a pre-token
up to ``max_len`` bytes is counted, weighted by the pre-token's count.  Scores are log
relative frequencies.  This is the seeding step of Unigram training (ALGORITHMS.md
section 7.1) and, on its own, a quick realistic vocabulary for tests and benchmarks.

Not here: EM and pruning.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable

import regex

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
    total = float(sum(c for c, _ in chosen) + sum(c for c, _ in singles))
    pieces = [p for _, p in singles] + [p for _, p in chosen]
    scores = [math.log(c / total) for c, _ in singles] + [math.log(c / total) for c, _ in chosen]
    return pieces, scores
