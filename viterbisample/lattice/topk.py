"""The top k paths of a text's lattice (ALGORITHMS.md section 5): the exact k best
segmentations (``nbest``, a k-best dynamic program) and k samples without replacement
from q_alpha (``sample_distinct``, Gumbel-top-k by a best-first search that expands only
the ancestors of the paths it returns).  Exact for any length of text, unlike an A*
search with a bounded agenda.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .forward import match_buffers
from ..logmath import gumbel, log_edge_probability, truncated_gumbel
from .marginals import forward_values
from ..rng import next_uniform
from ..trie import prefix_matches


@njit(cache=True)
def _grown(arr, size):
    out = np.empty(size, arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@njit(cache=True, nogil=True)
def nbest(rtrie, scores, lengths, text, k):
    """The exact k best segmentations of ``text``, best first: (flat ids, offsets, scores).

    Each position keeps its k best partial paths, sorted; position j merges the sorted
    lists of the sources of its edges, so the lists are exact for any input length
    (O(edges * k) time, O(n * k) memory).  Among equal scores the later, longer last piece
    wins, as in ``viterbi_pass``, so the first path is the Viterbi path.
    """
    rbase, rcheck, rvalue, max_len = rtrie.base, rtrie.check, rtrie.value, max(1, rtrie.max_len)
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
def sample_distinct(rtrie, scores, alpha, lengths, text, k, key):
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
    rbase, rcheck, rvalue, max_len = rtrie.base, rtrie.check, rtrie.value, max(1, rtrie.max_len)
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
