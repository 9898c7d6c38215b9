"""SentencePiece's precompiled character map: the NFKC-like rewrite rules a ``.model`` file
carries in ``NormalizerSpec.precompiled_charsmap``, read and applied byte for byte.

The blob is laid out as SentencePiece writes it::

    uint32 little-endian   size of the double array, in bytes (a multiple of 4)
    uint32[size / 4]       the double array (darts-clone units), little-endian
    bytes                  the replacement pool: NUL-terminated strings, back to back

The double array maps a key (a byte string, usually one character or a short sequence)
to an offset in the pool; the replacement is the string that starts there, up to its NUL
(an empty one deletes the key).  A darts-clone unit packs, in 32 bits:

* bit 31: the unit is a leaf; its low 31 bits are then a value (here, a pool offset);
* bits 0-7: the label, the byte that leads to the unit (read with bit 31, so that a leaf
  never matches a byte);
* bit 8: the unit has a leaf child, at its children's base (the child labelled 0);
* bits 10-31, shifted left by 8 more when bit 9 is set: the offset from the unit's index
  to its children's base (the index is XORed with it, and then with each byte).

``map_step`` is one step of the map as ``normalizer.cc``'s ``NormalizePrefix`` takes it
(user-defined symbols aside, which the normalizer matches first): the longest key the text
starts with is replaced; where none matches, one UTF-8 character passes unchanged; a byte
that does not start a valid character becomes U+FFFD and only that byte is consumed.

``CharsMap.parse`` checks a blob completely before any kernel walks it: the sizes, every
index a walk can reach, and every pool offset it can read (bytes that would make
SentencePiece read out of bounds raise ``ValueError`` here).  An empty blob is a map
without rules (SentencePiece's ``identity``).  What this module leaves out: building a map
from rules, and the whitespace handling, which is the normalizer's (``normalize.py``).
"""

from __future__ import annotations

import struct

import numpy as np
from numba import njit

from .utf8 import utf8_valid

_LEAF = 1 << 31
_LABEL_BITS = _LEAF | 0xFF
_HAS_LEAF = 1 << 8
# U+FFFD, which stands for a byte that starts no valid character.  It is appended to the
# pool (after a NUL of its own), so that every step's output is a slice of the text or of
# the pool.
REPLACEMENT_CHARACTER = "\ufffd".encode("utf-8")


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _children(unit):
    """The offset from a unit's index to its children's base."""
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def longest_match(units, text, pos, end):
    """(length, pool offset) of the longest key of the map that ``text[pos:end]`` starts
    with, or (0, 0) when there is none.

    ``units``: int64 array of the double array (validated by ``CharsMap.parse``, so every
    index read here is in range).  This is darts-clone's common prefix search, keeping the
    last (longest) of the keys it passes, as SentencePiece does.  O(length of the match).
    """
    if units.shape[0] == 0:
        return 0, 0
    node = _children(units[0])
    length = 0
    value = 0
    for i in range(pos, end):
        b = text[i]
        node ^= b
        unit = units[node]
        if (unit & _LABEL_BITS) != b:
            break
        node ^= _children(unit)
        if unit & _HAS_LEAF:
            length = i + 1 - pos
            value = units[node] & (_LEAF - 1)
    return length, value


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def character_length(text, pos, end):
    """The length of the valid UTF-8 character at ``text[pos]``, or 0 if none starts there
    (SentencePiece's ``IsValidDecodeUTF8``: the strict rules, no overlong forms, surrogates
    or values past U+10FFFF; a text that ends inside a character has none there)."""
    b = text[pos]
    if b < 0x80:
        return 1
    if 0xC2 <= b <= 0xDF:
        n = 2
    elif 0xE0 <= b <= 0xEF:
        n = 3
    elif 0xF0 <= b <= 0xF4:
        n = 4
    else:
        return 0
    if pos + n > end or not utf8_valid(text, pos, pos + n):
        return 0
    return n


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def map_step(units, pool, replacement_at, text, pos, end):
    """One step of the map at ``text[pos]`` (``pos < end``).

    Returns (from_pool, start, length, consumed): the output is ``pool[start:start +
    length]`` when ``from_pool``, else ``text[start:start + length]``, and it replaces
    ``text[pos:pos + consumed]`` (``consumed >= 1``).  ``replacement_at`` is where U+FFFD
    is in ``pool`` (``CharsMap.replacement_at``).
    """
    length, value = longest_match(units, text, pos, end)
    if length > 0:
        stop = value
        while pool[stop] != 0:  # the parse checked that a NUL follows every value
            stop += 1
        return True, value, stop - value, length
    n = character_length(text, pos, end)
    if n > 0:
        return False, pos, n, n
    return True, replacement_at, 3, 1


