"""Log-space and softmax arithmetic shared by every kernel and by the trainer.

This module is the one place that exponentiates or takes logs of scores, so that the
numerics that bite (``logaddexp(-inf, -inf)``, overflow of ``exp(alpha * score)``,
acceptance probabilities of the reservoir sampler) are handled once.  Everything here is a
Numba ``njit`` function; they can be called from Python as well as from kernels.

Not here: the lattice recursions themselves (``lattice.py``) and random numbers
(``rng.py``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Largest exponent range, alpha * (max - min) of the per-byte-shifted piece log-weights,
# for which the linear-domain forward pass is safe: with window rescaling to [1e-50, 1e50]
# every reachable position keeps a normal, non-zero mass (e^-300 * 1e-50 > 1e-308).
LINEAR_DOMAIN_MAX_RANGE = 300.0
RESCALE_LOW = 1e-50
RESCALE_HIGH = 1e50


@njit(cache=True, nogil=True)
def logaddexp(a, b):
    """log(exp(a) + exp(b)) that returns -inf (not NaN) when both are -inf.

    >>> logaddexp(0.0, 0.0) == math.log(2.0)
    True
    """
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@njit(cache=True, nogil=True)
def logsumexp(x):
    """log(sum(exp(x))) of a 1-D float64 array; -inf for an empty or all -inf array."""
    m = -np.inf
    for v in x:
        if v > m:
            m = v
    if m == -np.inf or m == np.inf:
        return m
    s = 0.0
    for v in x:
        s += math.exp(v - m)
    return m + math.log(s)


@njit(cache=True, nogil=True)
def log_softmax(x):
    """x - logsumexp(x): log-probabilities proportional to exp(x)."""
    return x - logsumexp(x)


@njit(cache=True, nogil=True)
def softmax(x):
    """exp(log_softmax(x)); sums to one."""
    return np.exp(log_softmax(x))


@njit(cache=True, nogil=True)
def edge_probability(mass_i, weight, scale_i, ref_j, scale_j, log_domain):
    """P(previous token is edge (i, j, id) | path reaches j) = Z[i] exp(alpha s(id)) / Z[j].

    Log domain: ``mass_i`` = log Z[i], ``weight`` = alpha s(id), ``ref_j`` = log Z[j].
    Linear domain (``lattice.forward_pass``): Z[x] = mass[x] exp(scale[x] + c x) and
    ``weight`` = exp(alpha s(id) - c len(id)), so the shifts cancel and only a rescale
    between i and j (``scale_i != scale_j``) needs an exp; ``ref_j`` = 1 / mass[j].
    """
    if log_domain:
        return math.exp(mass_i + weight - ref_j)
    p = mass_i * weight * ref_j
    if scale_i != scale_j:
        p *= math.exp(scale_i - scale_j)
    return p


@njit(cache=True, nogil=True)
def tempered_log_weights(scores, alpha):
    """alpha * scores: per-piece log-weights of q_alpha (ALGORITHMS.md section 3)."""
    return alpha * scores


@njit(cache=True, nogil=True)
def tempered_linear_weights(scores, lengths, alpha, first_piece):
    """exp(alpha * s(w) - c * len(w)) per piece, and whether the linear domain is safe.

    Every path to byte position j covers exactly j bytes, so a per-byte shift ``c``
    multiplies all of them by the same ``exp(-c * j)`` and leaves both q_alpha and every
    reservoir probability unchanged.  ``c`` is the best per-byte rate, so every weight is
    at most one (no overflow).  Returns ``(weights, c, safe)``; ``safe`` is False when the
    remaining range exceeds ``LINEAR_DOMAIN_MAX_RANGE`` and the caller must use log space.
    Entries below ``first_piece`` (special tokens) get weight zero.
    """
    n = scores.shape[0]
    rate = -np.inf
    for i in range(first_piece, n):
        r = alpha * scores[i] / lengths[i]
        if r > rate:
            rate = r
    weights = np.zeros(n, dtype=np.float64)
    lowest = 0.0
    for i in range(first_piece, n):
        e = alpha * scores[i] - rate * lengths[i]
        if e < lowest:
            lowest = e
        weights[i] = math.exp(e)
    return weights, rate, -lowest <= LINEAR_DOMAIN_MAX_RANGE


@njit(cache=True, nogil=True)
def log_normalize(counts):
    """log(counts / sum(counts)); zero counts give -inf."""
    total = 0.0
    for c in counts:
        total += c
    out = np.empty_like(counts)
    lt = math.log(total)
    for i in range(counts.shape[0]):
        out[i] = math.log(counts[i]) - lt if counts[i] > 0.0 else -np.inf
    return out


@njit(cache=True, nogil=True)
def digamma(x):
    """The digamma function for x > 0 (asymptotic series after upward recurrence)."""
    result = 0.0
    while x < 6.0:
        result -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    result += math.log(x) - 0.5 / x - f * (
        1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132)))
    )
    return result
