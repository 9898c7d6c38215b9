"""Counting the frequent byte substrings of a corpus, level by level.

A substring can occur ``min_count`` times only if both its prefix and its suffix one byte
shorter do (the Apriori property), so level l+1 only looks at positions where the
substring of length l starting there, and the one starting one byte later, were frequent.
Positions die out quickly as l grows, so the whole count costs a few passes over the
corpus however long ``max_len`` is.  Substrings are identified by a 64-bit polynomial
hash (a collision would merge two counts; at a million keys its chance is about 1e-7);
each keeps the position of one occurrence so its bytes can be read back.

Not here: choosing seeds among the counts (``train/trainer.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_MULT = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


@njit(cache=True, nogil=True)
def _mix(h):
    h = (h ^ (h >> _S33)) * _MIX1
    h = (h ^ (h >> _S33)) * _MIX2
    return (h ^ (h >> _S33)) | np.uint64(1)  # never 0: 0 marks an empty slot


@njit(cache=True, nogil=True)
def count_substrings(buf, starts, ends, weights, max_len, min_count):
    """Weighted counts of every substring of 2..max_len bytes occurring >= min_count times.

    ``buf[starts[u]:ends[u]]`` is unit u (a line or a pre-token) with weight
    ``weights[u]`` (its count); substrings never cross units.  Returns arrays
    (position of one occurrence, length, count) and the 256 single-byte counts.
    """
    n = buf.shape[0]
    unit_end = np.empty(n, np.int64)
    for u in range(starts.shape[0]):
        for i in range(starts[u], ends[u]):
            unit_end[i] = ends[u]
    weight_at = np.empty(n, np.float64)
    for u in range(starts.shape[0]):
        for i in range(starts[u], ends[u]):
            weight_at[i] = weights[u]
    byte_counts = np.zeros(256, np.float64)
    for u in range(starts.shape[0]):
        for i in range(starts[u], ends[u]):
            byte_counts[buf[i]] += weights[u]
    # Positions whose substring of the current length is frequent, and its hash.
    alive = np.empty(n, np.int64)
    n_alive = 0
    rolling = np.empty(n, np.uint64)
    for u in range(starts.shape[0]):
        for i in range(starts[u], ends[u]):
            if byte_counts[buf[i]] >= min_count:
                alive[n_alive] = i
                n_alive += 1
                rolling[i] = np.uint64(buf[i]) + np.uint64(1)
    cand = np.empty(n, np.int64)
    is_alive = np.zeros(n + 1, np.bool_)
    for a in range(n_alive):
        is_alive[alive[a]] = True
    out_pos = np.empty(1024, np.int64)
    out_len = np.empty(1024, np.int64)
    out_count = np.empty(1024, np.float64)
    n_out = 0
    length = 1
    while length < max_len and n_alive > 0:
        length += 1
        # Candidates: frequent prefix (alive at i) and frequent suffix (alive at i + 1).
        n_cand = 0
        for a in range(n_alive):
            i = alive[a]
            if i + length <= unit_end[i] and is_alive[i + 1]:
                cand[n_cand] = i
                n_cand += 1
        for a in range(n_alive):
            is_alive[alive[a]] = False
        # A hash table sized to the distinct substrings seen, doubled as it fills.
        cap = 1 << 12
        keys = np.zeros(cap, np.uint64)
        counts = np.zeros(cap, np.float64)
        first = np.empty(cap, np.int64)
        n_keys = 0
        for a in range(n_cand):
            i = cand[a]
            h = rolling[i] * _MULT + np.uint64(buf[i + length - 1]) + np.uint64(1)
            rolling[i] = h
            if 2 * n_keys >= cap:
                keys, counts, first = _rehash(keys, counts, first, 2 * cap)
                cap *= 2
            s = _slot(keys, _mix(h), cap - 1)
            if keys[s] == 0:
                keys[s] = _mix(h)
                first[s] = i
                n_keys += 1
            counts[s] += weight_at[i]
        # The survivors: frequent substrings of this length.
        n_next = 0
        for a in range(n_cand):
            i = cand[a]
            s = _slot(keys, _mix(rolling[i]), cap - 1)
            if counts[s] >= min_count:
                alive[n_next] = i
                n_next += 1
                is_alive[i] = True
                if first[s] == i:  # report each substring once, at its first occurrence
                    if n_out == out_pos.shape[0]:
                        out_pos = _grow(out_pos)
                        out_len = _grow(out_len)
                        out_count = _grow(out_count)
                    out_pos[n_out] = i
                    out_len[n_out] = length
                    out_count[n_out] = counts[s]
                    n_out += 1
        n_alive = n_next
    return out_pos[:n_out], out_len[:n_out], out_count[:n_out], byte_counts


@njit(cache=True, nogil=True)
def _slot(keys, key, mask):
    """The slot holding ``key``, or the empty slot where it belongs (linear probing)."""
    s = np.int64(key & np.uint64(mask))
    while keys[s] != 0 and keys[s] != key:
        s = (s + 1) & mask
    return s


@njit(cache=True, nogil=True)
def _rehash(keys, counts, first, cap):
    new_keys = np.zeros(cap, np.uint64)
    new_counts = np.zeros(cap, np.float64)
    new_first = np.empty(cap, np.int64)
    for s in range(keys.shape[0]):
        if keys[s] != 0:
            t = _slot(new_keys, keys[s], cap - 1)
            new_keys[t] = keys[s]
            new_counts[t] = counts[s]
            new_first[t] = first[s]
    return new_keys, new_counts, new_first


@njit(cache=True)
def _grow(arr):
    out = np.empty(2 * arr.shape[0], arr.dtype)
    out[: arr.shape[0]] = arr
    return out
