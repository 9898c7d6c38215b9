"""Forward-backward over the Unigram lattice (ALGORITHMS.md section 5): the marginal of
every edge under q_alpha, and from them the expected piece counts (the trainer's
E-step), the expected number of tokens, E[S] and the entropy.

Two forms of one computation, each exact where it is used:

* ``marginal_pass``: after ``lattice.tempered_pass`` (the log domain relative to the best
  path), going back from the end over the sampler's own choice probabilities; every
  value is a probability, at any alpha;
* ``normalized_forward_backward``: in the linear domain with no exp or log per edge,
  where ``logmath.linear_domain_weights`` proves it exact (small and moderate alpha).

``stats_items`` runs one or the other over a batch; ``edge_marginals`` lists every edge
of one text.  Edges come from ``trie.prefix_matches``, the walk every pass shares.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .forward import longest_item, count_edges_items, match_buffers, tempered_pass
from ..logmath import log_edge_probability, log_of_product, multiply_folded, tempered_log_mass
from ..trie import prefix_matches


@njit(cache=True, nogil=True)
def forward_values(rbase, rcheck, rvalue, scores, alpha, max_len, text, lo, hi, best, rel):
    """``tempered_pass`` over whole arrays, without sampling (its own scratch)."""
    terms = np.empty(max_len, np.float64)
    mids, mstarts = match_buffers(max_len)
    return tempered_pass(
        rbase, rcheck, rvalue, scores, alpha, text, lo, hi, best, rel, -1, 0,
        np.empty(0, np.uint64), np.empty((0, 0), np.int32), terms, mids, mstarts,
    )


@njit(cache=True, nogil=True, _nrt=False)
def marginal_pass(
    rbase, rcheck, rvalue, scores, alpha, text, lo, hi, best, rel, boundary, item_weight, counts,
    mids, mstarts, e_start, e_end, e_id, e_p,
):
    """Edge marginals from the forward values of ``tempered_pass`` (whole arrays), in
    the log domain, exact at every alpha; returns (expected number of tokens, E[S],
    entropy in nats).

    A path is a chain of choices, each edge (i, j, id) taken with the conditional
    probability c = exp(``log_edge_probability``) given a boundary at j, so going back
    from n with the probability P(j) of a boundary at j (P(n) = 1), the edge's marginal
    is P(j) c and P(i) is the sum of those of the edges that start at i.  Every value is
    a probability: nothing overflows, at any alpha.  Since log q(w) is the sum of the
    log c of its edges, the entropy is the sum of -P(edge) log c: a sum of terms >= 0,
    with no cancellation between log Z and alpha E[S].

    Adds ``item_weight`` times each piece's expected uses to ``counts`` (skipped when it
    is empty); with a non-empty ``e_p`` records every edge (start, end, id, marginal)
    from the last position back.  ``boundary``: scratch of length >= n + 1.
    """
    n = hi - lo
    for i in range(n):
        boundary[i] = 0.0
    boundary[n] = 1.0
    accumulate = counts.shape[0] > 0
    record = e_p.shape[0] > 0
    recorded = 0
    tokens = 0.0
    score = 0.0
    entropy = 0.0
    for j in range(n, 0, -1):
        k = prefix_matches(rbase, rcheck, rvalue, text, lo + j - 1, lo - 1, -1, mids, 0, mstarts)
        for m in range(k):
            i = mstarts[m] - lo
            pid = mids[m]
            lc = log_edge_probability(best[i], scores[pid], rel[i], best[j], rel[j], alpha)
            p = boundary[j] * np.exp(lc)
            if record:
                e_start[recorded] = i
                e_end[recorded] = j
                e_id[recorded] = pid
                e_p[recorded] = p
                recorded += 1
            if p == 0.0:  # also keeps 0 * log(0) out of the entropy
                continue
            boundary[i] += p
            tokens += p
            score += p * scores[pid]
            entropy -= p * lc
            if accumulate:
                counts[pid] += item_weight * p
    return tokens, score, entropy


# Normalised forward-backward for the trainer's E-step: no exp or log per edge.
# Forward: c[j] = Z[j] / Z[j-1], so Z[j] = c[1] ... c[j] and
#     c[j] = sum over edges (i, j, id) of w(id) / (c[i+1] ... c[j-1]).
# Backward: with B[i] the mass of the paths from i to n, P(i) = Z[i] B[i] / Z[n] is the
# probability that a path has a boundary at i, and
#     P(edge (i, j, id)) = w(id) P(j) / (c[i+1] ... c[j]),   P(i) = sum of those from i,
# so the backward pass yields the edge marginals directly, every value a probability.
# The products over an edge's span are built up as the edges of a position come shortest
# first.  ``logmath.linear_domain_weights`` proves the bounds (the same as the linear
# sampler's): every c[j] >= b and each span product <= b^-L, finite; what underflows
# is negligible against its total.


@njit(cache=True, nogil=True, _nrt=False)
def normalized_forward_backward(
    base, check, value, rbase, rcheck, rvalue, weights, log_weights, scores, text, lo, hi,
    item_weight, counts, ratio, boundary, mids, mends,
):
    """Returns (log Z', expected number of tokens, E[S], entropy) under q_alpha and adds
    ``item_weight`` times the expected uses of each piece to ``counts[id]`` (skipped
    when ``counts`` is empty).  Only for ``logmath.linear_domain_weights``; a ratio that
    is still not a positive finite number makes it return NaN for log Z' before
    ``counts`` is touched.

    ``weights``/``log_weights``: exp(alpha s(id) - c len(id)) and their logs (the
    per-byte shift c cancels in every marginal and is added back to log Z' by the
    caller; the entropy is log Z' minus the expected sum of log-weights of a path).
    ``ratio``/``boundary``: float64 scratch of length >= n + 1.  O(edges) time, two trie
    walks, no exp or log per edge.
    """
    n = hi - lo
    log_z = 0.0
    run = 1.0
    for j in range(1, n + 1):
        k = prefix_matches(rbase, rcheck, rvalue, text, lo + j - 1, lo - 1, -1, mids, 0, mends)
        total = 0.0
        span = 1.0  # 1 / (c[i+1] ... c[j-1]) for the current edge's start i
        done = 1
        for m in range(k):
            length = j - (mends[m] - lo)
            while done < length:
                span *= ratio[j - done]
                done += 1
            total += weights[mids[m]] * span
        if not 0.0 < total < np.inf:  # also catches nan
            return np.nan, 0.0, 0.0, 0.0
        ratio[j] = 1.0 / total  # stored inverted: the spans multiply by it
        log_z, run = multiply_folded(log_z, run, total)  # log Z without a log per byte
    log_z = log_of_product(log_z, run)
    accumulate = counts.shape[0] > 0
    boundary[n] = 1.0
    tokens = 0.0
    score = 0.0
    log_weight = 0.0
    for i in range(n - 1, -1, -1):
        k = prefix_matches(base, check, value, text, lo + i, hi, 1, mids, 0, mends)
        total = 0.0
        span = 1.0
        done = 0
        for m in range(k):
            j = mends[m] - lo
            while done < j - i:
                done += 1
                span *= ratio[i + done]
            pid = mids[m]
            p = weights[pid] * boundary[j] * span
            total += p
            score += p * scores[pid]
            log_weight += p * log_weights[pid]
            if accumulate:
                counts[pid] += item_weight * p
        boundary[i] = total
        tokens += total
    return log_z, tokens, score, max(0.0, log_z - log_weight)


@njit(cache=True, nogil=True)
def stats_items(
    trie, rtrie, weights, log_weights, shift, scores, alpha, buf, starts, ends, item_weights, counts,
    out_log_z, out_length, out_score, out_entropy, first, last,
):
    """log Z, E[#tokens], E[S] and the entropy of q_alpha of items [first, last),
    exactly.

    With a non-empty ``counts``, also adds ``item_weights[t]`` times each piece's expected
    count (the trainer's E-step).  With non-empty ``weights`` (``logmath.linear_domain_weights``)
    by ``normalized_forward_backward``; otherwise, or should it fail on an item, by
    ``tempered_pass`` and ``marginal_pass`` in the log domain.
    """
    base, check, value = trie.base, trie.check, trie.value
    rbase, rcheck, rvalue, max_len = rtrie.base, rtrie.check, rtrie.value, max(1, rtrie.max_len)
    n_max = longest_item(starts, ends, first, last)
    fwd = np.empty(n_max + 1, np.float64)
    rel = np.empty(n_max + 1, np.float64)
    bwd = np.empty(n_max + 1, np.float64)
    mids, mends = match_buffers(max_len)
    terms = np.empty(max_len, np.float64)
    no_states, no_bp = np.empty(0, np.uint64), np.empty((0, 0), np.int32)
    no_edges, no_ids, no_p = np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.float64)
    linear = weights.shape[0] > 0
    for t in range(first, last):
        lo = starts[t]
        hi = ends[t]
        if linear:
            log_z, length, score, entropy = normalized_forward_backward(
                base, check, value, rbase, rcheck, rvalue, weights, log_weights, scores, buf, lo, hi,
                item_weights[t], counts, fwd, bwd, mids, mends,
            )
            if log_z == log_z:
                out_log_z[t] = log_z + shift * (hi - lo)
                out_length[t] = length
                out_score[t] = score
                out_entropy[t] = entropy
                continue
        tempered_pass(
            rbase, rcheck, rvalue, scores, alpha, buf, lo, hi, fwd, rel, -1, 0, no_states, no_bp,
            terms, mids, mends,
        )
        out_log_z[t] = tempered_log_mass(alpha, fwd[hi - lo], rel[hi - lo])
        out_length[t], out_score[t], out_entropy[t] = marginal_pass(
            rbase, rcheck, rvalue, scores, alpha, buf, lo, hi, fwd, rel, bwd, item_weights[t],
            counts, mids, mends, no_edges, no_edges, no_ids, no_p,
        )


@njit(cache=True, nogil=True)
def edge_marginals(rtrie, scores, alpha, text):
    """Every edge of one text with its marginal: arrays (start, end, id, probability),
    ordered by end position, then by start (longest piece first)."""
    rbase, rcheck, rvalue, max_len = rtrie.base, rtrie.check, rtrie.value, max(1, rtrie.max_len)
    n = text.shape[0]
    best = np.empty(n + 1, np.float64)
    rel = np.empty(n + 1, np.float64)
    boundary = np.empty(n + 1, np.float64)
    forward_values(rbase, rcheck, rvalue, scores, alpha, max_len, text, 0, n, best, rel)
    count = np.zeros(1, np.int64)
    mids, mstarts = match_buffers(max_len)
    count_edges_items(rtrie, text, np.zeros(1, np.int64), np.full(1, n, np.int64), count, 0, 1)
    size = count[0]
    e_start = np.empty(size, np.int64)
    e_end = np.empty(size, np.int64)
    e_id = np.empty(size, np.int32)
    e_p = np.empty(size, np.float64)
    marginal_pass(
        rbase, rcheck, rvalue, scores, alpha, text, 0, n, best, rel, boundary, 1.0,
        np.empty(0, np.float64), mids, mstarts, e_start, e_end, e_id, e_p,
    )
    return e_start[::-1].copy(), e_end[::-1].copy(), e_id[::-1].copy(), e_p[::-1].copy()
