"""The normalizer: the first stage every text passes through, before it becomes the bytes
that are segmented (text -> normalizer -> bytes -> trie walk -> lattice pass -> ids).

A model records its normalizer in its file (``io.model_file``, format version 2), so a
model always segments text the way it was built to.  ``identity`` (the default) leaves
the bytes as they are: byte-level models see exactly the input, and every byte string
round-trips.  Models imported from other tokenizers need theirs (SentencePiece's
whitespace rules and character maps, say); each is a ``Normalizer`` with a ``kind``, the
JSON fields that rebuild it, and ``normalize``.

A normalizer that changes lengths must also say where each output byte came from, so that
offsets can be mapped back to the input: ``normalize_with_offsets``.

The kinds:

* ``identity``: no change;
* ``sentencepiece``: SentencePiece's ``Normalizer::Normalize`` (``normalizer.cc``), byte
  for byte: user-defined symbols copied as they are, the precompiled character map
  (``charsmap.py``), the whitespace rules, and ``▁`` written as ``b" "`` (see
  ``SentencePieceNormalizer``).  ``io.sentencepiece`` builds it from a ``.model`` file.
"""

from __future__ import annotations

import base64
from typing import Any, Iterable

import numpy as np
from numba import njit

from .charsmap import COPY, WALK, CharsMap, character_length, map_step, plain_bytes, walk_from
from .text import Text, pack, to_bytes
from .trie import build_trie, child


class Normalizer:
    """A text normalizer: bytes in, bytes out.  Subclasses set ``kind`` and override
    ``normalize_with_offsets`` (and ``normalize`` where it can be cheaper)."""

    kind = ""

    def normalize(self, data: bytes) -> bytes:
        """The bytes that are segmented for the input ``data``."""
        return self.normalize_with_offsets(data)[0]

    def normalize_with_offsets(self, data: bytes) -> tuple[bytes, np.ndarray]:
        """(normalized bytes, for each of them the offset in ``data`` it came from)."""
        raise NotImplementedError

    def normalize_batch(self, texts: list[bytes]) -> list[bytes]:
        """``normalize`` of each text (a kernel call per batch where one exists)."""
        return [self.normalize(t) for t in texts]

    def normalize_packed(self, texts: list[Text]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``normalize`` of each text (str or bytes), as ``text.pack`` packs texts: one
        ``uint8`` buffer and the ``int64`` start and end of each text in it."""
        return pack([self.normalize(to_bytes(t)) for t in texts])

    def to_json(self) -> dict[str, Any]:
        """The fields the model file stores (``kind`` and the parameters)."""
        return {"kind": self.kind}

    @property
    def is_identity(self) -> bool:
        """True when every text's bytes pass unchanged (callers skip the stage)."""
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Normalizer) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_json().items())))

    def __repr__(self) -> str:
        return f"Normalizer({self.to_json()!r})"