class CharsMap:
    """A parsed and validated ``precompiled_charsmap``.

    Attributes
    ----------
    blob : bytes
        The map as stored in the ``.model`` file (what ``to_json`` keeps).
    units : np.ndarray, int64, shape (number of units,)
        The double array; empty for a map without rules.
    pool : np.ndarray, uint8
        The replacement strings, then a NUL, U+FFFD and a NUL.
    replacement_at : int
        The offset of U+FFFD in ``pool``.
    ascii_key_starts : bytes
        The first bytes of the keys made of ASCII bytes only: an ASCII text without any
        of them passes the map unchanged (the only keys it can match are ASCII keys).
    max_expansion : int
        The most bytes a step writes per byte it consumes: the longest replacement, or 3
        (U+FFFD for one byte).
    """

    __slots__ = ("blob", "units", "pool", "replacement_at", "ascii_key_starts", "max_expansion")

    def __init__(self, blob: bytes, units: np.ndarray, pool: bytes) -> None:
        self.blob = blob
        self.units = units
        self.replacement_at = len(pool) + 1
        self.pool = np.frombuffer(pool + b"\0" + REPLACEMENT_CHARACTER + b"\0", np.uint8)
        self.ascii_key_starts = _ascii_key_starts(units)
        self.max_expansion = max(len(REPLACEMENT_CHARACTER), *map(len, pool.split(b"\0")))

    @classmethod
    def parse(cls, blob: bytes) -> "CharsMap":
        """Read and check a ``precompiled_charsmap``; ``ValueError`` says what is wrong.

        >>> CharsMap.parse(b"").apply(b"any")
        b'any'
        """
        blob = bytes(blob)
        if not blob:
            return cls(blob, np.zeros(0, np.int64), b"")
        if len(blob) <= 4:
            raise ValueError(
                f"precompiled_charsmap is {len(blob)} bytes long; a map needs a 4-byte size "
                "and a double array after it"
            )
        (size,) = struct.unpack_from("<I", blob)
        if size == 0 or size % 4 or size > len(blob) - 4:
            raise ValueError(
                f"precompiled_charsmap declares a double array of {size} bytes, but it must "
                f"be a positive multiple of 4 that fits in the {len(blob) - 4} bytes after "
                "the size (truncated or not a charsmap?)"
            )
        units = np.frombuffer(blob, "<u4", size // 4, 4).astype(np.int64)
        pool = blob[4 + size :]
        _check_units(units, pool)
        return cls(blob, units, pool)

    def apply(self, data: bytes) -> bytes:
        """The map alone applied to ``data`` (no whitespace rules), step after step.

        >>> CharsMap.parse(b"").apply(b"a\\xffb")  # a byte that starts no character
        b'a\\xef\\xbf\\xbdb'
        """
        text = np.frombuffer(data, np.uint8)
        pool = self.pool.tobytes()
        out, pos = [], 0
        while pos < len(data):
            from_pool, start, length, consumed = map_step(
                self.units, self.pool, self.replacement_at, text, pos, len(data))
            out.append((pool if from_pool else data)[start : start + length])
            pos += consumed
        return b"".join(out)

    def __len__(self) -> int:
        """The number of units of the double array (0 for a map without rules)."""
        return len(self.units)


def _check_units(units: np.ndarray, pool: bytes) -> None:
    """Raise ``ValueError`` unless every walk of ``longest_match`` stays in range.

    A walk reads ``units[base ^ b]`` for a base and any byte ``b``, so each base must have
    its whole block of 256 units in range: the root's, and that of every unit a byte can
    match, which is a unit without bit 31 (a leaf's label never equals a byte).  Such a
    unit with a leaf child gives the pool offset that the child holds, which must start a
    NUL-terminated string inside the pool.  The test takes every such unit, reachable or
    not (it does not walk the trie); the maps SentencePiece builds pass it (the unused
    units of a darts-clone array have offset 0, inside whole blocks).
    """
    n = len(units)
    matchable = (units & _LEAF) == 0
    base = np.arange(n, dtype=np.int64) ^ _children_of(units)
    root_base = int(base[0])
    if (root_base | 0xFF) >= n:
        raise ValueError(
            f"precompiled_charsmap is malformed: its root points to units {root_base & ~0xFF}"
            f"-{root_base | 0xFF}, past the {n} units of the double array"
        )
    bad = np.flatnonzero(matchable & ((base | 0xFF) >= n))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"precompiled_charsmap is malformed: unit {i} points to units "
            f"{int(base[i]) & ~0xFF}-{int(base[i]) | 0xFF}, past the {n} units of the "
            "double array"
        )
    with_leaf = np.flatnonzero(matchable & ((units & _HAS_LEAF) != 0))
    values = units[base[with_leaf]] & (_LEAF - 1)
    last_nul = pool.rfind(b"\0")
    bad = np.flatnonzero(values > last_nul)
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"precompiled_charsmap is malformed: the key ending at unit {int(with_leaf[i])} "
            f"is replaced by the string at pool offset {int(values[i])}, but the pool of "
            f"{len(pool)} bytes has no NUL-terminated string there"
        )


def _ascii_key_starts(units: np.ndarray) -> bytes:
    """The first bytes of the keys spelled with bytes 0x00-0x7F only: a walk of the
    double array along ASCII labels (a few hundred nodes in SentencePiece's maps)."""
    if not len(units):
        return b""
    labels = np.arange(128, dtype=np.int64)
    starts = set()
    # (children's base, the key's first byte); the pairs already seen stop a walk of a
    # malformed array that loops back on itself.
    todo = [(int(_children_of(units[:1])[0]), -1)]
    seen = set(todo)
    while todo:
        base, first = todo.pop()
        index = base ^ labels
        unit = units[index]
        children = index ^ _children_of(unit)
        for b in np.flatnonzero((unit & _LABEL_BITS) == labels).tolist():
            start = b if first < 0 else first
            if unit[b] & _HAS_LEAF:
                starts.add(start)
            if (int(children[b]), start) not in seen:
                seen.add((int(children[b]), start))
                todo.append((int(children[b]), start))
    return bytes(sorted(starts))


def plain_bytes(units: np.ndarray) -> np.ndarray:
    """uint8[256]: 1 for the ASCII bytes that start no key of the map (not a child of the
    double array's root), which a step copies as they are without a walk."""
    plain = np.zeros(256, np.uint8)
    plain[:128] = 1
    if len(units):
        labels = np.arange(128, dtype=np.int64)
        unit = units[int(_children_of(units[:1])[0]) ^ labels]
        plain[:128][(unit & _LABEL_BITS) == labels] = 0
    return plain


def _children_of(units: np.ndarray) -> np.ndarray:
    """``_children`` of every unit at once."""
    return (units >> 10) << ((units & (1 << 9)) >> 6)
