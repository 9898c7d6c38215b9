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
* ``tempered_pass``: the tempered forward masses Z[j] = sum over edges of
  Z[i] exp(alpha s(id)), kept in the log domain relative to the Viterbi score of each
  prefix, so that it is exact at every alpha in [0, inf] (Z[n] is the partition
  function).  With ``draws`` > 0 it is also the perfect sampler (section 4): once Z[j]
  is known, each of the ``draws`` independent samplers chooses the last edge into j
  with probability Z[i] exp(alpha s(id)) / Z[j] using one uniform.  Following the
  choices back from n yields a path w with probability
  prod Z[i_t] exp(alpha s_t) / Z[j_t] = exp(alpha S(w)) / Z[n] = q_alpha(w): the ratios
  telescope.  One pass serves any number of samples.
* ``linear_sample_pass``: the same sampler with no exp or log per edge, in a rescaled
  linear domain; used only where
  ``logmath.linear_domain_weights`` proves that no value can overflow or underflow to a
  wrong choice (small and moderate alpha: the common case).
* ``backtrack``: follows back-pointers from n to 0 and writes the ids in text order.
* ``marginal_pass``: the edge marginals (expected piece counts: the trainer's E-step,
  ``stats_batch``, entropy), going back from n over the sampler's choice probabilities;
  ``normalized_forward_backward`` computes the same in the linear domain, with no exp or
  log per edge, where the same bound allows.
* ``alternative_items``: the best segmentation of a piece's bytes other than the piece
  itself (the trainer's pruning).
* ``nbest`` and ``sample_distinct``: exact k best paths and Gumbel-top-k samples.

The ``*_items`` drivers run a pass over a batch of byte ranges of one buffer and write ids
into one flat output, so Python enters a kernel once per chunk of texts (``nogil``: the
caller gives chunks to threads).  ``encode_items`` takes a packed chunk and writes its
offsets too; the others take ``[first, last)`` item bounds.  All arguments are validated
by the caller: Numba does not check bounds.

Where the passes read every position in order, two things keep them cheap:

* inside a UTF-8 character (``text.character_end_step``, O(1) a byte) a vocabulary of
  whole characters has only the one-byte piece ending there, so Viterbi and the sampler
  take it (``trie.single_byte_piece``) without a walk: two of every three positions of
  CJK text;
* best scores and masses live in a ring of the last ``ring_size(max_len)`` positions
  (all an edge can reach back to) when only the back-pointers are kept: a 100 MB line
  holds 4 bytes of state per byte (its back-pointers), not 12.

Passes that allocate nothing are compiled with ``_nrt=False`` (as ``trie.prefix_matches``):
Numba's reference counting of array arguments would otherwise cost more per call than a
short text's whole lattice.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .logmath import (
    RESCALE_HIGH,
    RESCALE_LOW,
    gumbel,
    log_of_product,
    multiply_folded,
    running_exp_sums,
    scaled_gap,
    tempered_log_mass,
    truncated_gumbel,
)
from .rng import next_uniform, stream_key
from .text import character_end_step
from .trie import WHOLE_CHARACTERS, best_suffix_match, prefix_matches, single_byte_piece, suffix_mass_terms

# ``encode_items`` runs Viterbi when given this alpha (an alpha is >= 0).
VITERBI = -1.0

# Status code returned instead of raising inside a kernel.
STATUS_BAD_PATH = -1


@njit(cache=True, nogil=True, _nrt=False)
def viterbi_pass(rbase, rcheck, rvalue, scores, text, lo, hi, best, mask, bp, mids, mstarts):
    """Fill ``bp[1..n]`` with the last piece of the best path to each position.

    ``rbase``/``rcheck``/``rvalue``: the trie of reversed pieces.  ``bp`` int32 of length
    >= n + 1; ``mids``/``mstarts`` match buffers of the model's longest piece length.
    The best score of position j is ``best[j & mask]``: with ``mask = -1``, ``best`` has
    all n + 1 positions; with ``best`` a ring of ``ring_size(max_len)`` and ``mask`` that
    size - 1, only the last positions, all an edge can reach back to.
    """
    n = hi - lo
    best[0] = 0.0
    bp[0] = -1
    whole = rvalue[0] == WHOLE_CHARACTERS
    pending = -1
    for j in range(1, n + 1):
        b = text[lo + j - 1]
        if whole:
            char_ends, pending = character_end_step(b, pending)
            if not char_ends:  # inside a character: only the one-byte piece ends here
                v = single_byte_piece(rbase, rcheck, rvalue, b)
                best[j & mask] = best[(j - 1) & mask] + scores[v] if v >= 0 else -np.inf
                bp[j] = v
                continue
        best[j & mask], bp[j] = best_suffix_match(rbase, rcheck, rvalue, text, lo + j - 1, lo - 1, scores, best, lo, mask)


