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


@njit(cache=True, nogil=True, _nrt=False)
def running_exp_sums(terms, k):
    """Replace log-terms ``terms[:k]`` by the running sums of exp(terms - max).

    Returns (logsumexp of the terms, the last running sum).  The running sums are what a
    sampler draws from (``lattice._choose``); an all -inf input gives (-inf, 0), no NaN.
    """
    top = -np.inf
    for m in range(k):
        if terms[m] > top:
            top = terms[m]
    if top == -np.inf:
        for m in range(k):
            terms[m] = 0.0
        return top, 0.0
    running = 0.0
    for m in range(k):
        running += math.exp(terms[m] - top)
        terms[m] = running
    return top + math.log(running), running


@njit(cache=True, nogil=True)
def inclusion_probability(log_q, kappa):
    """Estimated probability that a path of log-probability ``log_q`` is in a Gumbel-top-k
    sample whose (k+1)-th perturbed value is ``kappa``: 1 - exp(-exp(log_q - kappa))
    (Kool et al., 2019); 1 when no path was left out (kappa = -inf)."""
    if kappa == -np.inf:
        return 1.0
    return -math.expm1(-math.exp(min(log_q - kappa, 700.0)))


@njit(cache=True, nogil=True)
def log_softmax(x):
    """x - logsumexp(x): log-probabilities proportional to exp(x)."""
    return x - logsumexp(x)


@njit(cache=True, nogil=True)
def softmax(x):
    """exp(log_softmax(x)); sums to one."""
    return np.exp(log_softmax(x))


@njit(cache=True, nogil=True, _nrt=False)
def edge_marginal(log_mass_before, log_weight, log_mass_after, log_total):
    """P(a path of q_alpha uses edge (i, j, id)) = Z[i] w(id) B[j] / Z from log masses."""
    return math.exp(log_mass_before + log_weight + log_mass_after - log_total)


@njit(cache=True, nogil=True)
def log1mexp(x):
    """log(1 - exp(x)) for x <= 0, accurate near 0 and for very negative x."""
    if x > -0.6931471805599453:
        return math.log(-math.expm1(x))
    return math.log1p(-math.exp(x))


@njit(cache=True, nogil=True)
def gumbel(u):
    """A standard Gumbel variate from u uniform in [0, 1) (shifted by half an ulp of the
    uniform grid so that both logarithms stay finite)."""
    return -math.log(-math.log(u + 5.551115123125783e-17))


@njit(cache=True, nogil=True)
def truncated_gumbel(g, g_max, bound):
    """Shift Gumbel variate ``g`` (one of several whose maximum is ``g_max``) so that the
    maximum becomes ``bound``: the law of the children's perturbed log-weights given their
    parent's, in top-down Gumbel-max sampling without replacement (Kool et al., 2019).

    Computes -log(exp(-bound) - exp(-g_max) + exp(-g)) without overflow.
    """
    if g >= g_max:
        return bound
    v = bound - g + log1mexp(g - g_max)
    if v > 0.0:
        return bound - v - math.log1p(math.exp(-v))
    return bound - math.log1p(math.exp(v))


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


@njit(cache=True, nogil=True)
def digamma_log_probabilities(counts):
    """digamma(c_w) - digamma(sum of c): the variational-Bayes M-step of Unigram EM
    (ALGORITHMS.md section 7.3).  Close to log(c_w / sum) for large counts, much lower
    for small ones, so rarely used pieces fade out (a sparse prior).  Counts must be > 0.
    """
    total = 0.0
    for c in counts:
        total += c
    shift = digamma(total)
    out = np.empty_like(counts)
    for i in range(counts.shape[0]):
        out[i] = digamma(counts[i]) - shift
    return out


@njit(cache=True, nogil=True, _nrt=False)
def log_of_product(log_part, factor):
    """log_part + log(factor): the log of a product of positive factors, one more of
    them folded in."""
    return log_part + math.log(factor)


@njit(cache=True, nogil=True, _nrt=False)
def multiply_folded(log_part, run, factor):
    """Multiply the product ``exp(log_part) * run`` by a positive ``factor`` with a log
    only now and then: factors multiply ``run`` until it leaves [1e-200, 1e200], and an
    extreme factor goes to the log part at once.  Returns the new (log_part, run); the
    product's log is ``log_of_product(log_part, run)``."""
    if 1e-100 < factor < 1e100:
        run *= factor
        if run < 1e-200 or run > 1e200:
            return log_part + math.log(run), 1.0
        return log_part, run
    return log_part + math.log(factor), run


def linear_pass_is_safe(weights: np.ndarray, lengths: np.ndarray, num_special: int, max_len: int) -> bool:
    """Whether the normalised linear-domain forward-backward (``lattice``) is safe with
    these per-byte-shifted weights (``tempered_linear_weights``): every span of at most
    ``max_len`` bytes is a ratio of masses bounded by b ** -max_len, b the smallest weight
    of a single byte, so it must be that b ** max_len >= e ** -690."""
    byte_weights = weights[num_special:][lengths[num_special:] == 1]
    smallest = float(byte_weights.min()) if byte_weights.size else 0.0
    return smallest > 0.0 and max(1, max_len) * math.log(smallest) >= -690.0
