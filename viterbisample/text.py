"""Texts to byte buffers: one text, or a batch packed into one buffer; UTF-8 checks.

A ``str`` is encoded as UTF-8 with ``surrogateescape``, so a string made by decoding
arbitrary bytes with ``errors="surrogateescape"`` maps back to exactly those bytes.
A batch becomes one ``uint8`` buffer plus ``int64`` start/end offsets, the form every
batch kernel takes.
"""

from __future__ import annotations

from typing import Iterable, Union

import numpy as np
from numba import njit

Text = Union[str, bytes, bytearray, memoryview]


def to_bytes(text: Text) -> bytes:
    """The bytes a text is tokenized as.

    >>> to_bytes("héllo")
    b'h\\xc3\\xa9llo'
    """
    if isinstance(text, str):
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end]
            raise ValueError(
                f"text contains the lone surrogate {bad!r} at index {exc.start}, which has no "
                "UTF-8 encoding; pass bytes, or decode your input with errors='surrogateescape'"
            ) from None
    if isinstance(text, bytes):
        return text
    if isinstance(text, (bytearray, memoryview)):
        return bytes(text)
    raise TypeError(f"text must be str or bytes, got {type(text).__name__}")


def pack(texts: Iterable[Text]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ``uint8`` buffer and the ``int64`` start and end offset of each text in it."""
    if isinstance(texts, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            "expected a list of texts, got a single text; use encode() for one text"
        )
    encoded = texts if isinstance(texts, list) else list(texts)
    kinds = set(map(type, encoded))
    if kinds <= {str}:
        try:
            # Where strict UTF-8 succeeds it gives the bytes surrogateescape would, and
            # str.encode mapped over the list is the cheapest call per text.
            encoded = list(map(str.encode, encoded))
        except UnicodeEncodeError:
            encoded = [to_bytes(t) for t in encoded]
    elif not kinds <= {bytes}:  # lists of bytes, common in data pipelines, are used as they are
        encoded = [to_bytes(t) for t in encoded]
    joined = b"".join(encoded)
    lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    buf = np.frombuffer(joined, np.uint8)
    if buf.size == 0:
        # Kernels read a pointer to the buffer; keep it read-only like frombuffer's, so
        # every call has the same Numba signature.
        buf = np.frombuffer(b"\0", np.uint8)
    return buf, starts, ends


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