@njit(cache=True, nogil=True)
def ring_size(max_len):
    """The smallest power of two above ``max_len``: a ring of per-position values that
    long holds every position the edges into the next one start at."""
    size = 1
    while size <= max_len:
        size *= 2
    return size


@njit(cache=True, nogil=True, _nrt=False)
def linear_sample_pass(base, check, value, weights, max_len, text, lo, hi, mass, mask, draws, states, bp, terms, mids):
    """``draws`` exact samples of q_alpha over ``text[lo:hi]`` in the linear domain;
    returns log Z' (log Z without the per-byte shift: the caller adds ``shift * n``), or
    NaN if a total is not a positive finite number (then nothing is sampled: the caller
    runs ``tempered_pass`` instead).

    Only for the weights of ``logmath.linear_domain_weights``, whose docstring proves the
    invariant this pass relies on: the masses Z'[j] (``mass[j & mask]``, a ring as in
    ``viterbi_pass``) share one scale, and when the newest leaves [RESCALE_LOW,
    RESCALE_HIGH] the ``max_len`` positions that later edges can still read are divided
    by it; then no mass an edge reads overflows, and what underflows is negligible
    against the total it joins.  Once position j's terms are summed
    (``trie.suffix_mass_terms``), each of the ``draws`` samplers chooses its last edge
    into j with probability term / total using one uniform (ALGORITHMS.md section 4):
    the ratios telescope, so a path comes out with probability q_alpha.  ``states[d]``:
    sampler d's stream (rng.py, advanced in place); ``bp[d, j]``: its choice; ``terms``:
    ``max_len`` scratch.
    """
    n = hi - lo
    mass[0] = 1.0
    log_scale = 0.0
    first_state = states[0]  # kept in a register
    whole = value[0] == WHOLE_CHARACTERS
    pending = -1
    for q in range(n):
        p = q + 1
        char_ends = True
        if whole:
            char_ends, pending = character_end_step(text[lo + q], pending)
        if char_ends:
            k, total = suffix_mass_terms(base, check, value, text, lo + q, lo - 1, weights, mass, lo, mask, mids, terms)
        else:  # inside a character: only the one-byte piece ends here
            v = single_byte_piece(base, check, value, text[lo + q])
            k = 1 if v >= 0 else 0
            mids[0] = v
            total = mass[q & mask] * weights[v] if v >= 0 else 0.0
            terms[0] = total
        mass[p & mask] = total
        if k == 1:  # one edge: every sampler takes it, no draw needed
            for d in range(draws):
                bp[d, p] = mids[0]
        elif k > 1:  # (no edge: the total is 0, refused below)
            first_state, u = next_uniform(first_state)
            bp[0, p] = _choose(mids, terms, k, u * total)
            for d in range(1, draws):
                state, u = next_uniform(states[d])
                states[d] = state
                bp[d, p] = _choose(mids, terms, k, u * total)
        if not RESCALE_LOW <= total <= RESCALE_HIGH:
            if not 0.0 < total < np.inf:  # also NaN: outside the proven domain
                return np.nan
            inv = 1.0 / total
            for t in range(max(0, p - max_len + 1), p + 1):
                mass[t & mask] *= inv
            log_scale = log_of_product(log_scale, total)
    states[0] = first_state
    return log_of_product(log_scale, mass[n & mask])


