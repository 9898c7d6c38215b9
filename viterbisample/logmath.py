"""Log-space and softmax arithmetic shared by every kernel and by the trainer.

This module is the one place that exponentiates or takes logs of scores, so that the
numerics that bite (``logaddexp(-inf, -inf)``, overflow of ``exp(alpha * score)``,
acceptance probabilities of the reservoir sampler) are handled once.  Everything here is a
Numba ``njit`` function; they can be called from Python as well as from kernels.

Not here: the lattice recursions themselves (``lattice/``) and random numbers
(``rng.py``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

# The linear-domain passes (``lattice.linear_sample_pass``, ``normalized_forward_backward``)
# are used only where ``linear_domain_weights`` proves them exact.  The sampler's masses
# share one scale, renewed when the newest leaves [RESCALE_LOW, RESCALE_HIGH].
RESCALE_LOW = 1e-50
RESCALE_HIGH = 1e50
LINEAR_SPAN_RANGE = 580.0  # max_len * log(1 / smallest byte weight) + log(max_len) at most this


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
def log_edge_probability(best_i, score, rel_i, best_j, rel_j, alpha):
    """log P(the last edge into j is this one | a path through j): the sampler's choice
    probability, from the forward values of its two ends (``lattice.tempered_pass``); <= 0."""
    lp = rel_i + scaled_gap(alpha, best_i + score - best_j) - rel_j
    return min(lp, 0.0)


@njit(cache=True, nogil=True, _nrt=False)
def tempered_log_mass(alpha, best, rel):
    """log Z = alpha * best + rel from a position's values in ``lattice.tempered_pass``
    (alpha * 0 is 0 even at alpha = inf; beyond a double's range it is -inf or inf)."""
    if best == 0.0 or alpha == 0.0:
        return rel
    return alpha * best + rel


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


class LinearWeights(NamedTuple):
    """Per-piece weights of q_alpha for the linear-domain passes (``linear_domain_weights``)."""

    weights: np.ndarray  # exp(alpha s(id) - shift len(id)), in [0, 1]; 0 for specials
    log_weights: np.ndarray  # their logarithms (entropy without a log per edge)
    shift: float  # per byte: log Z = log Z' + shift * n


def linear_domain_weights(
    scores: np.ndarray, lengths: np.ndarray, alpha: float, num_special: int, max_len: int,
    steps: np.ndarray | None = None,
) -> LinearWeights | None:
    """The weights of the linear-domain passes at ``alpha``, or None where those passes
    are not provably exact (the caller then uses the log domain, exact everywhere).

    Every path to byte position j covers j bytes, so multiplying each piece's weight by
    exp(-c len) scales every mass Z[j] by exp(-c j) and leaves q_alpha and every
    sampling probability unchanged.  With c = alpha times the best score per byte, each
    weight w is at most 1.  Let b be the smallest weight of a single byte, L the longest
    piece and D = L log(1/b).  Every byte is a piece, so for i < j <= i + L:

    * Z'[j] >= Z'[i] b^(j-i) (the path of single bytes): a mass that later edges can
      still read is at most b^-L times the newest one, e^D;
    * the sampler (``lattice.linear_sample_pass``) keeps the newest mass in
      [RESCALE_LOW, RESCALE_HIGH] = [e^-115, e^115] by dividing the last L masses by it
      when it leaves, so every stored mass is at most e^(115 + D) and a total (at most L
      terms, each a mass times w <= 1) at most L e^(115 + D): finite while
      D + log L <= 580 (a margin of 14 nats below the largest double);
    * a total is at least b times the previous mass, so at least e^-115 b > 0, and a
      term that underflows, or whose weight underflows, is below e^-708 while the
      one-byte term beside it is at least e^-115 b: dropping it changes no probability
      by more than rounding does.

    So no mass or total is inf, NaN or 0, and a choice u * total (u < 1) falls among the
    edges.  The normalised forward-backward (``normalized_forward_backward``) stores the
    ratios Z[j-1] / Z[j] <= 1/b, whose products over at most L positions are at most
    e^D: the same bound serves it.  Both conditions hold at small alpha; at large alpha,
    with long pieces or widely spread scores they fail and the log domain takes over
    (``lattice.tempered_pass``).

    A lattice in which not every byte is a piece (SentencePiece's: a character is one
    of its pieces or one unknown node, never its bytes) gives ``steps``: the paths that
    cross one character, as rows of ids padded with -1, every character of every text
    having one of them.  Then b is the smallest weight of such a path, the bounds hold
    between the positions where characters end (at most L of them in L bytes), and no
    edge ends or starts inside a character, so no pass reads the masses there (0).
    """
    if not 0.0 <= alpha < math.inf:
        return None
    s = scores[num_special:]
    n = lengths[num_special:]
    rate = float(np.max(s / n))
    gap = np.zeros(scores.shape[0], np.float64)  # log of the weight's shortfall from 1, alpha = 1
    gap[num_special:] = np.maximum(rate * n - s, 0.0)
    if steps is None:
        single = np.flatnonzero(lengths == 1)
        single = single[single >= num_special]
        if not single.size:
            return None
        step_gap = float(gap[single].max())
    else:
        step_gap = float(np.where(steps >= 0, gap[np.maximum(steps, 0)], 0.0).sum(axis=1).max())
    byte_gap = alpha * step_gap if step_gap > 0.0 else 0.0
    span = max(1, max_len)
    if not span * byte_gap + math.log(span) <= LINEAR_SPAN_RANGE:
        return None
    log_weights = np.zeros(scores.shape[0], np.float64)
    # Finite even where alpha * gap overflows: such a piece has weight 0, and 0 * -1e300 = 0.
    log_weights[num_special:] = np.maximum(-alpha * gap[num_special:], -1e300)
    weights = np.exp(log_weights)
    weights[:num_special] = 0.0
    return LinearWeights(weights, log_weights, alpha * rate)


@njit(cache=True, nogil=True, _nrt=False)
def scaled_gap(alpha, gap):
    """alpha * gap for a gap <= 0 between a score and the best one, with 0 for no gap at
    any alpha (inf * 0 would be NaN) and -inf for an unreachable term (0 * -inf too)."""
    if gap == 0.0:
        return 0.0
    if gap == -np.inf:
        return -np.inf
    return alpha * gap
