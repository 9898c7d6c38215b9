"""Every traversal of the Unigram lattice (ALGORITHMS.md sections 2-4).

The lattice of a text has nodes ``0..n`` (byte positions) and an edge ``(i, j, id)`` for
each piece equal to ``text[i:j]``.  Edges are never stored.  Each pass visits positions
j = 1..n in order and asks ``trie.prefix_matches``, walking the trie of reversed pieces
backward from j, for the edges that END at j; their sources i < j are final by then, so
position j is settled in one place:

* ``viterbi_pass``: best[j] = max over edges of best[i] + s(id), with a back-pointer.
  Edges come shortest first and a later (longer) edge wins an exact tie, which is the one
  tie rule used everywhere: among equal scores the path whose last piece is longest wins,
  and recursively so for the rest of the path.
* ``forward_pass``: the tempered forward masses Z[j] = sum over edges of
  Z[i] exp(alpha s(id)), in a rescaled linear domain or in log space; Z[n] is the
  partition function.  With ``draws`` > 0 it is also the perfect sampler (section 4):
  once Z[j] is known, each of the ``draws`` independent samplers chooses the last edge
  into j with probability Z[i] exp(alpha s(id)) / Z[j] using one uniform.  Following the
  choices back from n yields a path w with probability
  prod Z[i_t] exp(alpha s_t) / Z[j_t] = exp(alpha S(w)) / Z[n] = q_alpha(w): the ratios
  telescope.  One pass serves any number of samples; each costs one uniform and a short
  scan per position, on top of the edges that Viterbi visits too.
* ``backtrack``: follows back-pointers from n to 0 and writes the ids in text order.

The ``*_items`` drivers run a pass over a batch of byte ranges of one buffer and write ids
into one flat output, so Python enters a kernel once per chunk of texts.  They take
``[first, last)`` item bounds so a caller can give chunks to threads (``nogil``).  All
arguments are validated by the caller: Numba does not check bounds.

Passes that allocate nothing are compiled with ``_nrt=False`` (as ``trie.prefix_matches``):
Numba's reference counting of array arguments would otherwise cost more per call than a
short text's whole lattice.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .logmath import RESCALE_HIGH, RESCALE_LOW, logaddexp
from .rng import next_uniform, stream_key
from .trie import prefix_matches

MODE_VITERBI = 0
MODE_SAMPLE = 1

# Status code returned instead of raising inside a kernel.
STATUS_BAD_PATH = -1


@njit(cache=True, nogil=True, _nrt=False)
def viterbi_pass(rbase, rcheck, rvalue, scores, text, lo, hi, best, bp, mids, mstarts):
    """Fill ``bp[1..n]`` with the last piece of the best path to each position.

    ``rbase``/``rcheck``/``rvalue``: the trie of reversed pieces.  ``best`` float64 and
    ``bp`` int32 of length >= n + 1; ``mids``/``mstarts`` match buffers of the model's
    longest piece length.
    """
    n = hi - lo
    best[0] = 0.0
    bp[0] = -1
    for j in range(1, n + 1):
        k = prefix_matches(rbase, rcheck, rvalue, text, lo + j - 1, lo - 1, -1, mids, 0, mstarts)
        top = -np.inf
        arg = -1
        for m in range(k):
            pid = mids[m]
            sc = best[mstarts[m] - lo] + scores[pid]
            if sc >= top:
                top = sc
                arg = pid
        best[j] = top
        bp[j] = arg


@njit(cache=True, nogil=True, _nrt=False)
def forward_pass(
    rbase, rcheck, rvalue, weights, max_len, text, lo, hi, log_domain, mass, draws, states,
    bp, terms, mids, mstarts,
):
    """Forward masses of q_alpha over ``text[lo:hi]`` and ``draws`` exact samples; returns
    log Z[n] (in the linear domain without the per-byte shift: the caller adds ``c * n``).

    ``log_domain``: ``weights`` are alpha * s(id) and ``mass[j]`` is log Z[j].
    Otherwise ``weights`` are exp(alpha s(id) - c len(id)) from
    ``logmath.tempered_linear_weights`` (the shift c cancels in q_alpha: every path to j
    covers j bytes) and ``mass[j]`` is Z[j] up to one factor shared by the last
    ``max_len`` positions: when a mass leaves [RESCALE_LOW, RESCALE_HIGH], it and the
    positions that later edges can still read are divided by it.

    Sampler d draws from the stream ``states[d]`` (rng.py; advanced in place) and writes
    its choice at j to ``bp[d, j]``.  ``terms`` is scratch for ``max_len`` edge terms.
    """
    n = hi - lo
    mass[0] = 0.0 if log_domain else 1.0
    log_scale = 0.0
    first_state = states[0] if draws > 0 else np.uint64(0)  # kept in a register
    for j in range(1, n + 1):
        k = prefix_matches(rbase, rcheck, rvalue, text, lo + j - 1, lo - 1, -1, mids, 0, mstarts)
        # Z[j] is the sum of the edge terms; in log space they are summed relative to
        # their maximum, so `terms` holds linear values with sum `total` either way.
        if log_domain:
            top = -np.inf
            for m in range(k):
                t = mass[mstarts[m] - lo] + weights[mids[m]]
                terms[m] = t
                if t > top:
                    top = t
            total = 0.0
            for m in range(k):
                terms[m] = math.exp(terms[m] - top)
                total += terms[m]
            mass[j] = top + math.log(total)
        else:
            total = 0.0
            for m in range(k):
                t = mass[mstarts[m] - lo] * weights[mids[m]]
                terms[m] = t
                total += t
            mass[j] = total
        if draws > 0:
            first_state, u = next_uniform(first_state)
            bp[0, j] = _choose(mids, terms, k, u * total)
            for d in range(1, draws):
                state, u = next_uniform(states[d])
                states[d] = state
                bp[d, j] = _choose(mids, terms, k, u * total)
        if not log_domain and (total < RESCALE_LOW or total > RESCALE_HIGH):
            inv = 1.0 / total
            for t in range(max(0, j - max_len + 1), j + 1):
                mass[t] *= inv
            log_scale += math.log(total)
    if draws > 0:
        states[0] = first_state
    if log_domain:
        return mass[n]
    return math.log(mass[n]) + log_scale


@njit(cache=True, nogil=True, _nrt=False)
def _choose(mids, terms, k, target):
    """The first edge whose cumulative term exceeds ``target`` (= u * total, u < 1).

    Counts the cumulative sums that do not exceed it, without a branch: the choice is
    random, so a branch would mispredict.  The sums are formed in the order that gave
    the total, so the last equals it exactly and the count is below k.
    """
    cumulative = 0.0
    below = 0
    for m in range(k):
        cumulative += terms[m]
        below += cumulative <= target
    return mids[below]


@njit(cache=True, nogil=True, _nrt=False)
def backtrack(bp, lengths, n, out, out_lo):
    """Write the path ending at n into ``out[out_lo:]`` in text order; return its length,
    or ``STATUS_BAD_PATH`` if a back-pointer does not move strictly backward."""
    j = n
    count = 0
    while j > 0:
        pid = bp[j]
        if pid < 0 or lengths[pid] <= 0 or lengths[pid] > j:
            return STATUS_BAD_PATH
        out[out_lo + count] = pid
        count += 1
        j -= lengths[pid]
    a = out_lo
    b = out_lo + count - 1
    while a < b:
        out[a], out[b] = out[b], out[a]
        a += 1
        b -= 1
    return count


@njit(cache=True, nogil=True)
def _longest(starts, ends, first, last):
    longest = 0
    for t in range(first, last):
        if ends[t] - starts[t] > longest:
            longest = ends[t] - starts[t]
    return longest


@njit(cache=True, nogil=True)
def encode_items(
    rbase, rcheck, rvalue, scores, weights, lengths, max_len, mode, log_domain, buf, starts,
    ends, draws, out_starts, seed, epoch, indices, out, counts, first, last,
):
    """Viterbi (``mode == MODE_VITERBI``) or ``draws`` exact samples of items [first, last).

    Item t is ``buf[starts[t]:ends[t]]``.  Output r = t * draws + d (d < draws; draws is 1
    for Viterbi) goes to ``out[out_starts[r]:]``, which has room for ``ends[t] - starts[t]``
    ids (a path never has more tokens than bytes); its length to ``counts[r]`` (negative on
    a broken invariant).  Sample d of item t draws from the stream (seed, epoch,
    indices[t], d), so it does not depend on the batch or on the thread that runs it.
    """
    n_max = _longest(starts, ends, first, last)
    mass = np.empty(n_max + 1, np.float64)
    bp = np.empty((max(draws, 1), n_max + 1), np.int32)
    states = np.empty(max(draws, 1), np.uint64)
    terms = np.empty(max_len, np.float64)
    mids = np.empty(max_len, np.int32)
    mstarts = np.empty(max_len, np.int64)
    for t in range(first, last):
        lo = starts[t]
        hi = ends[t]
        if mode == MODE_VITERBI:
            viterbi_pass(rbase, rcheck, rvalue, scores, buf, lo, hi, mass, bp[0], mids, mstarts)
            counts[t] = backtrack(bp[0], lengths, hi - lo, out, out_starts[t])
            continue
        for d in range(draws):
            states[d] = stream_key(seed, epoch, np.uint64(indices[t]), np.uint64(d))
        forward_pass(
            rbase, rcheck, rvalue, weights, max_len, buf, lo, hi, log_domain, mass, draws,
            states, bp, terms, mids, mstarts,
        )
        for d in range(draws):
            r = t * draws + d
            counts[r] = backtrack(bp[d], lengths, hi - lo, out, out_starts[r])


@njit(cache=True, nogil=True)
def log_partition_items(rbase, rcheck, rvalue, log_weights, max_len, buf, starts, ends, out, first, last):
    """log Z_alpha of items [first, last) into ``out``, in log space (exact to rounding)."""
    n_max = _longest(starts, ends, first, last)
    mass = np.empty(n_max + 1, np.float64)
    no_states = np.empty(0, np.uint64)
    no_bp = np.empty((0, 0), np.int32)
    terms = np.empty(max_len, np.float64)
    mids = np.empty(max_len, np.int32)
    mstarts = np.empty(max_len, np.int64)
    for t in range(first, last):
        out[t] = forward_pass(
            rbase, rcheck, rvalue, log_weights, max_len, buf, starts[t], ends[t], True, mass,
            0, no_states, no_bp, terms, mids, mstarts,
        )