@njit(cache=True, nogil=True, _nrt=False)
def tempered_pass(rbase, rcheck, rvalue, scores, alpha, text, lo, hi, best, rel, mask, draws, states, bp, terms, mids, mstarts):
    """The forward pass of q_alpha in the log domain, exact for every alpha in [0, inf]
    and any scores; ``draws`` exact samples on the way.  Returns False if a position has
    no edge (no path), else True.

    A log mass log Z[j] can overflow at large alpha (alpha * S), and differences of such
    values lose all precision, so each position keeps it relative to the best path
    instead: ``best[j]``, the Viterbi score of the prefix (no alpha in it), and
    ``rel[j]`` = log of the sum over paths to j of exp(alpha (S(path) - best[j])), which
    lies in [0, log(number of paths)] whatever alpha is.  log Z[j] = alpha best[j] +
    rel[j].  An edge (i, j, id) has the term rel[i] + alpha (best[i] + s(id) - best[j]);
    the gap in brackets is <= 0 and exactly 0 for the best edge
    (``logmath.scaled_gap`` keeps alpha = inf and alpha = 0 free of NaN), so the largest
    term is >= 0 and ``running_exp_sums`` never sees an overflow.  Sampler d chooses its
    last edge into j with probability exp(term - rel[j]), as in ``linear_sample_pass``.
    Values of position j are at ``[j & mask]``, whole arrays (mask -1) or a ring.
    """
    n = hi - lo
    best[0] = 0.0
    rel[0] = 0.0
    reachable = True
    for j in range(1, n + 1):
        k = prefix_matches(rbase, rcheck, rvalue, text, lo + j - 1, lo - 1, -1, mids, 0, mstarts)
        top = -np.inf
        for m in range(k):
            key = best[(mstarts[m] - lo) & mask] + scores[mids[m]]
            terms[m] = key
            if key > top:
                top = key
        if top == -np.inf:  # no edge from a reachable position
            best[j & mask] = -np.inf
            rel[j & mask] = -np.inf
            reachable = False
            for d in range(draws):
                bp[d, j] = -1  # backtrack reports it
            continue
        for m in range(k):
            terms[m] = rel[(mstarts[m] - lo) & mask] + scaled_gap(alpha, terms[m] - top)
        best[j & mask] = top
        rel[j & mask], running = running_exp_sums(terms, k)
        if k == 1:
            for d in range(draws):
                bp[d, j] = mids[0]
        else:
            for d in range(draws):
                state, u = next_uniform(states[d])
                states[d] = state
                bp[d, j] = _choose(mids, terms, k, u * running)
    return reachable


@njit(cache=True, nogil=True, _nrt=False)
def _choose(mids, running, k, target):
    """The first edge whose running sum of terms exceeds ``target`` (= u * total, u < 1).

    Counts the running sums that do not exceed it, without a branch (the choice is
    random, so a branch would mispredict).  The last running sum is the total itself, so
    the count is below k; it is clamped all the same, so that no rounding can ever index
    past the edges.
    """
    below = 0
    for m in range(k):
        below += running[m] <= target
    return mids[min(below, k - 1)]


@njit(cache=True, nogil=True, _nrt=False)
def backtrack(bp, lengths, n, out, out_lo):
    """Write the path ending at n into ``out[out_lo:]`` in text order; return its length,
    or ``STATUS_BAD_PATH`` if a back-pointer does not move strictly backward.

    The ids are found last first and written from the far end of the room the path has
    (``n`` ids: a path has at most one per byte), then moved to its start in one copy.
    """
    j = n
    at = out_lo + n
    while j > 0:
        pid = bp[j]
        if pid < 0 or lengths[pid] <= 0 or lengths[pid] > j:
            return STATUS_BAD_PATH
        at -= 1
        out[at] = pid
        j -= lengths[pid]
    count = out_lo + n - at
    if at > out_lo:  # forward copy: the destination starts below the source
        for i in range(count):
            out[out_lo + i] = out[at + i]
    return count


@njit(cache=True, nogil=True)
def match_buffers(max_len):
    """Room for the matches at one position (``trie.prefix_matches``): ids and far ends."""
    return np.empty(max_len, np.int32), np.empty(max_len, np.int64)


@njit(cache=True, nogil=True)
def _longest(starts, ends, first, last):
    longest = 0
    for t in range(first, last):
        if ends[t] - starts[t] > longest:
            longest = ends[t] - starts[t]
    return longest


