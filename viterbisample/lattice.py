"""Every traversal of the Unigram lattice (ALGORITHMS.md sections 2-4).

The lattice of a text has nodes ``0..n`` (byte positions) and an edge ``(i, j, id)`` for
each piece equal to ``text[i:j]``.  Edges are never stored: a pass walks positions, asks
``trie.prefix_matches`` for the edges leaving (or entering) a position and relaxes them
into position-indexed arrays, so every pass is O(edges) time and O(n) memory.

* ``viterbi_pass``: best[j] = max(best[i] + s(id)), with a back-pointer per position.
  Edges reach j from the earliest start first, so keeping the incumbent on an exact tie
  (strict ``>``) gives the one tie rule used everywhere: among equal scores, the path whose
  last piece is longest wins, and recursively so for the rest of the path.
* ``forward_pass``: the tempered forward masses Z[j] = sum over edges (i, j, id) of
  Z[i] * exp(alpha s(id)), in log space or in a rescaled linear space; Z[n] is the
  partition function.
* ``sample_backward``: one exact sample of q_alpha(w) = exp(alpha S(w)) / Z[n] from the
  forward masses (forward filtering, backward sampling; section 4): walking back from n,
  the previous token is one of the edges ending at the current position (found with the
  trie of reversed pieces), chosen with probability Z[i] exp(alpha s(id)) / Z[j].  The
  product of the choices telescopes to q_alpha(w).  One forward pass serves any number of
  samples, and a sample costs one reversed walk and one uniform per output token.
* ``backtrack``: follows Viterbi back-pointers from n to 0 and writes the ids in order.

The ``*_items`` drivers run these over a batch of byte ranges of one buffer and write ids
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

from .logmath import RESCALE_HIGH, RESCALE_LOW, edge_probability, logaddexp
from .rng import next_uniform, stream_key
from .trie import prefix_matches

MODE_VITERBI = 0
MODE_SAMPLE = 1

# Status code returned instead of raising inside a kernel.
STATUS_BAD_PATH = -1


@njit(cache=True, nogil=True, _nrt=False)
def viterbi_pass(base, check, value, scores, text, lo, hi, best, bp, mids, mends):
    """Fill ``bp[1..n]`` with the last piece of the best path to each position.

    ``best`` float64 and ``bp`` int32 of length >= n + 1; ``mids``/``mends`` match buffers
    of the model's longest piece length.
    """
    n = hi - lo
    best[0] = 0.0
    bp[0] = -1
    for j in range(1, n + 1):
        best[j] = -np.inf
        bp[j] = -1
    for i in range(n):
        bi = best[i]
        k = prefix_matches(base, check, value, text, lo + i, hi, 1, mids, mends)
        for m in range(k):
            pid = mids[m]
            j = mends[m] - lo
            sc = bi + scores[pid]
            if sc > best[j]:
                best[j] = sc
                bp[j] = pid


@njit(cache=True, nogil=True, _nrt=False)
def forward_pass(base, check, value, weights, max_len, text, lo, hi, log_domain, mass, scale, mids, mends):
    """Forward masses of q_alpha over ``text[lo:hi]``; returns log Z[n].

    ``log_domain``: ``weights`` are alpha * s(id) and ``mass[j]`` is log Z[j].
    Otherwise ``weights`` are exp(alpha s(id) - c len(id)) from
    ``logmath.tempered_linear_weights`` (the per-byte shift c cancels in q_alpha) and the
    pass keeps ``Z[j] = mass[j] * exp(scale[j] + c j)``: when the mass of the current
    position leaves [RESCALE_LOW, RESCALE_HIGH] it and the pending positions up to
    ``max_len`` ahead are divided by it, and ``scale`` records the running log factor.
    The linear return value omits ``c n`` (the caller adds it).
    """
    n = hi - lo
    if log_domain:
        mass[0] = 0.0
        for j in range(1, n + 1):
            mass[j] = -np.inf
    else:
        mass[0] = 1.0
        for j in range(1, n + 1):
            mass[j] = 0.0
    log_scale = 0.0
    for i in range(n):
        mi = mass[i]
        if not log_domain:
            if mi < RESCALE_LOW or mi > RESCALE_HIGH:
                inv = 1.0 / mi
                for t in range(i, min(n, i + max_len) + 1):
                    mass[t] *= inv
                log_scale += math.log(mi)
                mi = 1.0
            scale[i] = log_scale
        k = prefix_matches(base, check, value, text, lo + i, hi, 1, mids, mends)
        for m in range(k):
            pid = mids[m]
            j = mends[m] - lo
            if log_domain:
                mass[j] = logaddexp(mass[j], mi + weights[pid])
            else:
                mass[j] += mi * weights[pid]
    if log_domain:
        return mass[n]
    scale[n] = log_scale
    return math.log(mass[n]) + log_scale


@njit(cache=True, nogil=True, _nrt=False)
def sample_backward(
    rbase, rcheck, rvalue, weights, lengths, text, lo, hi, log_domain, mass, scale, key, out,
    out_lo, mids, mstarts,
):
    """One exact sample from the masses of ``forward_pass``; writes its ids to ``out[out_lo:]``
    in text order and returns their number (``STATUS_BAD_PATH`` on a broken invariant).

    ``rbase``/``rcheck``/``rvalue`` are the trie of reversed pieces.  At position j each
    edge (i, j, id) is the previous token with probability Z[i] exp(alpha s(id)) / Z[j]
    (``logmath.edge_probability``); one uniform u from the stream ``key`` picks the first
    edge whose cumulative probability exceeds u.  The forward pass summed the same terms
    into Z[j], so the probabilities add up to one up to rounding; if rounding leaves u
    uncovered, the last edge with positive probability is taken.
    """
    n = hi - lo
    state = key
    j = n
    count = 0
    while j > 0:
        k = prefix_matches(rbase, rcheck, rvalue, text, lo + j - 1, lo - 1, -1, mids, mstarts)
        ref = mass[j] if log_domain else 1.0 / mass[j]
        state, u = next_uniform(state)
        cumulative = 0.0
        chosen = -1
        for m in range(k):
            pid = mids[m]
            i = mstarts[m] - lo
            p = edge_probability(mass[i], weights[pid], scale[i], ref, scale[j], log_domain)
            if p > 0.0:
                chosen = pid
                cumulative += p
                if cumulative > u:
                    break
        if chosen < 0 or lengths[chosen] > j:
            return STATUS_BAD_PATH
        out[out_lo + count] = chosen
        count += 1
        j -= lengths[chosen]
    _reverse(out, out_lo, count)
    return count


@njit(cache=True, nogil=True, _nrt=False)
def _reverse(out, lo, count):
    a = lo
    b = lo + count - 1
    while a < b:
        out[a], out[b] = out[b], out[a]
        a += 1
        b -= 1


@njit(cache=True, nogil=True, _nrt=False)
def backtrack(bp, lengths, n, out, out_lo):
    """Write the Viterbi path ending at n into ``out[out_lo:]`` in text order; return its
    length, or ``STATUS_BAD_PATH`` if a back-pointer does not move strictly backward."""
    j = n
    count = 0
    while j > 0:
        pid = bp[j]
        if pid < 0 or lengths[pid] <= 0 or lengths[pid] > j:
            return STATUS_BAD_PATH
        out[out_lo + count] = pid
        count += 1
        j -= lengths[pid]
    _reverse(out, out_lo, count)
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
    base, check, value, rbase, rcheck, rvalue, scores, weights, lengths, max_len, mode,
    log_domain, buf, starts, ends, draws, out_starts, seed, epoch, indices, out, counts,
    first, last,
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
    aux = np.empty(n_max + 1, np.float64)
    bp = np.empty(n_max + 1, np.int32)
    mids = np.empty(max_len, np.int32)
    mends = np.empty(max_len, np.int64)
    for t in range(first, last):
        lo = starts[t]
        hi = ends[t]
        if mode == MODE_VITERBI:
            viterbi_pass(base, check, value, scores, buf, lo, hi, mass, bp, mids, mends)
            counts[t] = backtrack(bp, lengths, hi - lo, out, out_starts[t])
            continue
        forward_pass(base, check, value, weights, max_len, buf, lo, hi, log_domain, mass, aux, mids, mends)
        for d in range(draws):
            r = t * draws + d
            key = stream_key(seed, epoch, np.uint64(indices[t]), np.uint64(d))
            counts[r] = sample_backward(
                rbase, rcheck, rvalue, weights, lengths, buf, lo, hi, log_domain, mass, aux,
                key, out, out_starts[r], mids, mends,
            )


@njit(cache=True, nogil=True)
def log_partition_items(base, check, value, log_weights, max_len, buf, starts, ends, out, first, last):
    """log Z_alpha of items [first, last) into ``out``, in log space (exact to rounding)."""
    n_max = _longest(starts, ends, first, last)
    mass = np.empty(n_max + 1, np.float64)
    mids = np.empty(max_len, np.int32)
    mends = np.empty(max_len, np.int64)
    for t in range(first, last):
        out[t] = forward_pass(
            base, check, value, log_weights, max_len, buf, starts[t], ends[t], True, mass,
            mass, mids, mends,
        )
