"""A double-array trie over piece bytes, and the one function that walks it.

The trie is three int32 arrays (ALGORITHMS.md section 1):

* ``base[s]``: children of state ``s`` live at ``base[s] + byte``;
* ``check[t]``: the parent state of ``t``, or -1 where ``t`` is free;
* ``value[t]``: the piece id spelled by the path to ``t``, or -1.

The root is state 0.  Arrays are padded so that ``base[s] + 255`` is always in range,
so the walk needs no bounds test besides ``check``.  ``value[0]``, the root's (never a
piece), is ``WHOLE_CHARACTERS`` when every multi-byte piece is valid UTF-8: then no piece
but a single byte can start inside a character, or end where no character ends, and the
walk stops after one byte there (two of every three positions of CJK text; the passes
that read positions in order skip even that step, with ``single_byte_piece``).

``prefix_matches`` is the walk every lattice pass enumerates its edges with.  Viterbi and
the sampler, the two hottest passes, use fused copies of the backward walk that do their
one line of per-edge work during it (``best_suffix_match``, ``suffix_mass_terms``; each
is tested against ``prefix_matches`` followed by the plain loop).  All three take their
steps with ``child``.  The two fused loops stay two: one walk with a flag choosing the
per-edge work measured 3-6% slower on both passes (interleaved runs, ja and
en_python_docs), and the loops with their work in ``lattice/forward.py`` about 10% slower.
Only this module knows the layout.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from numba import njit

from .utf8 import character_boundary, utf8_valid


WHOLE_CHARACTERS = -2  # value[0] when every multi-byte piece is valid UTF-8


class Trie(NamedTuple):
    base: np.ndarray
    check: np.ndarray
    value: np.ndarray
    max_len: int

    def without(self, dead: np.ndarray) -> "Trie":
        """The same trie with the pieces whose ``dead[id]`` is True no longer found
        (their states stay, as inner states; ``dead`` is indexed by id)."""
        value = self.value.copy()
        hit = value >= 0
        value[hit] = np.where(dead[value[hit]], -1, value[hit])
        return Trie(self.base, self.check, value, self.max_len)


@njit(cache=True, nogil=True, _nrt=False)
def child(base, check, state, byte):
    """The state reached from ``state`` by ``byte``, or -1: the one step every walk takes
    (the arrays' padding keeps ``base[state] + byte`` in range)."""
    t = base[state] + byte
    return t if check[t] == state else -1


# _nrt=False: this function allocates nothing, and without Numba's reference counting a
# call passes its arrays for free.  With it, the atomic increments and decrements of the
# five array arguments cost 5x the walk itself (measured: 7 vs 40 MB/s for a bare walk).
@njit(cache=True, nogil=True, _nrt=False)
def prefix_matches(base, check, value, text, start, stop, step, out_ids, out_at, out_ends):
    """Write every piece spelled by ``text[start], text[start + step], ...``; return how many.

    ``step`` is +1 (pieces starting at ``start``, ``stop`` the end of the text) or -1 with
    the trie of reversed pieces (pieces ending at ``start + 1``, ``stop`` = first byte - 1).
    Matches come shortest first as ``(out_ids[out_at + m], out_ends[m])``, ``out_ends`` the
    absolute offset of the far end: the piece is ``text[start:out_ends[m]]`` going forward
    and ``text[out_ends[m]:start + 1]`` going backward.  ``out_at`` lets a caller collect
    the ids of many positions in one array.  The buffers must have room for ``max_len``
    entries (the pieces found differ in length).  O(length of the longest match).
    """
    if value[0] == WHOLE_CHARACTERS and not character_boundary(text, start, stop, step):
        stop = start + step  # only the single byte
    state = 0
    count = 0
    past = 1 if step > 0 else 0
    for j in range(start, stop, step):
        t = child(base, check, state, text[j])
        if t < 0:
            break
        state = t
        v = value[t]
        if v >= 0:
            out_ids[out_at + count] = v
            out_ends[count] = j + past
            count += 1
    return count


@njit(cache=True, nogil=True, _nrt=False)
def best_suffix_match(base, check, value, text, start, stop, scores, best, offset, mask):
    """Viterbi's step, fused with the backward walk of ``prefix_matches`` (the trie of
    reversed pieces, step -1): over the pieces ending at ``start + 1``, the largest
    ``best[(piece start - offset) & mask] + scores[id]`` (``mask``: see
    ``lattice.viterbi_pass``), later (longer) pieces winning exact ties;
    returns (that score, its id).  The same as ``prefix_matches`` then a loop over its
    matches, without writing them out (tested against that).  Unlike that walk it
    leaves the ``WHOLE_CHARACTERS`` early stop to its caller, which passes
    ``single_byte_piece`` where no character ends (``utf8.character_end_step``)."""
    state = 0
    top = -np.inf
    arg = -1
    for j in range(start, stop, -1):
        t = child(base, check, state, text[j])
        if t < 0:
            break
        state = t
        v = value[t]
        if v >= 0:
            sc = best[(j - offset) & mask] + scores[v]
            if sc >= top:
                top = sc
                arg = v
    return top, arg


@njit(cache=True, nogil=True, _nrt=False)
def suffix_mass_terms(base, check, value, text, start, stop, weights, mass, offset, mask, out_ids, out_terms):
    """The linear sampler's step, fused with the backward walk of ``prefix_matches``: for
    the pieces ending at ``start + 1`` (shortest first) their ids, and the running sums of
    ``mass[(piece start - offset) & mask] * weights[id]`` into ``out_terms``; returns (how
    many, the total).  The same as ``prefix_matches`` then a loop (tested against that);
    the early stop is its caller's, as in ``best_suffix_match``."""
    state = 0
    count = 0
    total = 0.0
    for j in range(start, stop, -1):
        t = child(base, check, state, text[j])
        if t < 0:
            break
        state = t
        v = value[t]
        if v >= 0:
            total += mass[(j - offset) & mask] * weights[v]
            out_ids[count] = v
            out_terms[count] = total
            count += 1
    return count, total


@njit(cache=True, nogil=True, _nrt=False)
def single_byte_piece(base, check, value, b):
    """The id of the one-byte piece ``b``, or -1: the whole walk where no character ends
    (the passes take this shortcut there instead of a walk of one step)."""
    t = child(base, check, 0, b)
    return value[t] if t >= 0 else -1


@njit(cache=True)
def _grow(arr, size, fill):
    out = np.full(size, fill, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


# Placing a node's children scans the free cells in order for a base where they all fit.
# The old build scanned every cell from the first free one for every node, breadth
# first: quadratic (the reversed trie of 200k numbered pieces, "zq1" ... "zq200000",
# took 148 s, every digit node walking past the same holes that only a single child
# fits).  Now the scan follows a list of the free cells, the nodes are placed depth first
# (the holes a node's children leave are filled by its own descendants, which come
# next), and two bounds keep even an adversarial build linear: a cell that _MAX_FAILS
# nodes tried in vain leaves the list (it stays empty), and a node tries at most
# _MAX_TRIES cells, then goes past the last used cell.  On the shipped model, 200k
# numbered pieces and 1M random ones, under 0.5% of the cells stay empty and the bounds
# never act (benchmarks/bench_trie_build.py); the tests lower them to exercise them.
_MAX_FAILS = 255  # at most 255: the counters are uint8
_MAX_TRIES = 1024


@njit(cache=True)
def _linked_trie(data, offsets, ids):
    """The trie as linked lists, from pieces in lexicographic byte order: per node its
    first child, next sibling, byte label and piece id (or -1); returns those and the
    node count.  Node 0 is the root; siblings come in increasing byte order."""
    n_pieces = offsets.shape[0] - 1
    cap = data.shape[0] + 1
    # In sorted order a node's child with a given byte, if it exists, is always the child
    # added last, so insertion needs no search.
    # int32 throughout: half the memory traffic of int64 (a trie has < 2**31 cells).
    first_child = np.full(cap, -1, np.int32)
    last_child = np.full(cap, -1, np.int32)
    next_sibling = np.full(cap, -1, np.int32)
    label = np.zeros(cap, np.int32)
    node_value = np.full(cap, -1, np.int32)
    n_nodes = 1
    for p in range(n_pieces):
        node = 0
        for k in range(offsets[p], offsets[p + 1]):
            c = data[k]
            child = last_child[node]
            if child != -1 and label[child] == c:
                node = child
                continue
            child = n_nodes
            n_nodes += 1
            label[child] = c
            if last_child[node] == -1:
                first_child[node] = child
            else:
                next_sibling[last_child[node]] = child
            last_child[node] = child
            node = child
        node_value[node] = ids[p]
    return first_child, next_sibling, label, node_value, n_nodes


@njit(cache=True)
def _children_fit(check, label, next_sibling, first, b):
    """Are the cells ``b + label`` of all the children from ``first`` on free?"""
    ch = first
    while ch != -1:
        if check[b + label[ch]] != -1:
            return False
        ch = next_sibling[ch]
    return True


@njit(cache=True)
def _build(data, offsets, ids, max_fails, max_tries, alphabet):
    """Double-array from pieces given in lexicographic order (see ``build_trie``), over
    labels in [0, ``alphabet``), with the placement bounds ``_MAX_FAILS`` and
    ``_MAX_TRIES``."""
    first_child, next_sibling, label, node_value, n_nodes = _linked_trie(data, offsets, ids)

    # Place states depth first: each node's children go to the first free cell (as the
    # cell of its lowest child byte) where the cells of all its child bytes are free,
    # within the bounds, else just past the last used cell ``top``.
    size = n_nodes + 1024
    base = np.zeros(size, np.int32)
    check = np.full(size, -1, np.int32)
    value = np.full(size, -1, np.int32)
    check[0] = -2  # the root's own cell is taken
    # The free cells below ``top`` in increasing order, as a linked list (``next_free``,
    # -1 ends it); every cell past ``top`` is free.  A listed cell that another node's
    # child takes stays listed until a search passes it and drops it.
    next_free = np.full(size, -1, np.int32)
    fails = np.zeros(size, np.uint8)  # per listed cell: how many nodes it did not fit
    free_head = -1
    free_tail = -1
    top = 0
    # The nodes placed (their state known) whose children are not: a stack.
    pending_node = np.empty(n_nodes, np.int32)
    pending_state = np.empty(n_nodes, np.int32)
    pending_node[0] = 0
    pending_state[0] = 0
    n_pending = 1
    while n_pending > 0:
        n_pending -= 1
        node = pending_node[n_pending]
        state = pending_state[n_pending]
        c0 = first_child[node]
        if c0 == -1:
            continue
        if top + 2 * alphabet + 2 > size:  # a base is at most top + 1, its cells below top + 1 + alphabet
            size = max(2 * size, top + 2 * alphabet + 2)
            base = _grow(base, size, 0)
            check = _grow(check, size, -1)
            value = _grow(value, size, -1)
            next_free = _grow(next_free, size, -1)
            fails = _grow(fails, size, 0)
        lowest = label[c0]
        b = -1
        prev = -1
        cell = free_head
        tries = 0
        while cell != -1 and tries < max_tries:
            after = next_free[cell]
            drop = check[cell] != -1  # taken since it was listed
            if not drop:
                if cell >= lowest and _children_fit(check, label, next_sibling, c0, cell - lowest):
                    b = cell - lowest
                    drop = True
                else:
                    tries += 1
                    fails[cell] += 1
                    drop = fails[cell] >= max_fails
            if drop:
                if prev == -1:
                    free_head = after
                else:
                    next_free[prev] = after
                if cell == free_tail:
                    free_tail = prev
            else:
                prev = cell
            if b >= 0:
                break
            cell = after
        if b < 0:
            b = max(0, top + 1 - lowest)
        base[state] = b
        old_top = top
        ch = c0
        while ch != -1:
            t = b + label[ch]
            check[t] = state
            value[t] = node_value[ch]
            if t > top:
                top = t
            pending_node[n_pending] = ch
            pending_state[n_pending] = t
            n_pending += 1
            ch = next_sibling[ch]
        # The cells this node stepped over past the old top are holes for later nodes.
        for c in range(old_top + 1, top):
            if check[c] == -1:
                next_free[c] = -1
                if free_tail == -1:
                    free_head = c
                else:
                    next_free[free_tail] = c
                free_tail = c
    check[0] = -1  # no state has the root as a child cell; -1 never equals a state
    final = top + 1 + alphabet
    return base[:final].copy(), check[:final].copy(), value[:final].copy()


def build_trie(pieces: Sequence[bytes], ids: Sequence[int], reverse: bool = False) -> Trie:
    """Build the trie of ``pieces`` (non-empty, distinct byte strings), each spelled
    backward with ``reverse``, mapping to ``ids``.

    >>> t = build_trie([b"a", b"ab"], [5, 7])
    >>> ids, ends = np.zeros(2, np.int32), np.zeros(2, np.int64)
    >>> text = np.frombuffer(b"abc", np.uint8)
    >>> k = prefix_matches(t.base, t.check, t.value, text, 0, 3, 1, ids, 0, ends)
    >>> ids[:k].tolist(), ends[:k].tolist()
    ([5, 7], [1, 2])
    """
    lengths = np.fromiter(map(len, pieces), np.int64, len(pieces))
    data = np.frombuffer(b"".join(pieces), np.uint8)
    return build_trie_packed(data, lengths, np.asarray(ids, np.int64), reverse)


def build_trie_packed(data: np.ndarray, lengths: np.ndarray, ids: np.ndarray, reverse: bool = False) -> Trie:
    """``build_trie`` of the pieces stored back to back in the uint8 array ``data``, with
    the given ``lengths``."""
    n = len(lengths)
    max_len = int(lengths.max()) if n else 0
    # Each piece as one row of a NUL-padded table (reversed in place with ``reverse``),
    # sorted by NumPy as fixed-width strings: that ties a piece with the same piece plus
    # trailing NULs, and either order of those builds the same trie.
    width = max(1, max_len)
    lengths = np.asarray(lengths, np.int64)
    table = _padded_rows(data, lengths, width, reverse)
    order = np.argsort(table.view(f"S{width}").ravel(), kind="stable")
    sorted_data, offsets = _rows_in_order(table, lengths, order)
    base, check, value = _build(sorted_data, offsets, ids[order], _MAX_FAILS, _MAX_TRIES, 256)
    if _whole_characters(sorted_data, offsets, reverse):
        value[0] = WHOLE_CHARACTERS
    return Trie(base, check, value, max_len)


def build_symbol_trie(data: np.ndarray, lengths: np.ndarray, ids: np.ndarray, alphabet: int,
                      reverse: bool = False) -> Trie:
    """``build_trie_packed`` over symbols rather than bytes: ``data`` int32 symbols in
    [1, ``alphabet``) (0 pads the sort), the walks then take ``alphabet`` steps from a
    state.  A lattice over characters (``sentencepiece_lattice``) walks one step per
    character where the byte trie takes up to four."""
    data = np.asarray(data, np.int32)
    lengths = np.asarray(lengths, np.int64)
    if len(data) and not (0 < int(data.min()) and int(data.max()) < alphabet):
        raise ValueError(f"symbols must lie in [1, {alphabet})")
    max_len = int(lengths.max()) if len(lengths) else 0
    table = _padded_rows(data, lengths, max(1, max_len), reverse)
    order = np.lexsort(table.T[::-1])  # by the first symbol, then the next, ...
    sorted_data, offsets = _rows_in_order(table, lengths, order)
    base, check, value = _build(sorted_data, offsets, np.asarray(ids, np.int64)[order], _MAX_FAILS, _MAX_TRIES,
                                alphabet)
    return Trie(base, check, value, max_len)


@njit(cache=True)
def _padded_rows(data, lengths, width, reverse):
    """The pieces stored back to back in ``data`` as the rows of a NUL-padded table,
    each reversed with ``reverse``."""
    table = np.zeros((lengths.shape[0], width), data.dtype)
    at = 0
    for i in range(lengths.shape[0]):
        n = lengths[i]
        for k in range(n):
            table[i, n - 1 - k if reverse else k] = data[at + k]
        at += n
    return table


@njit(cache=True)
def _rows_in_order(table, lengths, order):
    """The rows ``order[0], order[1], ...`` of ``_padded_rows``'s table, unpadded and back
    to back, with the offsets where each starts (and one past the last)."""
    offsets = np.zeros(order.shape[0] + 1, np.int64)
    for p in range(order.shape[0]):
        offsets[p + 1] = offsets[p] + lengths[order[p]]
    out = np.empty(offsets[-1], table.dtype)
    for p in range(order.shape[0]):
        row = order[p]
        for k in range(lengths[row]):
            out[offsets[p] + k] = table[row, k]
    return out, offsets


@njit(cache=True, nogil=True)
def _whole_characters(data, offsets, reverse):
    """Is every piece of two or more bytes valid UTF-8 (``reverse``: the pieces are stored
    reversed, so each is read backward)?"""
    scratch = np.empty(data.shape[0] if reverse else 0, np.uint8)
    for p in range(offsets.shape[0] - 1):
        lo = offsets[p]
        hi = offsets[p + 1]
        if hi - lo < 2:
            continue
        if reverse:
            for t in range(hi - lo):
                scratch[lo + t] = data[hi - 1 - t]
            if not utf8_valid(scratch, lo, hi):
                return False
        elif not utf8_valid(data, lo, hi):
            return False
    return True