@njit(cache=True, nogil=True)
def encode_items(
    rbase, rcheck, rvalue, scores, weights, lengths, max_len, alpha, buf, starts, ends,
    draws, seed, epoch, first_index, out, offsets,
):
    """Viterbi (``alpha`` = ``VITERBI``, ``draws`` 1) or ``draws`` exact samples of q_alpha of
    every item; returns 0, or -1 - t if item t has no path (a broken invariant: a model
    without some single byte, say).

    Sampling runs ``linear_sample_pass`` when ``weights`` (``logmath.linear_domain_weights``)
    is not empty and ``tempered_pass`` otherwise, or for an item on which the linear pass
    reports a total outside its proven domain.  Item t is ``buf[starts[t]:ends[t]]``.  The
    outputs r = t * draws + d are written to ``out`` back to back, output r at
    ``out[offsets[r]:offsets[r + 1]]`` (``offsets`` has room for len(starts) * draws + 1
    entries; ``out`` for draws times the items' total length: a path never has more
    tokens than bytes).  Sample d of item t draws from the stream
    (seed, epoch, first_index + t, d), so it does not depend on the batch or on the
    thread that runs it.
    """
    n_items = starts.shape[0]
    n_max = _longest(starts, ends, 0, n_items)
    ring = ring_size(max_len)  # per-position values: only the last positions are read
    values = np.empty(ring, np.float64)
    rel = np.empty(ring, np.float64)
    bp = np.empty((draws, n_max + 1), np.int32)
    states = np.empty(draws, np.uint64)
    terms = np.empty(max_len, np.float64)
    mids, mstarts = match_buffers(max_len)
    linear = weights.shape[0] > 0
    cursor = 0
    offsets[0] = 0
    for t in range(n_items):
        lo = starts[t]
        hi = ends[t]
        if alpha == VITERBI:
            viterbi_pass(rbase, rcheck, rvalue, scores, buf, lo, hi, values, ring - 1, bp[0], mids, mstarts)
        else:
            for d in range(draws):
                states[d] = stream_key(seed, epoch, first_index + np.uint64(t), np.uint64(d))
            done = False
            if linear:
                log_z = linear_sample_pass(
                    rbase, rcheck, rvalue, weights, max_len, buf, lo, hi, values, ring - 1, draws, states, bp,
                    terms, mids,
                )
                done = log_z == log_z
                if not done:  # start the same streams again
                    for d in range(draws):
                        states[d] = stream_key(seed, epoch, first_index + np.uint64(t), np.uint64(d))
            if not done:
                tempered_pass(
                    rbase, rcheck, rvalue, scores, alpha, buf, lo, hi, values, rel, ring - 1, draws,
                    states, bp, terms, mids, mstarts,
                )
        for d in range(draws):
            count = backtrack(bp[d], lengths, hi - lo, out, cursor)
            if count < 0:
                return -1 - t
            cursor += count
            offsets[t * draws + d + 1] = cursor
    return 0


@njit(cache=True, nogil=True)
def alternative_items(rbase, rcheck, rvalue, scores, max_len, buf, starts, ends, out, first, last):
    """For each item t of [first, last), a piece's own bytes: the score of its best
    segmentation that is not the piece itself, into ``out[t]`` (-inf for one byte).

    Viterbi over the item settles every position; the last position is then taken
    again without the edge from 0 (the whole item, the only edge spanning it).  The
    trainer prices a piece's removal by this score (``train/prune.py``).
    """
    n_max = _longest(starts, ends, first, last)
    best = np.empty(n_max + 1, np.float64)
    bp = np.empty(n_max + 1, np.int32)
    mids, mstarts = match_buffers(max_len)
    for t in range(first, last):
        lo = starts[t]
        hi = ends[t]
        viterbi_pass(rbase, rcheck, rvalue, scores, buf, lo, hi, best, -1, bp, mids, mstarts)
        k = prefix_matches(rbase, rcheck, rvalue, buf, hi - 1, lo - 1, -1, mids, 0, mstarts)
        top = -np.inf
        for m in range(k):
            i = mstarts[m] - lo
            if i > 0 and best[i] + scores[mids[m]] > top:
                top = best[i] + scores[mids[m]]
        out[t] = top