class Identity(Normalizer):
    """No change: the bytes of the text are what is segmented."""

    kind = "identity"

    def normalize(self, data: bytes) -> bytes:
        return data

    def normalize_with_offsets(self, data: bytes) -> tuple[bytes, np.ndarray]:
        return data, np.arange(len(data), dtype=np.int64)

    def normalize_packed(self, texts: list[Text]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return pack(texts)

    @property
    def is_identity(self) -> bool:
        return True


# -- SentencePiece ---------------------------------------------------------------------
_SPACE = 0x20
_ZERO = np.zeros(1, np.int64)
# Ends each text in the batch kernel's output: a byte that valid UTF-8 never holds.
_SEPARATOR = 0xFF
_SEPARATOR_BYTES = bytes([_SEPARATOR])
_FLAGS = ("add_dummy_prefix", "remove_extra_whitespaces", "escape_whitespaces",
          "treat_whitespace_as_suffix")


class SentencePieceNormalizer(Normalizer):
    """SentencePiece's normalizer (``normalizer.cc``, ``Normalizer::Normalize``).

    The text is read in steps, each a user-defined symbol (the longest one the text
    starts with, copied as it is), else a step of the character map (``charsmap.py``:
    the longest rule, else one UTF-8 character unchanged, else U+FFFD for one invalid
    byte).  Then the whitespace rules, on the steps' output, where only U+0020 is a space:

    * ``remove_extra_whitespaces``: steps that give a lone space are skipped at the
      start, leading spaces of a step are dropped after a step that ended with a space
      (so runs collapse to one), and spaces are removed from the end;
    * ``add_dummy_prefix``: one space before a non-empty result (after it, with
      ``treat_whitespace_as_suffix``);
    * ``escape_whitespaces``: SentencePiece writes every space as ``▁`` (U+2581).

    Output: SentencePiece's normalized text with every ``▁`` in it written as ``b" "``.
    The imported pieces spell ``▁`` as ``b" "`` (``io.sentencepiece``), so the text and
    the pieces meet as they do in SentencePiece.  Like SentencePiece, this cannot tell a
    ``▁`` that was in the text from a space: ``nmt_nfkc`` maps U+2581 to a space anyway
    (so it is collapsed and stripped like one); with a map that keeps it (``nfkc``, no
    map) it is not collapsed or stripped at the start, but it is stripped at the end,
    where SentencePiece's test looks for ``▁``.  With ``escape_whitespaces`` off, the
    spaces SentencePiece keeps as spaces are ``b" "`` too.

    Offsets (``normalize_with_offsets``) are SentencePiece's ``norm_to_orig`` at byte
    granularity: every byte of a step's output points to the first input byte of the
    step; an added space points to where the text after it starts (the dummy prefix: the
    first byte after the skipped leading spaces; a suffix: where the removed trailing
    spaces began, or the end); a ``▁`` written as one space byte keeps the offset of its
    first byte.  SentencePiece's final entry (the input length consumed) is left out: one
    offset per output byte.

    Parameters
    ----------
    precompiled_charsmap : bytes
        ``NormalizerSpec.precompiled_charsmap`` (``b""``: no character map).
    add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces : bool
        The ``NormalizerSpec`` flags (protobuf defaults: all True).
    treat_whitespace_as_suffix : bool
        From ``TrainerSpec``: the dummy space goes at the end.
    user_defined_symbols : iterable of bytes
        Non-empty byte strings protected from normalization (kept sorted and distinct).
    name : str
        The rule's name (``nmt_nfkc``, ...), kept for people; it changes nothing.

    Raises ``ValueError`` for a malformed character map or an empty symbol.

    >>> n = SentencePieceNormalizer()
    >>> n.normalize("  Hello   world ".encode())
    b' Hello world'
    >>> n.normalize_with_offsets(b" a  b")
    (b' a b', array([1, 1, 2, 4]))
    """

    kind = "sentencepiece"

    def __init__(
        self,
        precompiled_charsmap: bytes = b"",
        *,
        add_dummy_prefix: bool = True,
        remove_extra_whitespaces: bool = True,
        escape_whitespaces: bool = True,
        treat_whitespace_as_suffix: bool = False,
        user_defined_symbols: Iterable[bytes] = (),
        name: str = "",
    ) -> None:
        self.charsmap = CharsMap.parse(precompiled_charsmap)
        self.add_dummy_prefix = bool(add_dummy_prefix)
        self.remove_extra_whitespaces = bool(remove_extra_whitespaces)
        self.escape_whitespaces = bool(escape_whitespaces)
        self.treat_whitespace_as_suffix = bool(treat_whitespace_as_suffix)
        self.name = str(name)
        symbols = sorted({bytes(s) for s in user_defined_symbols})
        if symbols and not symbols[0]:
            raise ValueError("a user-defined symbol must not be empty")
        self.user_defined_symbols = tuple(symbols)
        self._symbols = build_trie(symbols, range(len(symbols)))
        # An ASCII text with none of these bytes is only whitespace work (see ``normalize``):
        # no rule of the map and no user-defined symbol can start in it.
        starts = set(self.charsmap.ascii_key_starts)
        starts.update(s[0] for s in symbols if s.isascii())
        self._plain_ascii = bytes(b for b in range(128) if b not in starts)
        # Bytes every step copies alone, in any text (the kernels skip their walks).
        self._plain = plain_bytes(self.charsmap.units)
        self._plain[[s[0] for s in symbols]] = 0
        # The batch kernel's step at each byte (``_step_kinds``).  It writes ``▁`` as a
        # space as it goes, which needs every step's output to be whole characters; a map
        # or a symbol that is not valid UTF-8 (never one SentencePiece builds) takes the
        # kernel of ``normalize_with_offsets`` instead.
        charsmap, trie = self.charsmap, self._symbols
        self._whole_characters = all(_is_utf8(x) for x in [*symbols, *charsmap.pool.tobytes().split(b"\0")])
        flags = (self.remove_extra_whitespaces, self.add_dummy_prefix, self.escape_whitespaces,
                 self.treat_whitespace_as_suffix)
        self._tables = (_step_kinds(charsmap, symbols), charsmap.character_steps, charsmap.units, charsmap.pool,
                        charsmap.replacement_at, trie.base, trie.check, trie.value,
                        sum(bit << i for i, bit in enumerate(flags)))
        self._json = {  # the map last: it is long (320 KB for nmt_nfkc)
            "kind": self.kind,
            "name": self.name,
            **{flag: getattr(self, flag) for flag in _FLAGS},
            "user_defined_symbols": [_bytes_to_json(s) for s in symbols],
            "precompiled_charsmap": base64.b64encode(self.charsmap.blob).decode("ascii"),
        }

    def normalize(self, data: bytes) -> bytes:
        data = _as_bytes(data)
        if data.isascii() and not data.translate(None, self._plain_ascii):
            return self._whitespace_only(data)
        if not self._whole_characters:
            out, _, n = self._run(data)
            return out[:n].tobytes()
        out, ends = self._packed(np.frombuffer(data, np.uint8), _ZERO, np.array([len(data)]))
        return out[: ends[0]].tobytes()

    def normalize_with_offsets(self, data: bytes) -> tuple[bytes, np.ndarray]:
        out, orig, n = self._run(_as_bytes(data))
        return out[:n].tobytes(), orig[:n].copy()

    def _run(self, data: bytes) -> tuple[np.ndarray, np.ndarray, int]:
        """The kernel's output arrays and their length."""
        text = np.frombuffer(data, np.uint8)
        symbols, charsmap = self._symbols, self.charsmap
        # SentencePiece's own first guess of the room needed, then the most any text of
        # this length can need (each step's output at its longest, every byte a ▁).
        for size in (3 * len(data) + 8, 3 * charsmap.max_expansion * len(data) + 8):
            out, orig = np.empty(size, np.uint8), np.empty(size, np.int64)
            n = _normalize_into(
                text, charsmap.units, charsmap.pool, charsmap.replacement_at,
                symbols.base, symbols.check, symbols.value, self._plain, self.remove_extra_whitespaces,
                self.add_dummy_prefix, self.escape_whitespaces,
                self.treat_whitespace_as_suffix, out, orig,
            )
            if n >= 0:
                return out, orig, n
        raise RuntimeError("internal error: the normalized text outgrew its upper bound")

    def normalize_batch(self, texts: list[bytes]) -> list[bytes]:
        """``normalize`` of each text, in one kernel call over the packed batch (a call per
        text costs microseconds of Python, as much as a short text's lattice)."""
        if not texts:
            return []
        if not self._whole_characters:
            return [self.normalize(_as_bytes(t)) for t in texts]
        out, ends = self._packed(*pack(texts))
        # The kernel ends each text with _SEPARATOR: bytes.split makes the list in C, at
        # half the time of slicing it in Python.
        parts = out[: ends[-1] + 1].tobytes().split(_SEPARATOR_BYTES)
        parts.pop()
        return parts

    def normalize_packed(self, texts: list[Text]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``normalize`` of each text (str or bytes), packed as ``text.pack`` packs texts:
        one read-only ``uint8`` buffer and the ``int64`` start and end of each text in it
        (here with a byte between texts).  What the batch kernels take, without a bytes
        object per text or a second packing."""
        if not self._whole_characters:
            return pack([self.normalize(to_bytes(t)) for t in texts])
        buf, starts, ends = pack(texts)
        out, out_ends = self._packed(buf, starts, ends)
        out_starts = np.zeros_like(out_ends)
        out_starts[1:] = out_ends[:-1] + 1
        # Read-only and never empty, as pack's: the kernels then see one type of buffer.
        out = out[: max(1, int(out_ends[-1]) if len(out_ends) else 0)]
        out.flags.writeable = False
        return out, out_starts, out_ends

    def _packed(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The batch kernel over the packed texts: the outputs, each followed by
        ``_SEPARATOR``, and where each ends.  The room first guessed is the input plus a
        dummy space and a separator a text (the common maps shrink text more often than
        they grow it); when it runs out, the kernel stops at the text that did not fit and
        goes on in a bigger buffer."""
        count = len(starts)
        total = int(ends[-1] - starts[0]) if count else 0
        out = np.empty(total + total // 16 + 2 * count + 16, np.uint8)
        out_ends = np.empty(count, np.int64)
        done = 0
        while True:  # once, unless the texts grow
            done = _normalize_texts(buf, starts, ends, done, *self._tables, out, out_ends)
            if done == count:
                return out, out_ends
            # Room for this text at its longest (every step at its longest output), and more.
            at = int(out_ends[done - 1]) + 1 if done else 0
            need = at + self.charsmap.max_expansion * int(ends[done] - starts[done]) + 3
            bigger = np.empty(max(2 * len(out), need), np.uint8)
            bigger[:at] = out[:at]
            out = bigger

    def _whitespace_only(self, data: bytes) -> bytes:
        """``normalize`` of a text that every step leaves unchanged, one byte a step."""
        if self.remove_extra_whitespaces and (
            data[:1] == b" " or data[-1:] == b" " or b"  " in data
        ):
            data = b" ".join([word for word in data.split(b" ") if word])
        if not data or not self.add_dummy_prefix:
            return data
        return data + b" " if self.treat_whitespace_as_suffix else b" " + data

    def to_json(self) -> dict[str, Any]:
        out = dict(self._json)
        out["user_defined_symbols"] = list(out["user_defined_symbols"])
        return out

    @classmethod
    def from_json_fields(cls, obj: dict[str, Any]) -> "SentencePieceNormalizer":
        """Rebuild from ``to_json``'s fields; ``ValueError`` names a field that is missing,
        unknown or of the wrong type, and a character map that is malformed."""
        fields = {"kind", "name", "precompiled_charsmap", "user_defined_symbols", *_FLAGS}
        missing, extra = fields - set(obj), set(obj) - fields
        if missing or extra:
            raise ValueError(
                f"the sentencepiece normalizer takes the fields {sorted(fields)}; "
                + (f"missing {sorted(missing)}" if missing else f"unknown {sorted(extra)}")
            )
        for flag in _FLAGS:
            if type(obj[flag]) is not bool:
                raise ValueError(
                    f"normalizer field {flag!r} must be true or false, got {obj[flag]!r:.40}")
        if not isinstance(obj["name"], str):
            raise ValueError(f"normalizer field 'name' must be a string, got {obj['name']!r:.40}")
        text = obj["precompiled_charsmap"]
        try:
            blob = base64.b64decode(text, validate=True) if isinstance(text, str) else None
        except ValueError:  # binascii.Error, or characters that are not ASCII
            blob = None
        if blob is None:
            raise ValueError(
                f"normalizer field 'precompiled_charsmap' must be a base64 string, got {text!r:.40}"
            )
        symbols = obj["user_defined_symbols"]
        if not isinstance(symbols, list):
            raise ValueError(
                f"normalizer field 'user_defined_symbols' must be a list, got {symbols!r:.40}")
        return cls(
            blob,
            user_defined_symbols=[_bytes_from_json(s, i) for i, s in enumerate(symbols)],
            name=obj["name"],
            **{flag: obj[flag] for flag in _FLAGS},
        )

    def __repr__(self) -> str:
        flags = ", ".join(f"{flag}={getattr(self, flag)}" for flag in _FLAGS)
        return (
            f"SentencePieceNormalizer(name={self.name!r}, charsmap of {len(self.charsmap.blob)} "
            f"bytes, {flags}, {len(self.user_defined_symbols)} user-defined symbols)"
        )


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"a normalizer takes bytes, got {type(data).__name__}")


def _bytes_to_json(value: bytes) -> Any:
    """A byte string as JSON: a string if it is UTF-8, else ``{"hex": ...}`` (the model
    file's rule for pieces)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": value.hex()}


def _bytes_from_json(obj: Any, i: int) -> bytes:
    if isinstance(obj, str):
        try:
            return obj.encode("utf-8")
        except UnicodeEncodeError:
            pass
    elif isinstance(obj, dict) and set(obj) == {"hex"} and isinstance(obj["hex"], str):
        try:
            return bytes.fromhex(obj["hex"])
        except ValueError:
            pass
    raise ValueError(
        f"user-defined symbol {i} must be a string or {{\"hex\": ...}}, got {obj!r:.40}")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# What the batch kernel does at a byte (``_step_kinds``), from the cheapest:
_COPY = 0  # an ASCII byte no key or symbol starts with: copied alone
_COPY_BEFORE_ASCII = 1  # copied alone when an ASCII byte or the end follows, else _WALK
_CHARACTER = 2  # a non-ASCII byte no key or symbol starts with: its character, or U+FFFD
_TABLE = 3  # the lead byte of a character of 2 or 3 bytes: its walk is in the map's table
_WALK = 4  # the whole step: symbols, then the map's longest match


def _step_kinds(charsmap: CharsMap, symbols: list[bytes]) -> np.ndarray:
    """uint8[256]: the kind of step (above) that each byte starts, for the batch kernel."""
    first = charsmap.key_first_bytes == 1
    ascii_bytes = np.arange(256) < 128
    kinds = np.full(256, _WALK, np.uint8)
    kinds[ascii_bytes & (charsmap.copied_before_ascii == 1)] = _COPY_BEFORE_ASCII
    kinds[ascii_bytes & ~first] = _COPY
    kinds[~ascii_bytes & ~first] = _CHARACTER
    if len(charsmap.character_steps):
        # Every lead byte of 2 or 3, keys or not: in Japanese, kana (keys start with them)
        # and kanji (none do) alternate at random, and one branch for both is cheaper.
        kinds[0xC2:0xF0] = _TABLE
    else:
        kinds[0xE2] = _WALK  # (a map without rules has no table)
    kinds[[s[0] for s in symbols]] = _WALK
    return kinds


# -- the SentencePiece kernel -------------------------------------------------------------
# No function here allocates: the caller passes the output arrays, so the kernel runs
# without Numba's reference counting (_nrt=False), and the helpers of the loop are inlined
# (inline="always").  Measured on 100-byte lines, each halved the time per step: a call
# passing several arrays costs more than the step's own work.


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _longest_symbol(base, check, value, text, pos, end):
    """The length of the longest user-defined symbol ``text[pos:end]`` starts with, or 0."""
    state = 0
    longest = 0
    for i in range(pos, end):
        state = child(base, check, state, text[i])
        if state < 0:
            break
        if value[state] >= 0:
            longest = i + 1 - pos
    return longest


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _step(text, pos, end, units, pool, replacement_at, base, check, value, plain):
    """``NormalizePrefix``: (from_pool, start, length, consumed) as ``charsmap.map_step``,
    a user-defined symbol first.  A byte marked in ``plain`` starts neither: it is its
    own step."""
    if plain[text[pos]]:
        return False, pos, 1, 1
    return _full_step(text, pos, end, units, pool, replacement_at, base, check, value)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _full_step(text, pos, end, units, pool, replacement_at, base, check, value):
    """``_step`` without the shortcut: the longest symbol, else ``charsmap.map_step``."""
    length = _longest_symbol(base, check, value, text, pos, end)
    if length > 0:
        return False, pos, length, length
    return map_step(units, pool, replacement_at, text, pos, end)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _kept(source, start, stop, is_prev_space):
    """The part of a step's output ``source[start:stop]`` that is written: without its
    leading spaces after a step that ended with a space."""
    if is_prev_space:
        while start < stop and source[start] == _SPACE:
            start += 1
    return start, stop


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _put_space(out, orig, n, at, escape):
    """Write SentencePiece's space (``▁`` with ``escape``, else U+0020) at ``out[n]``,
    every byte of it from input offset ``at``; return the new length."""
    if escape:
        out[n], out[n + 1], out[n + 2] = 0xE2, 0x96, 0x81
        orig[n], orig[n + 1], orig[n + 2] = at, at, at
        return n + 3
    out[n] = _SPACE
    orig[n] = at
    return n + 1


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _put(out, orig, n, source, start, stop, at, escape):
    """Write ``source[start:stop]`` at ``out[n]`` (spaces as ``▁`` with ``escape``), every
    byte from input offset ``at``; return the new length."""
    for k in range(start, stop):
        if escape and source[k] == _SPACE:
            n = _put_space(out, orig, n, at, True)
        else:
            out[n] = source[k]
            orig[n] = at
            n += 1
    return n


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _sentencepiece_form(text, units, pool, replacement_at, base, check, value, plain,
                        remove_extra, dummy_prefix, escape, suffix, out, orig):
    """``Normalizer::Normalize`` as SentencePiece writes it, into ``out`` and ``orig``
    (bytes, and each one's input offset); returns their length, or -1 when they are too
    short.  O(len(text) + output)."""
    end = text.shape[0]
    n = 0
    consumed = 0
    if end == 0:
        return 0
    if remove_extra:  # steps that give a lone space, at the start
        while consumed < end:
            from_pool, start, length, size = _step(text, consumed, end, units, pool,
                                                   replacement_at, base, check, value, plain)
            if length != 1 or (pool[start] if from_pool else text[start]) != _SPACE:
                break
            consumed += size
    if consumed == end:
        return 0
    if dummy_prefix and not suffix:
        n = _put_space(out, orig, n, consumed, escape)
    is_prev_space = remove_extra
    while consumed < end:
        from_pool, start, length, size = _step(text, consumed, end, units, pool,
                                               replacement_at, base, check, value, plain)
        source = pool if from_pool else text
        start, stop = _kept(source, start, start + length, is_prev_space)
        if start < stop:
            if n + 3 * (stop - start) + 3 > out.shape[0]:
                return -1
            n = _put(out, orig, n, source, start, stop, consumed, escape)
            is_prev_space = source[stop - 1] == _SPACE
        consumed += size
        if not remove_extra:
            is_prev_space = False
    if remove_extra:  # spaces at the end (with escape, every trailing ▁, as SentencePiece)
        if escape:
            while n >= 3 and out[n - 3] == 0xE2 and out[n - 2] == 0x96 and out[n - 1] == 0x81:
                n -= 3
                consumed = orig[n]
        else:
            while n >= 1 and out[n - 1] == _SPACE:
                n -= 1
                consumed = orig[n]
    if dummy_prefix and suffix:
        n = _put_space(out, orig, n, consumed, escape)  # the +3 of the last test keeps room
    return n


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _meta_space_as_space(out, orig, n):
    """Write every ``▁`` of ``out[:n]`` as one space byte, in place, keeping the offset
    of its first byte; return the new length."""
    w = 0
    r = 0
    while r < n:
        if r + 2 < n and out[r] == 0xE2 and out[r + 1] == 0x96 and out[r + 2] == 0x81:
            out[w] = _SPACE
            orig[w] = orig[r]
            r += 3
        else:
            out[w] = out[r]
            orig[w] = orig[r]
            r += 1
        w += 1
    return w


@njit(cache=True, nogil=True, _nrt=False)
def _normalize_into(text, units, pool, replacement_at, base, check, value, plain,
                    remove_extra, dummy_prefix, escape, suffix, out, orig):
    """``SentencePieceNormalizer.normalize_with_offsets`` into ``out`` and ``orig``:
    returns the length, or -1 when the arrays are too short."""
    n = _sentencepiece_form(text, units, pool, replacement_at, base, check, value, plain,
                            remove_extra, dummy_prefix, escape, suffix, out, orig)
    return _meta_space_as_space(out, orig, n) if n >= 0 else -1


# -- the batch kernel: no offsets, ▁ written as a space as it goes -------------------------
# The same steps as ``_sentencepiece_form`` (and the same output as it and
# ``_meta_space_as_space`` together), in one pass: a text's dummy prefix is written first and
# its trailing spaces are cut at the end, where ``trim`` is the length up to the last byte
# that is not such a space.  Most bytes take no walk of the double array (``_step_kinds``):
# ASCII letters, digits and punctuation are copied when ASCII follows, and a character of 2
# or 3 bytes reads the walk through its own bytes from the map's table
# (``CharsMap.character_steps``): CJK and most kana are copied after one look-up.


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _write_step(out, n, trim, prev_space, source, start, stop, remove_extra, escape):
    """Write a step's output ``source[start:stop]`` at ``out[n]``: without its leading
    spaces after a step that ended with one, a ``▁`` as a space (strippable at the end with
    ``escape``, as SentencePiece strips every trailing ``▁``).  Returns (n, trim, prev_space)."""
    if prev_space:
        while start < stop and source[start] == _SPACE:
            start += 1
    if start == stop:
        return n, trim, prev_space
    prev_space = remove_extra and source[stop - 1] == _SPACE
    k = start
    while k < stop:
        c = source[k]
        if c == 0xE2 and k + 2 < stop and source[k + 1] == 0x96 and source[k + 2] == 0x81:
            out[n] = _SPACE
            n += 1
            k += 3
            if not escape:
                trim = n
            continue
        out[n] = c
        n += 1
        k += 1
        if c != _SPACE:
            trim = n
    return n, trim, prev_space


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _unpacked(flags):
    """(remove_extra, dummy_prefix, escape, suffix) from the bits of ``flags``, which the
    kernel takes as one argument (each argument costs a call of the kernel time)."""
    return (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0, (flags & 8) != 0


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _code_point(text, pos, size):
    """The code point of the valid character of ``size`` (2 or 3) bytes at ``text[pos]``."""
    if size == 2:
        return ((text[pos] & 0x1F) << 6) | (text[pos + 1] & 0x3F)
    return ((text[pos] & 0x0F) << 12) | ((text[pos + 1] & 0x3F) << 6) | (text[pos + 2] & 0x3F)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _table_step(text, pos, end, steps, units, pool, replacement_at, base, check, value):
    """``_full_step`` at a byte of kind ``_TABLE``: the walk through the character's own
    bytes is read from the map's table (``CharsMap.character_steps``), and only a key that
    goes on past it is walked."""
    size = character_length(text, pos, end)
    if size == 0:
        return _full_step(text, pos, end, units, pool, replacement_at, base, check, value)
    cp = _code_point(text, pos, size)
    node = steps[cp, 0]
    if node == COPY:
        return False, pos, size, size
    if node == WALK:
        return _full_step(text, pos, end, units, pool, replacement_at, base, check, value)
    found = steps[cp, 1]
    length = size if found >= 0 else 0
    if node >= 0:
        length, found = walk_from(units, node, text, pos, pos + size, end, length, found)
    if length == 0:
        return False, pos, size, size
    stop = found
    while pool[stop] != 0:
        stop += 1
    return True, found, stop - found, length


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _normalize_text(text, pos, end, kinds, steps, units, pool, replacement_at, base, check, value, flags,
                    out, n):
    """``normalize`` of ``text[pos:end]`` written at ``out[n]``: the new length, or -1 when
    ``out`` is too short."""
    if pos == end:
        return n
    remove_extra, dummy_prefix, escape, suffix = _unpacked(flags)
    room = out.shape[0]
    trim = n
    if dummy_prefix and not suffix:
        out[n] = _SPACE  # the caller leaves room for a byte
        n += 1
    prev_space = remove_extra  # spaces at the start are dropped
    # A step that does not give a lone space (the suffix is only added after one).
    seen = not remove_extra
    while pos < end:
        if n + 4 > room:  # the most that the cheap steps write
            return -1
        b = text[pos]
        kind = kinds[b]
        # _COPY, or _COPY_BEFORE_ASCII before an ASCII byte or the end, in one test: the
        # kinds of ASCII text alternate at random, and so would a branch on each.
        if kind <= ((text[pos + 1] if pos + 1 < end else 0) < 0x80):
            # Without branches on the byte either: written, then kept unless it is a
            # space after a space.
            space = b == _SPACE
            out[n] = b
            n += 1 - (space & prev_space)
            trim = trim if space else n
            prev_space = space & remove_extra
            seen |= not space
            pos += 1
            continue
        if kind == _CHARACTER:
            size = character_length(text, pos, end)
            if size == 0:
                out[n], out[n + 1], out[n + 2] = 0xEF, 0xBF, 0xBD  # U+FFFD for the byte
                n += 3
                pos += 1
            else:
                for k in range(size):
                    out[n + k] = text[pos + k]
                n += size
                pos += size
            trim = n
            prev_space = False
            seen = True
            continue
        if kind == _TABLE:
            # Most characters: no key starts with them (CJK, kana without a voicing mark
            # that could follow), copied as they are; 2 or 3 bytes written without a branch.
            size = character_length(text, pos, end)
            if size > 0 and steps[_code_point(text, pos, size), 0] == COPY and not (
                    b == 0xE2 and text[pos + 1] == 0x96 and text[pos + 2] == 0x81):
                out[n] = b
                out[n + 1] = text[pos + 1]
                out[n + size - 1] = text[pos + size - 1]
                n += size
                pos += size
                trim = n
                prev_space = False
                seen = True
                continue
            from_pool, start, length, size = _table_step(text, pos, end, steps, units, pool, replacement_at,
                                                         base, check, value)
        else:
            from_pool, start, length, size = _full_step(text, pos, end, units, pool, replacement_at,
                                                        base, check, value)
        source = pool if from_pool else text
        if length != 1 or source[start] != _SPACE:
            seen = True
        if n + length > room:
            return -1
        if kind == _TABLE and not from_pool and not (
                length == 3 and b == 0xE2 and text[pos + 1] == 0x96 and text[pos + 2] == 0x81):
            for k in range(length):  # one character, not a space or ▁
                out[n + k] = text[pos + k]
            n += length
            trim = n
            prev_space = False
        else:
            n, trim, prev_space = _write_step(out, n, trim, prev_space, source, start, start + length,
                                              remove_extra, escape)
        pos += size
    if remove_extra:
        n = trim
    if dummy_prefix and suffix and seen:
        if n + 1 > room:
            return -1
        out[n] = _SPACE
        n += 1
    return n


@njit(cache=True, nogil=True, _nrt=False)
def _normalize_texts(buf, starts, ends, first, kinds, steps, units, pool, replacement_at, base, check, value,
                     flags, out, out_ends):
    """``_normalize_text`` of the texts ``buf[starts[t]:ends[t]]`` from ``first`` on, each
    followed by ``_SEPARATOR``, in ``out`` (text ``t`` ends at ``out_ends[t]``).  Returns the
    number of texts done: all of them, or the one that did not fit in ``out``."""
    n = out_ends[first - 1] + 1 if first > 0 else 0
    for t in range(first, starts.shape[0]):
        if n + 1 > out.shape[0]:  # the dummy prefix is written unchecked
            return t
        n = _normalize_text(buf, starts[t], ends[t], kinds, steps, units, pool, replacement_at, base, check,
                            value, flags, out, n)
        if n < 0 or n == out.shape[0]:
            return t
        out_ends[t] = n
        out[n] = _SEPARATOR
        n += 1
    return starts.shape[0]


IDENTITY = Identity()
KINDS: dict[str, type[Normalizer]] = {
    Identity.kind: Identity,
    SentencePieceNormalizer.kind: SentencePieceNormalizer,
}


def from_json(obj: Any) -> Normalizer:
    """The normalizer a model file describes; ``ValueError`` for an unknown kind or
    fields it does not take."""
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise ValueError(f"'normalizer' must be an object with a 'kind', got {obj!r:.60}")
    kind = obj["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown normalizer kind {kind!r}; this release knows {sorted(KINDS)}")
    if kind == SentencePieceNormalizer.kind:
        return SentencePieceNormalizer.from_json_fields(obj)
    extra = set(obj) - {"kind"}
    if kind == Identity.kind and extra:
        raise ValueError(f"the identity normalizer takes no parameters, got {sorted(extra)}")
    return KINDS[kind]()
