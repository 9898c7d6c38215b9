"""The forward passes over the Unigram lattice (ALGORITHMS.md sections 2-4).

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
* ``alternative_items``: the best segmentation of a piece's bytes other than the piece
  itself (the trainer's pruning).

The forward-backward quantities (marginals, entropy, the E-step) are in
``lattice/marginals.py``, the k best paths and samples without replacement in
``lattice/topk.py``; both
build on these passes.

The ``*_items`` drivers run a pass over a batch of byte ranges of one buffer and write ids
into one flat output, so Python enters a kernel once per chunk of texts (``nogil``: the
caller gives chunks to threads).  ``encode_items`` takes a packed chunk and writes its
offsets too; the others take ``[first, last)`` item bounds.  All arguments are validated
by the caller: Numba does not check bounds.

Where the passes read every position in order, two things keep them cheap:

* inside a UTF-8 character (``utf8.character_end_step``, O(1) a byte) a vocabulary of
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

from ..logmath import (
    RESCALE_HIGH,
    RESCALE_LOW,
    log_of_product,
    running_exp_sums,
    scaled_gap,
    tempered_log_mass,
)
from ..rng import next_uniform, stream_key
from ..utf8 import character_end_step
from ..trie import WHOLE_CHARACTERS, best_suffix_match, prefix_matches, single_byte_piece, suffix_mass_terms

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
    the ratios telescope, so a path comes out with probability q_alpha.  Where no piece
    ends inside a character (a lattice with ``steps``, see there) the mass is 0 and
    nothing is chosen or rescaled.  ``states[d]``:
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
            if v < 0:  # none (a SentencePiece lattice): no path ends here, none reads it
                mass[p & mask] = 0.0
                continue
            k = 1
            mids[0] = v
            total = mass[q & mask] * weights[v]
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
def longest_item(starts, ends, first, last):
    longest = 0
    for t in range(first, last):
        if ends[t] - starts[t] > longest:
            longest = ends[t] - starts[t]
    return longest


@njit(cache=True, nogil=True)
def encode_items(rtrie, scores, weights, lengths, alpha, buf, starts, ends, draws, seed, epoch, first_index, out, offsets):
    """Viterbi (``alpha`` = ``VITERBI``; every draw is its path) or ``draws`` exact
    samples of q_alpha of every item, over the trie of reversed pieces ``rtrie``; returns
    0, or -1 - t if item t has no path (a broken invariant: a model without some single
    byte, say).

    Item t is ``buf[starts[t]:ends[t]]``, encoded by ``encode_item`` as the text at index
    ``first_index + t``.  The outputs r = t * draws + d are written to ``out`` back to
    back, output r at ``out[offsets[r]:offsets[r + 1]]`` (``offsets`` has room for
    len(starts) * draws + 1 entries; ``out`` for draws times the items' total length: a
    path never has more tokens than bytes).
    """
    max_len = max(1, rtrie.max_len)
    n_items = starts.shape[0]
    scratch = scratch_arrays(max_len, longest_item(starts, ends, 0, n_items), draws)
    cursor = 0
    offsets[0] = 0
    for t in range(n_items):
        cursor = encode_item(
            rtrie.base, rtrie.check, rtrie.value, max_len, scores, weights, lengths, alpha, buf, starts[t],
            ends[t], draws, seed, epoch, first_index + np.uint64(t), scratch, out, cursor, offsets, t * draws + 1,
        )
        if cursor < 0:
            return -1 - t
    return 0


def text_model(rtrie, scores, weights, lengths, alpha):
    """What ``encode_text`` takes of a model at one alpha, packed into two arrays:
    int32 ``[trie size, number of ids, longest piece, base, check, value, lengths]`` and
    float64 ``[alpha, scores, weights]``.

    Handing an argument to a compiled function costs about 45 ns (an array more), as much
    as a few bytes of lattice: a data loader's call on one short text pays less for two
    arrays than for the eight they hold.
    """
    size = len(rtrie.base)
    if len(rtrie.check) != size or len(rtrie.value) != size:
        raise ValueError("the trie's arrays differ in length")
    ints = np.concatenate([np.array([size, len(scores), rtrie.max_len], np.int64), rtrie.base, rtrie.check,
                           rtrie.value, lengths]).astype(np.int32)
    reals = np.concatenate([np.array([alpha], np.float64), scores, weights])
    return ints, reals


def text_room(max_len, size):
    """The buffers ``encode_text`` writes in for texts of up to ``size`` bytes of a model
    whose longest piece has ``max_len`` bytes: int32 ``out`` (the ids, then the
    back-pointers and matches) and float64 ``work`` (per-position values, then int64
    stream state, matches and offsets).  A caller keeps them from call to call:
    allocating them costs a short text more than its lattice."""
    max_len = max(1, max_len)
    out = np.empty(2 * size + 1 + max_len, np.int32)
    work = np.empty(2 * ring_size(max_len) + max_len + 1 + max_len + 2, np.float64)
    return out, work


# _nrt=False here, in viterbi_text and in encode_item: none of them allocates, and
# without Numba's reference counting the arrays they take and the views they cut pass
# for free.  With it, a one-text call spent 0.9 us of its 1.3 us fixed cost counting
# (0.4 us now: what remains is the call itself).
@njit(cache=True, nogil=True, _nrt=False)
def encode_text(ints, reals, text, seed, epoch, index, out, work):
    """``encode_items`` of one text, ``text`` (``bytes``), at ``index``, with one draw,
    for the model ``text_model`` packed: writes its ids to the start of ``out`` and
    returns how many.  ``out`` and ``work`` are ``text_room``'s buffers for at least
    ``len(text)`` bytes.  Raises ``RuntimeError`` if the text has no path.

    The per-call path of a data loader's ``__getitem__``, so it takes what is cheapest to
    hand over: the packed model, the text as ``bytes``, ``seed``, ``epoch`` and ``index``
    as int64 holding the bits of the uint64 stream key parts, and buffers the caller
    keeps: it allocates nothing.
    """
    size, n_ids, max_len = ints[0], ints[1], max(1, ints[2])
    rbase = ints[3 : 3 + size]
    rcheck = ints[3 + size : 3 + 2 * size]
    rvalue = ints[3 + 2 * size : 3 + 3 * size]
    lengths = ints[3 + 3 * size : 3 + 3 * size + n_ids]
    alpha = reals[0]
    scores = reals[1 : 1 + n_ids]
    weights = reals[1 + n_ids :]
    n = len(text)
    values_end = 2 * ring_size(max_len) + max_len
    wide = work[values_end:].view(np.int64)  # 1 stream state, max_len match starts, 2 offsets
    offsets = wide[1 + max_len : 3 + max_len]
    offsets[0] = 0
    scratch = cut_scratch(work[:values_end], out[n:], wide, max_len, n, 1)
    count = encode_item(rbase, rcheck, rvalue, max_len, scores, weights, lengths, alpha, text, 0, n, 1,
                        np.uint64(seed), np.uint64(epoch), np.uint64(index), scratch, out, 0, offsets, 1)
    if count < 0:
        raise RuntimeError("no path through the lattice")
    return count


@njit(cache=True, nogil=True, _nrt=False)
def viterbi_text(ints, scores, text, out, best, mids, mstarts):
    """The Viterbi path of one text (``bytes``) for the trie and lengths of
    ``text_model``'s ``ints`` and per-id ``scores`` of any float dtype (float32:
    SentencePiece's arithmetic, as in ``viterbi_items``): writes its ids to the start of
    ``out`` (room for 2 len(text) + 1) and returns how many.  ``best``: a ring of
    ``ring_size(max_len)`` of the scores' dtype; ``mids``/``mstarts``: ``match_buffers``.
    The per-call path of one text, as ``encode_text``; raises ``RuntimeError`` if the
    text has no path."""
    size, n_ids = ints[0], ints[1]
    rbase = ints[3 : 3 + size]
    rcheck = ints[3 + size : 3 + 2 * size]
    rvalue = ints[3 + 2 * size : 3 + 3 * size]
    lengths = ints[3 + 3 * size : 3 + 3 * size + n_ids]
    n = len(text)
    bp = out[n:]
    viterbi_pass(rbase, rcheck, rvalue, scores, text, 0, n, best, best.shape[0] - 1, bp, mids, mstarts)
    count = backtrack(bp, lengths, n, out, 0)
    if count < 0:
        raise RuntimeError("no path through the lattice")
    return count


@njit(cache=True, nogil=True)
def scratch_arrays(max_len, longest, draws):
    """The working arrays of ``encode_item`` for items of up to ``longest`` bytes, cut
    from three allocations (``cut_scratch``)."""
    ring = ring_size(max_len)  # per-position values: only the last positions are read
    return cut_scratch(np.empty(2 * ring + max_len, np.float64), np.empty(draws * (longest + 1) + max_len, np.int32),
                       np.empty(draws + max_len, np.int64), max_len, longest, draws)


# Inlined, so that in a caller without reference counting (encode_text) its views are
# not counted either (a counted view handed to an uncounted caller would never be freed).
@njit(cache=True, nogil=True, inline="always")
def cut_scratch(reals, ints, wide, max_len, longest, draws):
    """``encode_item``'s working arrays as views of three buffers: ``reals`` of
    2 ring_size(max_len) + max_len floats, ``ints`` of draws (longest + 1) + max_len
    int32 and ``wide`` of draws + max_len int64 (each may be longer)."""
    ring = ring_size(max_len)
    rows = draws * (longest + 1)
    bp = ints[:rows].reshape((draws, longest + 1))
    states = wide[:draws].view(np.uint64)
    return (reals[:ring], reals[ring : 2 * ring], bp, states, reals[2 * ring : 2 * ring + max_len],
            ints[rows : rows + max_len], wide[draws : draws + max_len])


@njit(cache=True, nogil=True, _nrt=False)
def encode_item(rbase, rcheck, rvalue, max_len, scores, weights, lengths, alpha, buf, lo, hi, draws, seed, epoch,
                index, scratch, out, cursor, offsets, offset_at):
    """The Viterbi path or ``draws`` samples of ``buf[lo:hi]``, the text at ``index``:
    written to ``out`` from ``cursor`` on, their ends to ``offsets[offset_at:]``.
    Returns the new cursor, or ``STATUS_BAD_PATH``.

    Sampling runs ``linear_sample_pass`` when ``weights`` (``logmath.linear_domain_weights``)
    is not empty and ``tempered_pass`` otherwise, or when the linear pass reports a total
    outside its proven domain.  Sample d draws from the stream (seed, epoch, index, d), so
    it does not depend on the batch or on the thread that runs it.
    """
    values, rel, bp, states, terms, mids, mstarts = scratch
    mask = values.shape[0] - 1
    if alpha == VITERBI:
        viterbi_pass(rbase, rcheck, rvalue, scores, buf, lo, hi, values, mask, bp[0], mids, mstarts)
    else:
        for d in range(draws):
            states[d] = stream_key(seed, epoch, index, np.uint64(d))
        done = False
        if weights.shape[0] > 0:
            log_z = linear_sample_pass(
                rbase, rcheck, rvalue, weights, max_len, buf, lo, hi, values, mask, draws, states, bp, terms, mids,
            )
            done = log_z == log_z
            if not done:  # start the same streams again
                for d in range(draws):
                    states[d] = stream_key(seed, epoch, index, np.uint64(d))
        if not done:
            tempered_pass(
                rbase, rcheck, rvalue, scores, alpha, buf, lo, hi, values, rel, mask, draws, states, bp, terms,
                mids, mstarts,
            )
    for d in range(draws):  # (Viterbi with several draws: alpha = inf, each the best path)
        count = backtrack(bp[0 if alpha == VITERBI else d], lengths, hi - lo, out, cursor)
        if count < 0:
            return STATUS_BAD_PATH
        cursor += count
        offsets[offset_at + d] = cursor
    return cursor


@njit(cache=True, nogil=True)
def viterbi_items(rtrie, scores, lengths, buf, starts, ends, out, offsets):
    """The Viterbi path of every item, as ``encode_items`` writes them, computed in the
    arithmetic of ``scores``' dtype: with float32 scores every path score is rounded to
    float32 after each piece, as SentencePiece's encoder accumulates them, so that ties
    and near ties split as they do there (``viterbi_pass`` is the same code; Numba
    compiles it for each dtype).  Returns 0, or -1 - t if item t has no path.
    """
    max_len = max(1, rtrie.max_len)
    n_items = starts.shape[0]
    ring = ring_size(max_len)
    best = np.empty(ring, scores.dtype)
    bp = np.empty(longest_item(starts, ends, 0, n_items) + 1, np.int32)
    mids, mstarts = match_buffers(max_len)
    cursor = 0
    offsets[0] = 0
    for t in range(n_items):
        viterbi_pass(rtrie.base, rtrie.check, rtrie.value, scores, buf, starts[t], ends[t], best, ring - 1, bp,
                     mids, mstarts)
        count = backtrack(bp, lengths, ends[t] - starts[t], out, cursor)
        if count < 0:
            return -1 - t
        cursor += count
        offsets[t + 1] = cursor
    return 0


@njit(cache=True, nogil=True)
def alternative_items(rtrie, scores, buf, starts, ends, out, first, last):
    """For each item t of [first, last), a piece's own bytes: the score of its best
    segmentation that is not the piece itself, into ``out[t]`` (-inf for one byte).

    Viterbi over the item settles every position; the last position is then taken
    again without the edge from 0 (the whole item, the only edge spanning it).  The
    trainer prices a piece's removal by this score (``train/prune.py``).
    """
    rbase, rcheck, rvalue, max_len = rtrie.base, rtrie.check, rtrie.value, max(1, rtrie.max_len)
    n_max = longest_item(starts, ends, first, last)
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
def log_partition_items(rtrie, scores, alpha, buf, starts, ends, out, out_best, out_rel, first, last):
    """log Z_alpha of items [first, last) into ``out`` (``tempered_pass``: exact to
    rounding at every alpha; -inf or inf only where log Z itself is beyond a double), and
    its two parts: the Viterbi score into ``out_best`` and the mass relative to the best
    path into ``out_rel`` (log Z = alpha best + rel)."""
    rbase, rcheck, rvalue, max_len = rtrie.base, rtrie.check, rtrie.value, max(1, rtrie.max_len)
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


@njit(cache=True, nogil=True)
def count_edges_items(rtrie, buf, starts, ends, out, first, last):
    """The number of lattice edges of items [first, last), by the same enumeration every
    pass uses (the bare trie walk: the floor no pass can beat, and a check in tests)."""
    rbase, rcheck, rvalue, max_len = rtrie.base, rtrie.check, rtrie.value, max(1, rtrie.max_len)
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