@njit(cache=True, nogil=True)
def log_partition_items(rbase, rcheck, rvalue, scores, alpha, max_len, buf, starts, ends, out, out_best, out_rel, first, last):
    """log Z_alpha of items [first, last) into ``out`` (``tempered_pass``: exact to
    rounding at every alpha; -inf or inf only where log Z itself is beyond a double), and
    its two parts: the Viterbi score into ``out_best`` and the mass relative to the best
    path into ``out_rel`` (log Z = alpha best + rel)."""
    ring = ring_size(max_len)
    best = np.empty(ring, np.float64)
    rel = np.empty(ring, np.float64)
    no_states, no_bp = np.empty(0, np.uint64), np.empty((0, 0), np.int32)
    terms = np.empty(max_len, np.float64)
    mids, mstarts = match_buffers(max_len)
    for t in range(first, last):
        n = ends[t] - starts[t]
        tempered_pass(
            rbase, rcheck, rvalue, scores, alpha, buf, starts[t], ends[t], best, rel, ring - 1, 0,
            no_states, no_bp, terms, mids, mstarts,
        )
        out_best[t] = best[n & (ring - 1)]
        out_rel[t] = rel[n & (ring - 1)]
        out[t] = tempered_log_mass(alpha, out_best[t], out_rel[t])


# -- forward-backward quantities (ALGORITHMS.md section 5) --------------------------------


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
def log_edge_probability(best_i, score, rel_i, best_j, rel_j, alpha):
    """log P(the last edge into j is this one | a path through j): the sampler's choice
    probability, from the forward values of its two ends (``tempered_pass``); <= 0."""
    lp = rel_i + scaled_gap(alpha, best_i + score - best_j) - rel_j
    return min(lp, 0.0)


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
    base, check, value, rbase, rcheck, rvalue, weights, log_weights, shift, scores, alpha,
    max_len, buf, starts, ends, item_weights, counts, out_log_z, out_length, out_score,
    out_entropy, first, last,
):
    """log Z, E[#tokens], E[S] and the entropy of q_alpha of items [first, last),
    exactly.

    With a non-empty ``counts``, also adds ``item_weights[t]`` times each piece's expected
    count (the trainer's E-step).  With non-empty ``weights`` (``logmath.linear_domain_weights``)
    by ``normalized_forward_backward``; otherwise, or should it fail on an item, by
    ``tempered_pass`` and ``marginal_pass`` in the log domain.
    """
    n_max = _longest(starts, ends, first, last)
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
def edge_marginals(rbase, rcheck, rvalue, scores, alpha, max_len, text):
    """Every edge of one text with its marginal: arrays (start, end, id, probability),
    ordered by end position, then by start (longest piece first)."""
    n = text.shape[0]
    best = np.empty(n + 1, np.float64)
    rel = np.empty(n + 1, np.float64)
    boundary = np.empty(n + 1, np.float64)
    forward_values(rbase, rcheck, rvalue, scores, alpha, max_len, text, 0, n, best, rel)
    count = np.zeros(1, np.int64)
    mids, mstarts = match_buffers(max_len)
    count_edges_items(rbase, rcheck, rvalue, max_len, text, np.zeros(1, np.int64), np.full(1, n, np.int64), count, 0, 1)
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


@njit(cache=True)
def _grown(arr, size):
    out = np.empty(size, arr.dtype)
    out[: arr.shape[0]] = arr
    return out


# -- n-best and sampling without replacement (ALGORITHMS.md section 5) ---------------------


