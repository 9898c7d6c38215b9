"""UTF-8, byte by byte, for kernels that must not cut a character: validity of a range,
where characters end (forward in O(1) a byte, or looking back from a position), and
continuation bytes.  Every test of the package's passes and trainer on UTF-8 is here.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def is_continuation(byte):
    """Is ``byte`` a UTF-8 continuation byte (10xxxxxx)?"""
    return (byte & 0xC0) == 0x80


@njit(cache=True, nogil=True)
def utf8_valid(buf, i, end):
    """Is ``buf[i:end]`` well-formed UTF-8 (no overlong forms, surrogates or values past
    U+10FFFF, as Python's strict decoder)?"""
    while i < end:
        b = buf[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            n, lo, hi = 1, 0x80, 0xBF
        elif b == 0xE0:
            n, lo, hi = 2, 0xA0, 0xBF
        elif b == 0xED:
            n, lo, hi = 2, 0x80, 0x9F
        elif 0xE1 <= b <= 0xEF:
            n, lo, hi = 2, 0x80, 0xBF
        elif b == 0xF0:
            n, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= b <= 0xF3:
            n, lo, hi = 3, 0x80, 0xBF
        elif b == 0xF4:
            n, lo, hi = 3, 0x80, 0x8F
        else:
            return False
        if i + n >= end:
            return False
        if not lo <= buf[i + 1] <= hi:
            return False
        for t in range(i + 2, i + n + 1):
            if not 0x80 <= buf[t] <= 0xBF:
                return False
        i += n + 1
    return True


@njit(cache=True, nogil=True, _nrt=False)
def character_end_step(b, pending):
    """One step of reading text forward a byte at a time: does a character end with byte
    ``b``?  ``pending`` is the state between steps, the continuation bytes the open
    character still needs (-1 when none is open; start with -1).  Returns (ends, state).

    A character ends at an ASCII byte, or at the last continuation byte a lead byte
    asked for; a lead byte, a stray continuation byte and 0xC0, 0xC1, 0xF5-0xFF end
    nothing.  This is ``trie.prefix_matches``'s backward boundary test, in O(1) a byte
    for the passes that read every position in order.
    """
    if b < 0x80:
        return True, 0
    if b < 0xC0:
        if pending > 0:
            return pending == 1, pending - 1
        return False, -1
    if 0xC2 <= b <= 0xDF:
        return False, 1
    if 0xE0 <= b <= 0xEF:
        return False, 2
    if 0xF0 <= b <= 0xF4:
        return False, 3
    return False, -1


@njit(cache=True, nogil=True, _nrt=False)
def character_boundary(text, start, stop, step):
    """Going forward, does a character start at ``start``?  Going backward, does one end
    there (its lead byte and all its continuation bytes within the text)?"""
    b = text[start]
    if step > 0 or b < 0x80:
        return (b & 0xC0) != 0x80
    if (b & 0xC0) != 0x80:
        return False  # a lead byte ends nothing
    k = 1
    p = start - 1
    while p > stop and k < 4 and (text[p] & 0xC0) == 0x80:
        k += 1
        p -= 1
    if p <= stop:
        return False
    lead = text[p]
    if 0xC2 <= lead <= 0xDF:
        return k == 1
    if 0xE0 <= lead <= 0xEF:
        return k == 2
    if 0xF0 <= lead <= 0xF4:
        return k == 3
    return False
