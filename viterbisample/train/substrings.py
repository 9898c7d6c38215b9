"""The right-closed frequent byte substrings of a corpus, from a depth-limited suffix sort.

A substring s is *right-closed* when it cannot be extended on the right without losing
occurrences: its occurrences are not all followed by the same byte (or it has reached the
longest piece length).  Those are the substrings worth seeding a vocabulary with: if
every occurrence of "Pytho" is followed by "n", the piece "Python" serves all of them
and "Pytho" would only compete with it.  They are the internal nodes of the suffix tree
of the units cut at depth ``max_len``, found here without building the tree:

1. every start position is sorted by its window, its next ``max_len`` bytes (packed
   big-endian into uint64 words, zero past the unit's end);
2. the longest common prefix (LCP) of neighbours in that order is read off the words;
3. one stack pass over the LCPs lists every interval of positions that share a prefix of
   depth d, and the weighted size of the interval is the count of that prefix.

Units carry counts (a line seen 40 times is stored once with weight 40), so a substring
inside one heavy unit is frequent without a second position: a position's own window is
reported too when its weight alone reaches ``min_count``.

With ``whole_characters`` it is the tree of UTF-8 characters: positions are character
starts and depths stop at character boundaries, so a substring followed by several
characters that share a lead byte is still seen to branch.

Not here: choosing seeds among the substrings (``train/seeds.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..utf8 import is_continuation


@njit(cache=True, nogil=True)
def _windows(buf, starts, ends, weights, max_len, whole_characters):
    """Per start position: window key words (shape (words, n)), window length, weight,
    position, and whether the window stops inside a character (it is ``max_len`` long,
    its unit goes on, and the next byte continues a character); and the byte counts."""
    n_words = (max_len + 7) // 8
    n = 0
    byte_counts = np.zeros(256, np.float64)
    for u in range(starts.shape[0]):
        for i in range(starts[u], ends[u]):
            byte_counts[buf[i]] += weights[u]
            if not (whole_characters and is_continuation(buf[i])):
                n += 1
    keys = np.zeros((n_words, n), np.uint64)
    length = np.empty(n, np.int64)
    weight = np.empty(n, np.float64)
    pos = np.empty(n, np.int64)
    cut = np.zeros(n, np.bool_)
    k = 0
    for u in range(starts.shape[0]):
        end = ends[u]
        for i in range(starts[u], end):
            if whole_characters and is_continuation(buf[i]):
                continue
            a = min(max_len, end - i)
            for w in range(n_words):
                key = np.uint64(0)
                for b in range(8):
                    t = 8 * w + b
                    key = key << np.uint64(8)
                    if t < a:
                        key |= np.uint64(buf[i + t])
                keys[w, k] = key
            length[k] = a
            weight[k] = weights[u]
            pos[k] = i
            cut[k] = whole_characters and i + a < end and is_continuation(buf[i + a])
            k += 1
    return keys, length, weight, pos, cut, byte_counts


@njit(cache=True, nogil=True)
def _sort_key(keys, length, word, k):
    return keys[word, k] if word < keys.shape[0] else np.uint64(length[k])


@njit(cache=True, nogil=True)
def _move(keys, length, order, dst, src):
    for w in range(keys.shape[0]):
        keys[w, dst] = keys[w, src]
    length[dst] = length[src]
    order[dst] = order[src]


@njit(cache=True, nogil=True)
def _refine(keys, length, order, by_length):
    """Finish sorting windows already sorted by their first word (``keys``, ``length``
    and ``order`` permuted alike, in place): by each further word, then (``by_length``)
    by length, each pass sorting only the runs still equal in every earlier word."""
    n = order.shape[0]
    n_words = keys.shape[0]
    breaks = np.ones(n + 1, np.bool_)  # breaks[k]: windows k-1 and k differ so far
    for k in range(1, n):
        breaks[k] = keys[0, k] != keys[0, k - 1]
    spare_keys = np.empty((n_words, 1), np.uint64)
    spare_length = np.empty(1, np.int64)
    spare_order = np.empty(1, np.int64)
    last = n_words + 1 if by_length else n_words
    for word in range(1, last):
        a = 0
        while a < n:
            b = a + 1
            while not breaks[b]:
                b += 1
            if b - a <= 24:  # insertion sort
                for t in range(a + 1, b):
                    v = _sort_key(keys, length, word, t)
                    for w in range(n_words):
                        spare_keys[w, 0] = keys[w, t]
                    spare_length[0] = length[t]
                    spare_order[0] = order[t]
                    u = t
                    while u > a and _sort_key(keys, length, word, u - 1) > v:
                        _move(keys, length, order, u, u - 1)
                        u -= 1
                    for w in range(n_words):
                        keys[w, u] = spare_keys[w, 0]
                    length[u] = spare_length[0]
                    order[u] = spare_order[0]
            else:
                vals = np.empty(b - a, np.uint64)
                for t in range(b - a):
                    vals[t] = _sort_key(keys, length, word, a + t)
                idx = np.argsort(vals) + a
                run_keys = keys[:, a:b].copy()
                run_length = length[a:b].copy()
                run_order = order[a:b].copy()
                for t in range(b - a):
                    for w in range(n_words):
                        keys[w, a + t] = run_keys[w, idx[t] - a]
                    length[a + t] = run_length[idx[t] - a]
                    order[a + t] = run_order[idx[t] - a]
            a = b
        for k in range(1, n):
            if not breaks[k]:
                breaks[k] = _sort_key(keys, length, word, k) != _sort_key(keys, length, word, k - 1)


@njit(cache=True, nogil=True)
def _byte(keys, k, t):
    """Byte t of window k."""
    return (keys[t // 8, k] >> np.uint64(8 * (7 - t % 8))) & np.uint64(0xFF)


@njit(cache=True, nogil=True)
def _boundary(keys, length, cut, k, t):
    """Does window k have a character boundary after t bytes (t <= its length)?"""
    if t < length[k]:
        return not is_continuation(_byte(keys, k, t))
    return not cut[k]


@njit(cache=True, nogil=True)
def _common_prefix(keys, length, cut, k, whole_characters):
    """Common prefix length of sorted windows k-1 and k (cut back to a character boundary
    of both with ``whole_characters``)."""
    d = 0
    for w in range(keys.shape[0]):
        x = keys[w, k] ^ keys[w, k - 1]
        if x == 0:
            d += 8
            continue
        while (x >> np.uint64(56)) == 0:
            x = x << np.uint64(8)
            d += 1
        break
    d = min(d, length[k], length[k - 1])
    if whole_characters:
        while d > 0 and not (_boundary(keys, length, cut, k, d) and _boundary(keys, length, cut, k - 1, d)):
            d -= 1
    return d


@njit(cache=True, nogil=True)
def _closed_substrings(keys, length, cut, weight, pos, max_len, min_count, whole_characters):
    """``count_substrings`` on windows in sorted order."""
    n = length.shape[0]
    lcp = np.zeros(n + 1, np.int64)  # lcp[k]: windows k-1 and k; 0 at both ends
    for k in range(1, n):
        lcp[k] = _common_prefix(keys, length, cut, k, whole_characters)
    mass = np.zeros(n + 1, np.float64)  # prefix sums of the weights
    for k in range(n):
        mass[k + 1] = mass[k] + weight[k]
    cap = max(16, n // 4)
    out_pos = np.empty(cap, np.int64)
    out_len = np.empty(cap, np.int64)
    out_count = np.empty(cap, np.float64)
    n_out = 0
    # Intervals [left, k) of windows sharing a prefix of depth h: a stack of open ones,
    # with strictly increasing depths (at most max_len + 1 of them).
    stack_depth = np.zeros(max_len + 2, np.int64)
    stack_left = np.zeros(max_len + 2, np.int64)
    top = 0
    for k in range(1, n + 1):
        left = k - 1
        h = lcp[k]
        while stack_depth[top] > h:
            depth = stack_depth[top]
            lb = stack_left[top]
            top -= 1
            c = mass[k] - mass[lb]
            if depth >= 2 and c >= min_count:
                if n_out == cap:
                    cap *= 2
                    out_pos, out_len, out_count = _grown(out_pos, cap), _grown(out_len, cap), _grown(out_count, cap)
                out_pos[n_out] = pos[lb]
                out_len[n_out] = depth
                out_count[n_out] = c
                n_out += 1
            left = lb
        if stack_depth[top] < h:
            top += 1
            stack_depth[top] = h
            stack_left[top] = left
    # A heavy unit's window, where it reaches past both neighbours.
    for k in range(n):
        if weight[k] < min_count:
            continue
        d = length[k]
        if whole_characters:
            while d > 0 and not _boundary(keys, length, cut, k, d):
                d -= 1
        if d >= 2 and d > lcp[k] and d > lcp[k + 1]:
            if n_out == cap:
                cap *= 2
                out_pos, out_len, out_count = _grown(out_pos, cap), _grown(out_len, cap), _grown(out_count, cap)
            out_pos[n_out] = pos[k]
            out_len[n_out] = d
            out_count[n_out] = weight[k]
            n_out += 1
    return out_pos[:n_out], out_len[:n_out], out_count[:n_out]


@njit(cache=True)
def _grown(arr, size):
    out = np.empty(size, arr.dtype)
    out[: arr.shape[0]] = arr
    return out


def count_substrings(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    weights: np.ndarray,
    max_len: int,
    min_count: float,
    whole_characters: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every right-closed substring of 2..``max_len`` bytes with weighted count >= min_count.

    ``buf[starts[u]:ends[u]]`` is unit u (a line or a pre-token) with weight
    ``weights[u]``; substrings never cross units.  Returns arrays (position of one
    occurrence, length, count), deterministic for given input, and the 256 single-byte
    counts.  O(n log n) time and O(n) memory for n bytes.  Raises ``ValueError`` for
    offsets outside ``buf`` or a ``max_len`` outside 1..64 (the kernels check nothing).
    """
    buf = np.ascontiguousarray(buf, np.uint8)
    starts = np.ascontiguousarray(starts, np.int64)
    ends = np.ascontiguousarray(ends, np.int64)
    weights = np.ascontiguousarray(weights, np.float64)
    if not 1 <= int(max_len) <= 64:
        raise ValueError(f"max_len must be in 1..64, got {max_len}")
    if not (starts.shape == ends.shape == weights.shape and starts.ndim == 1):
        raise ValueError("starts, ends and weights must be 1-D arrays of one length")
    if len(starts) and (starts.min() < 0 or ends.max() > len(buf) or np.any(ends < starts)):
        raise ValueError(f"unit offsets must satisfy 0 <= start <= end <= {len(buf)}")
    keys, length, weight, pos, cut, byte_counts = _windows(buf, starts, ends, weights, max_len, whole_characters)
    order = np.argsort(keys[0])  # NumPy's sort is several times faster than Numba's
    keys = np.ascontiguousarray(keys[:, order])
    length = length[order]
    # Windows that end early are zero-padded: only a NUL byte in the text can give two
    # different windows equal words, and only then must the length break the tie.
    _refine(keys, length, order, bool((buf == 0).any()))
    pos_, len_, count_ = _closed_substrings(
        keys, length, cut[order], weight[order], pos[order], max_len, float(min_count), whole_characters
    )
    return pos_, len_, count_, byte_counts