@njit(cache=True, nogil=True)
def nbest(rbase, rcheck, rvalue, scores, lengths, max_len, text, k):
    """The exact k best segmentations of ``text``, best first: (flat ids, offsets, scores).

    Each position keeps its k best partial paths, sorted; position j merges the sorted
    lists of the sources of its edges, so the lists are exact for any input length
    (O(edges * k) time, O(n * k) memory).  Among equal scores the later, longer last piece
    wins, as in ``viterbi_pass``, so the first path is the Viterbi path.
    """
    n = text.shape[0]
    best = np.full((n + 1, k), -np.inf)
    prev = np.zeros((n + 1, k), np.int32)
    piece = np.zeros((n + 1, k), np.int32)
    size = np.zeros(n + 1, np.int64)
    best[0, 0] = 0.0
    size[0] = 1
    mids, mstarts = match_buffers(max_len)
    rank = np.empty(max_len, np.int64)
    for j in range(1, n + 1):
        c = prefix_matches(rbase, rcheck, rvalue, text, j - 1, -1, -1, mids, 0, mstarts)
        for m in range(c):
            rank[m] = 0
        r = 0
        while r < k:
            top = -np.inf
            arg = -1
            for m in range(c):
                i = mstarts[m]
                if rank[m] < size[i]:
                    v = best[i, rank[m]] + scores[mids[m]]
                    if v >= top:
                        top = v
                        arg = m
            if arg < 0:
                break
            best[j, r] = top
            prev[j, r] = rank[arg]
            piece[j, r] = mids[arg]
            rank[arg] += 1
            r += 1
        size[j] = r
    found = size[n]
    offsets = np.zeros(found + 1, np.int64)
    for r in range(found):  # path lengths first, then the ids back to front
        j = n
        rr = r
        count = 0
        while j > 0:
            pid = piece[j, rr]
            rr = prev[j, rr]
            j -= lengths[pid]
            count += 1
        offsets[r + 1] = offsets[r] + count
    ids = np.empty(offsets[found], np.int32)
    for r in range(found):
        j = n
        rr = r
        at = offsets[r + 1]
        while j > 0:
            pid = piece[j, rr]
            at -= 1
            ids[at] = pid
            rr = prev[j, rr]
            j -= lengths[pid]
    return ids, offsets, best[n, :found].copy()


@njit(cache=True, nogil=True)
def _heap_push(heap_key, heap_val, size, key, val):
    """Push onto a max-heap held in arrays (caller ensures capacity); returns new size."""
    i = size
    heap_key[i] = key
    heap_val[i] = val
    while i > 0:
        parent = (i - 1) // 2
        if heap_key[parent] >= heap_key[i]:
            break
        heap_key[i], heap_key[parent] = heap_key[parent], heap_key[i]
        heap_val[i], heap_val[parent] = heap_val[parent], heap_val[i]
        i = parent
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(heap_key, heap_val, size):
    """Remove the largest entry of a max-heap; returns (its value, new size)."""
    top = heap_val[0]
    size -= 1
    heap_key[0] = heap_key[size]
    heap_val[0] = heap_val[size]
    i = 0
    while True:
        left = 2 * i + 1
        largest = i
        if left < size and heap_key[left] > heap_key[largest]:
            largest = left
        if left + 1 < size and heap_key[left + 1] > heap_key[largest]:
            largest = left + 1
        if largest == i:
            break
        heap_key[i], heap_key[largest] = heap_key[largest], heap_key[i]
        heap_val[i], heap_val[largest] = heap_val[largest], heap_val[i]
        i = largest
    return top, size


