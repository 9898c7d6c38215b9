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
    return walk_from(units, _children(units[0]), text, pos, pos, end, 0, 0)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def walk_from(units, node, text, start, pos, end, length, value):
    """``longest_match`` of a key that starts at ``text[start]``, its walk already at
    ``node`` (the base of the children) with ``text[start:pos]`` read, where (``length``,
    ``value``) is the longest key found so far."""
    for i in range(pos, end):
        b = text[i]
        node ^= b
        unit = units[node]
        if (unit & _LABEL_BITS) != b:
            break
        node ^= _children(unit)
        if unit & _HAS_LEAF:
            length = i + 1 - start
            value = units[node] & (_LEAF - 1)
    return length, value


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def character_length(text, pos, end):
    """The length of the valid UTF-8 character at ``text[pos]``, or 0 if none starts there
    (SentencePiece's ``IsValidDecodeUTF8``: the strict rules, no overlong forms, surrogates
    or values past U+10FFFF; a text that ends inside a character has none there).

    Written out rather than through ``utf8.utf8_valid``: inlined, it is a few compares,
    where a call costs more than that in every step of the normalizer."""
    b = text[pos]
    if b < 0x80:
        return 1
    if b < 0xC2:
        return 0
    if b < 0xE0:
        return 2 if pos + 1 < end and (text[pos + 1] & 0xC0) == 0x80 else 0
    if b < 0xF0:
        if pos + 2 >= end:
            return 0
        c = text[pos + 1]
        # E0 needs A0-BF (no overlong form), ED 80-9F (no surrogate)
        if c < (0xA0 if b == 0xE0 else 0x80) or c > (0x9F if b == 0xED else 0xBF):
            return 0
        return 3 if (text[pos + 2] & 0xC0) == 0x80 else 0
    if b < 0xF5:
        if pos + 3 >= end:
            return 0
        c = text[pos + 1]
        # F0 needs 90-BF (no overlong form), F4 80-8F (nothing past U+10FFFF)
        if c < (0x90 if b == 0xF0 else 0x80) or c > (0x8F if b == 0xF4 else 0xBF):
            return 0
        return 4 if (text[pos + 2] & 0xC0) == 0x80 and (text[pos + 3] & 0xC0) == 0x80 else 0
    return 0


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


# ``CharsMap.character_steps`` of a character: [where its step goes on from, its value].
COPY = -1  # no key starts with the character: it is its own step, unchanged
WALK = -2  # a key ends inside its bytes (no map SentencePiece builds): take the whole step
REPLACE = -3  # the character is a key and no longer key starts with it: its value replaces it
# (0 or more: the node after its bytes, where a longer key may go on.)  The value is the
# pool offset of its replacement if the character is a key, else -1.


@njit(cache=True, nogil=True)
def _character_table(units):
    """``CharsMap.character_steps`` for U+0080-U+FFFF (the rows of surrogates and of
    U+0000-U+007F are unused).  ``units`` is not empty."""
    steps = np.empty((0x10000, 2), np.int32)
    steps[:, 0] = COPY
    steps[:, 1] = -1
    nodes = steps[:, 0]
    values = steps[:, 1]
    code = np.zeros(3, np.uint8)
    root = _children(units[0])
    for cp in range(0x80, 0x10000):
        if cp < 0x800:
            size = 2
            code[0], code[1] = 0xC0 | (cp >> 6), 0x80 | (cp & 0x3F)
        else:
            size = 3
            code[0], code[1], code[2] = 0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)
        node = root
        whole = True
        inside = False
        for i in range(size):
            b = code[i]
            node ^= b
            unit = units[node]
            if (unit & _LABEL_BITS) != b:
                whole = False
                break
            node ^= _children(unit)
            if unit & _HAS_LEAF:
                if i + 1 < size:
                    inside = True
                else:
                    values[cp] = units[node] & (_LEAF - 1)
        if inside:
            nodes[cp] = WALK
        elif whole:
            # Does a longer key go on from here?  (Label 0 is the leaf: no byte reaches it.)
            more = False
            for b in range(1, 256):
                if (units[node ^ b] & _LABEL_BITS) == b:
                    more = True
                    break
            nodes[cp] = node if more else (REPLACE if values[cp] >= 0 else COPY)
    return steps


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
    key_first_bytes : np.ndarray, uint8, shape (256,)
        1 for each byte some key starts with: a step at any other byte needs no walk (one
        character passes unchanged, or U+FFFD).
    copied_before_ascii : np.ndarray, uint8, shape (256,)
        1 for the ASCII bytes a step copies alone whenever an ASCII byte or the end of the
        text follows: the byte is no key, and the keys that start with it go on with a
        non-ASCII byte (``A`` and a combining accent, say).  In SentencePiece's maps that
        is every letter, so English and code need no walk.
    character_steps : np.ndarray, int32, shape (65536, 2) (no rows without rules)
        For each character of 2 or 3 bytes (by code point), the walk of its own bytes,
        done once (``_character_table``): a step at a character reads its row instead of
        three units of the double array, the dependent loads that are most of its time.
    """

    __slots__ = ("blob", "units", "pool", "replacement_at", "ascii_key_starts", "max_expansion",
                 "key_first_bytes", "copied_before_ascii",
                 "character_steps")

    def __init__(self, blob: bytes, units: np.ndarray, pool: bytes) -> None:
        self.blob = blob
        self.units = units
        self.replacement_at = len(pool) + 1
        self.pool = np.frombuffer(pool + b"\0" + REPLACEMENT_CHARACTER + b"\0", np.uint8)
        self.ascii_key_starts = _ascii_key_starts(units)
        self.max_expansion = max(len(REPLACEMENT_CHARACTER), *map(len, pool.split(b"\0")))
        self.key_first_bytes, self.copied_before_ascii = _first_steps(units)
        self.character_steps = _character_table(units) if len(units) else np.zeros((0, 2), np.int32)

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


def _first_steps(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``CharsMap.key_first_bytes`` and ``CharsMap.copied_before_ascii``: the root's
    children, and for each ASCII one whether it is a key or has an ASCII child."""
    first = np.zeros(256, np.uint8)
    copied = np.zeros(256, np.uint8)
    copied[:128] = 1
    if not len(units):
        return first, copied
    labels = np.arange(256, dtype=np.int64)
    index = int(_children_of(units[:1])[0]) ^ labels
    unit = units[index]
    first[(unit & _LABEL_BITS) == labels] = 1
    ascii_labels = labels[:128]
    for b in np.flatnonzero(first[:128]).tolist():
        children = units[int(index[b] ^ _children_of(unit[b : b + 1])[0]) ^ ascii_labels]
        is_key = bool(unit[b] & _HAS_LEAF)
        copied[b] = not is_key and not ((children & _LABEL_BITS) == ascii_labels).any()
    return first, copied


def _children_of(units: np.ndarray) -> np.ndarray:
    """``_children`` of every unit at once."""
    return (units >> 10) << ((units & (1 << 9)) >> 6)
