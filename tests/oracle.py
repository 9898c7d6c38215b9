"""Brute-force references for the tests: every segmentation, path scores, chi-square.

Plain Python, obviously correct, slow: use on texts with at most tens of thousands of
segmentations.
"""

from __future__ import annotations

from collections import Counter

from scipy import stats as scipy_stats

from viterbisample import Tokenizer


def all_paths(tok: Tokenizer, data: bytes) -> list[tuple[int, ...]]:
    """Every segmentation of ``data`` into pieces of ``tok``, as id tuples."""
    memo: dict[int, list[tuple[int, ...]]] = {len(data): [()]}

    def from_(i: int) -> list[tuple[int, ...]]:
        if i not in memo:
            out = []
            for j in range(i + 1, min(len(data), i + tok.model.max_piece_len) + 1):
                pid = tok.model.piece_id(data[i:j])
                if pid is not None:
                    out += [(pid,) + rest for rest in from_(j)]
            memo[i] = out
        return memo[i]

    return from_(0)


def path_score(tok: Tokenizer, path) -> float:
    """Sum of the piece scores, added left to right as the kernels add them."""
    total = 0.0
    for i in path:
        total += float(tok.model.scores[i])
    return total


def chi_square(observed: Counter, probs: dict, n: int) -> tuple[float, int, float]:
    """Pearson chi-square of ``n`` draws against ``probs``; cells with expected count
    below 5 are pooled into one.  Returns (statistic, degrees of freedom, p-value)."""
    obs, exp = [], []
    pooled_o = pooled_e = 0.0
    for key, p in probs.items():
        if p * n >= 5:
            obs.append(observed.get(key, 0))
            exp.append(p * n)
        else:
            pooled_o += observed.get(key, 0)
            pooled_e += p * n
    if pooled_e > 0:
        obs.append(pooled_o)
        exp.append(pooled_e)
    stat = float(sum((o - e) ** 2 / e for o, e in zip(obs, exp)))
    dof = len(obs) - 1
    return stat, dof, float(scipy_stats.chi2.sf(stat, dof))