@njit(cache=True, nogil=True)
def sample_distinct(rbase, rcheck, rvalue, scores, alpha, lengths, max_len, text, k, key):
    """k distinct segmentations drawn without replacement from q_alpha (Gumbel-top-k).

    Every complete path gets the perturbed value log q(w) + Gumbel; the k largest are an
    exact sample without replacement.  They are found top-down without enumerating
    paths: a partial path (a suffix of the text, from position j to n) carries the
    maximum perturbed value of its completions, and its extensions by the edges ending at
    j get values drawn conditionally on that maximum (``logmath.truncated_gumbel``),
    with log-probabilities from the forward values: log q of a completion through edge
    (i, j, id) adds ``log_edge_probability`` (log Z[i] + alpha s(id) - log Z[j]).  Partial paths are expanded best
    first, so complete ones come out in decreasing perturbed value; only ancestors of the
    returned paths are ever expanded.

    Returns (flat ids, offsets, log q per path, perturbed value per path, kappa), with
    kappa the (k+1)-th largest perturbed value (-inf if there are at most k paths), for
    inclusion estimates.
    """
    n = text.shape[0]
    best = np.empty(n + 1, np.float64)
    rel = np.empty(n + 1, np.float64)
    forward_values(rbase, rcheck, rvalue, scores, alpha, max_len, text, 0, n, best, rel)
    terms = np.empty(max_len, np.float64)
    mids, mstarts = match_buffers(max_len)
    cap = 64
    node_pos = np.empty(cap, np.int64)
    node_parent = np.empty(cap, np.int64)
    node_piece = np.empty(cap, np.int32)
    node_logq = np.empty(cap, np.float64)
    heap_key = np.empty(cap, np.float64)
    heap_val = np.empty(cap, np.int64)
    state = key
    state, u = next_uniform(state)
    node_pos[0] = n
    node_parent[0] = -1
    node_piece[0] = -1
    node_logq[0] = 0.0
    n_nodes = 1
    heap_size = _heap_push(heap_key, heap_val, 0, gumbel(u), 0)
    leaves = np.empty(k + 1, np.int64)
    leaf_key = np.empty(k + 1, np.float64)
    n_leaves = 0
    while heap_size > 0 and n_leaves < k + 1:
        g_node = heap_key[0]
        node, heap_size = _heap_pop(heap_key, heap_val, heap_size)
        j = node_pos[node]
        if j == 0:
            leaves[n_leaves] = node
            leaf_key[n_leaves] = g_node
            n_leaves += 1
            continue
        c = prefix_matches(rbase, rcheck, rvalue, text, j - 1, -1, -1, mids, 0, mstarts)
        if n_nodes + c > cap:
            cap = 2 * (n_nodes + c)
            node_pos = _grown(node_pos, cap)
            node_parent = _grown(node_parent, cap)
            node_piece = _grown(node_piece, cap)
            node_logq = _grown(node_logq, cap)
            heap_key = _grown(heap_key, cap)
            heap_val = _grown(heap_val, cap)
        g_max = -np.inf
        for m in range(c):
            i = mstarts[m]
            logq = node_logq[node] + log_edge_probability(best[i], scores[mids[m]], rel[i], best[j], rel[j], alpha)
            state, u = next_uniform(state)
            terms[m] = logq + gumbel(u)
            if terms[m] > g_max:
                g_max = terms[m]
            node_pos[n_nodes + m] = mstarts[m]
            node_parent[n_nodes + m] = node
            node_piece[n_nodes + m] = mids[m]
            node_logq[n_nodes + m] = logq
        for m in range(c):
            g = truncated_gumbel(terms[m], g_max, g_node)
            heap_size = _heap_push(heap_key, heap_val, heap_size, g, n_nodes + m)
        n_nodes += c
    found = min(n_leaves, k)
    kappa = leaf_key[k] if n_leaves > k else -np.inf
    keys = leaf_key[:found].copy()
    offsets = np.zeros(found + 1, np.int64)
    for r in range(found):
        count = 0
        node = leaves[r]
        while node_parent[node] >= 0:
            count += 1
            node = node_parent[node]
        offsets[r + 1] = offsets[r] + count
    ids = np.empty(offsets[found], np.int32)
    logq = np.empty(found, np.float64)
    for r in range(found):
        node = leaves[r]
        logq[r] = node_logq[node]
        at = offsets[r]
        while node_parent[node] >= 0:
            ids[at] = node_piece[node]
            at += 1
            node = node_parent[node]
    return ids, offsets, logq, keys, kappa


@njit(cache=True, nogil=True)
def count_edges_items(rbase, rcheck, rvalue, max_len, buf, starts, ends, out, first, last):
    """The number of lattice edges of items [first, last), by the same enumeration every
    pass uses (the bare trie walk: the floor no pass can beat, and a check in tests)."""
    mids, mstarts = match_buffers(max_len)
    whole = rvalue[0] == WHOLE_CHARACTERS
    for t in range(first, last):
        lo = starts[t]
        total = 0
        pending = -1
        for j in range(lo, ends[t]):
            if whole:  # the shortcut Viterbi and the sampler take inside characters
                char_ends, pending = character_end_step(buf[j], pending)
                if not char_ends:
                    total += single_byte_piece(rbase, rcheck, rvalue, buf[j]) >= 0
                    continue
            total += prefix_matches(rbase, rcheck, rvalue, buf, j, lo - 1, -1, mids, 0, mstarts)
        out[t] = total
