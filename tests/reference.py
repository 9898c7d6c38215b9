"""Brute-force oracles for the lattice kernels: plain Python, no Numba, obviously correct.

Everything here works from the vocabulary alone (``tok.model.pieces``, ``tok.model.scores``,
``tok.model.num_special``), never from the package's tries or kernels, so a test that
compares the package with these functions compares two independent implementations.

* The lattice: ``piece_table``, ``piece_bytes``, ``edges_from`` (every piece that starts
  at each position).
* Enumeration (short texts): ``segmentations``, ``path_score``, ``viterbi_key`` (the
  documented order on paths, tie rule included), ``viterbi_reference``,
  ``log_partition_reference``, ``exact_distribution``.
* Quantities of an exact distribution: ``argmax_path``, ``entropy``,
  ``token_count_moments``, ``piece_marginals``, ``edge_marginals``.
* Dynamic programs (long texts, a few thousand bytes): ``count_paths`` (exact big-int
  path count, so log Z_0 = log(count) with no rounding in the sum),
  ``log_partition_dp``, ``token_count_moments_dp``, ``viterbi_dp_reference`` (lines of
  up to a few thousand bytes: it carries whole paths).
* Statistics: ``chi_square_gof`` (pooled cells), ``total_variation``, ``tv_bound``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

from scipy.stats import chi2

# -- vocabulary access --------------------------------------------------------------------


def piece_table(tok) -> dict[bytes, int]:
    """bytes -> id for every piece of the vocabulary (ids start at num_special)."""
    m = tok.model
    return {p: m.num_special + i for i, p in enumerate(m.pieces)}


def piece_bytes(tok, pid: int) -> bytes:
    """The bytes of piece ``pid`` (an id, so offset by ``num_special``)."""
    return tok.model.pieces[pid - tok.model.num_special]


def _max_len(tok) -> int:
    return max(len(p) for p in tok.model.pieces)


def edges_from(tok, data: bytes, table: dict[bytes, int] | None = None) -> list[list[tuple[int, int]]]:
    """``out[i]`` = list of (id, end) for every piece equal to ``data[i:end]``."""
    table = piece_table(tok) if table is None else table
    L = _max_len(tok)
    n = len(data)
    out: list[list[tuple[int, int]]] = []
    for i in range(n):
        row = []
        for j in range(i + 1, min(n, i + L) + 1):
            pid = table.get(data[i:j])
            if pid is not None:
                row.append((pid, j))
        out.append(row)
    return out


# -- enumeration ----------------------------------------------------------------------------


def segmentations(tok, data: bytes) -> list[list[int]]:
    """Every segmentation of ``data`` into vocabulary pieces, as lists of ids.

    Plain recursion over the first piece, memoised on the start position (the lists are
    rebuilt per call, so callers may mutate them).  The empty text has one segmentation,
    the empty one.
    """
    data = bytes(data)
    edges = edges_from(tok, data)
    n = len(data)

    @lru_cache(maxsize=None)
    def tails(i: int) -> tuple[tuple[int, ...], ...]:
        if i == n:
            return ((),)
        out = []
        for pid, j in edges[i]:
            for rest in tails(j):
                out.append((pid,) + rest)
        return tuple(out)

    return [list(p) for p in tails(0)]


def path_score(tok, ids: Iterable[int]) -> float:
    """S(w): the piece scores summed left to right as floats (as a DP along the path does)."""
    total = 0.0
    for i in ids:
        total += float(tok.model.scores[i])
    return total


def piece_lengths(tok, ids: Sequence[int]) -> tuple[int, ...]:
    return tuple(len(piece_bytes(tok, i)) for i in ids)


def viterbi_key(tok, ids: Sequence[int]) -> tuple[float, tuple[int, ...]]:
    """The documented order on paths: higher score first; among exact score ties, the path
    whose last piece is longest, then recursively the same on the rest, i.e. the reversed
    tuple of piece byte lengths compared lexicographically, larger wins."""
    return (path_score(tok, ids), piece_lengths(tok, ids)[::-1])


def viterbi_reference(tok, data: bytes) -> list[int]:
    """The argmax of ``viterbi_key`` over every segmentation (enumeration)."""
    return max(segmentations(tok, data), key=lambda ids: viterbi_key(tok, ids))


def _log_sum_exp(values: Sequence[float]) -> float:
    """log(sum(exp(v))) with a max shift and an exactly rounded sum (math.fsum)."""
    if not values:
        return -math.inf
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def log_partition_reference(tok, data: bytes, alpha: float) -> float:
    """log Z_alpha = log sum over all segmentations of exp(alpha * S(w)) (enumeration)."""
    return _log_sum_exp([alpha * path_score(tok, p) for p in segmentations(tok, data)])


def exact_distribution(tok, data: bytes, alpha: float) -> dict[tuple[int, ...], float]:
    """q_alpha(w) for every segmentation w (a tuple of ids) of ``data``."""
    paths = segmentations(tok, data)
    logits = [alpha * path_score(tok, p) for p in paths]
    log_z = _log_sum_exp(logits)
    return {tuple(p): math.exp(v - log_z) for p, v in zip(paths, logits)}


def token_count_moments(dist: Mapping[tuple[int, ...], float]) -> tuple[float, float]:
    """(E[#tokens], Var[#tokens]) under an exact distribution over paths."""
    mean = math.fsum(q * len(p) for p, q in dist.items())
    var = math.fsum(q * (len(p) - mean) ** 2 for p, q in dist.items())
    return mean, var


def argmax_path(dist: Mapping[tuple[int, ...], float]) -> tuple[int, ...]:
    return max(dist, key=dist.__getitem__)


def entropy(dist: Mapping[tuple[int, ...], float]) -> float:
    """-sum q log q in nats (paths of probability 0, underflowed, contribute 0)."""
    return -math.fsum(q * math.log(q) for q in dist.values() if q > 0.0)


def piece_marginals(dist: Mapping[tuple[int, ...], float]) -> dict[int, float]:
    """id -> expected number of occurrences of the piece in a path."""
    terms: dict[int, list[float]] = {}
    for path, q in dist.items():
        for pid in path:
            terms.setdefault(pid, []).append(q)
    return {pid: math.fsum(qs) for pid, qs in terms.items()}


def edge_marginals(tok, dist: Mapping[tuple[int, ...], float]) -> dict[tuple[int, int, int], float]:
    """(start, end, id) -> probability that a path uses that edge of the lattice."""
    terms: dict[tuple[int, int, int], list[float]] = {}
    for path, q in dist.items():
        at = 0
        for pid in path:
            end = at + len(piece_bytes(tok, pid))
            terms.setdefault((at, end, pid), []).append(q)
            at = end
    return {edge: math.fsum(qs) for edge, qs in terms.items()}


# -- dynamic programs for long texts --------------------------------------------------------


def _edges_into(tok, data: bytes) -> list[list[tuple[int, int]]]:
    """``out[j]`` = list of (start, id) for every piece equal to ``data[start:j]``."""
    table = piece_table(tok)
    L = _max_len(tok)
    n = len(data)
    out: list[list[tuple[int, int]]] = [[] for _ in range(n + 1)]
    for j in range(1, n + 1):
        for i in range(max(0, j - L), j):
            pid = table.get(data[i:j])
            if pid is not None:
                out[j].append((i, pid))
    return out


def count_paths(tok, data: bytes) -> int:
    """The exact number of segmentations (Python big ints: no overflow, no rounding)."""
    data = bytes(data)
    into = _edges_into(tok, data)
    count = [0] * (len(data) + 1)
    count[0] = 1
    for j in range(1, len(data) + 1):
        count[j] = sum(count[i] for i, _ in into[j])
    return count[-1]


def log_partition_dp(tok, data: bytes, alpha: float) -> float:
    """log Z_alpha by the forward recursion in log space, each position summed with
    ``_log_sum_exp`` (max shift + fsum).  O(n * L) dictionary look-ups."""
    data = bytes(data)
    into = _edges_into(tok, data)
    scores = tok.model.scores
    log_z = [0.0] * (len(data) + 1)
    for j in range(1, len(data) + 1):
        log_z[j] = _log_sum_exp([log_z[i] + alpha * float(scores[pid]) for i, pid in into[j]])
    return log_z[-1]


def token_count_moments_dp(tok, data: bytes, alpha: float) -> tuple[float, float, float]:
    """(log Z_alpha, E[#tokens], Var[#tokens]) under q_alpha by a forward recursion.

    With P(last edge (i, j) | path reaches j) = Z[i] w / Z[j], the first two moments of the
    token count K_j of the path to j satisfy E[K_j] = sum P (E[K_i] + 1) and
    E[K_j^2] = sum P (E[K_i^2] + 2 E[K_i] + 1).
    """
    data = bytes(data)
    into = _edges_into(tok, data)
    scores = tok.model.scores
    n = len(data)
    log_z = [0.0] * (n + 1)
    m1 = [0.0] * (n + 1)
    m2 = [0.0] * (n + 1)
    for j in range(1, n + 1):
        terms = [log_z[i] + alpha * float(scores[pid]) for i, pid in into[j]]
        lz = _log_sum_exp(terms)
        log_z[j] = lz
        probs = [math.exp(t - lz) for t in terms]
        m1[j] = math.fsum(p * (m1[i] + 1.0) for p, (i, _) in zip(probs, into[j]))
        m2[j] = math.fsum(p * (m2[i] + 2.0 * m1[i] + 1.0) for p, (i, _) in zip(probs, into[j]))
    return log_z[n], m1[n], m2[n] - m1[n] ** 2


def viterbi_dp_reference(tok, data: bytes) -> list[int]:
    """Viterbi for texts too long to enumerate: a forward DP whose value at each position is
    the full ``viterbi_key`` of the best path so far (score, reversed piece lengths),
    compared as Python tuples.  Agrees with ``viterbi_reference`` whenever scores are summed
    without rounding collisions; used as a second opinion on long real lines."""
    data = bytes(data)
    into = _edges_into(tok, data)
    scores = tok.model.scores
    n = len(data)
    best: list[tuple[float, tuple[int, ...]] | None] = [None] * (n + 1)
    path: list[tuple[int, ...] | None] = [None] * (n + 1)
    best[0] = (0.0, ())
    path[0] = ()
    for j in range(1, n + 1):
        for i, pid in into[j]:
            prev = best[i]
            if prev is None:
                continue
            key = (prev[0] + float(scores[pid]), (j - i,) + prev[1])
            if best[j] is None or key > best[j]:
                best[j] = key
                path[j] = path[i] + (pid,)
    return list(path[n])


# -- statistics -------------------------------------------------------------------------------


def chi_square_gof(
    observed: Mapping[tuple, int], probs: Mapping[tuple, float], min_expected: float = 5.0
) -> tuple[float, int, float]:
    """Pearson's chi-square goodness of fit of ``observed`` counts to ``probs``.

    Cells with expected count below ``min_expected`` are pooled into one cell; if that
    pool is itself below ``min_expected`` it is merged into the smallest remaining cell.
    An observed key with zero probability (not a segmentation at all) gives an infinite
    statistic and p = 0.  Returns (statistic, degrees of freedom, p-value).
    """
    n = sum(observed.values())
    if any(k not in probs or probs[k] <= 0.0 for k, c in observed.items() if c > 0):
        return math.inf, max(1, len(probs) - 1), 0.0
    cells = [(n * q, observed.get(k, 0)) for k, q in probs.items()]
    cells.sort(key=lambda c: c[0])
    big = [list(c) for c in cells if c[0] >= min_expected]
    small = [c for c in cells if c[0] < min_expected]
    if small:
        pool = [math.fsum(e for e, _ in small), sum(o for _, o in small)]
        if pool[0] >= min_expected or not big:
            big.append(pool)
        else:
            big[0][0] += pool[0]
            big[0][1] += pool[1]
    dof = len(big) - 1
    if dof <= 0:
        return 0.0, 0, 1.0
    stat = math.fsum((o - e) ** 2 / e for e, o in big)
    return stat, dof, float(chi2.sf(stat, dof))


def total_variation(observed: Mapping[tuple, int], probs: Mapping[tuple, float]) -> float:
    """TV distance between the empirical distribution of ``observed`` and ``probs``."""
    n = sum(observed.values())
    keys = set(observed) | set(probs)
    return 0.5 * math.fsum(abs(observed.get(k, 0) / n - probs.get(k, 0.0)) for k in keys)


def tv_bound(probs: Mapping[tuple, float], n: int, delta: float = 1e-6) -> float:
    """A bound that the empirical TV of ``n`` exact draws exceeds with probability < delta.

    E|count_k - n q_k| <= sqrt(n q_k (1 - q_k)) (Jensen), so E[TV] <= 0.5 sum_k
    sqrt(q_k (1 - q_k) / n); TV changes by at most 1/n when one draw changes, so by
    McDiarmid P(TV > E[TV] + t) <= exp(-2 n t^2).
    """
    mean_bound = 0.5 * math.fsum(math.sqrt(q * (1.0 - q) / n) for q in probs.values())
    return mean_bound + math.sqrt(math.log(1.0 / delta) / (2.0 * n))
