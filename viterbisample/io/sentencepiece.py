"""Import a SentencePiece Unigram ``.model`` file, without the sentencepiece package.

A ``.model`` file is a serialized protobuf ``ModelProto``.  This module holds a small
reader of the protobuf wire format that keeps only what a Unigram tokenizer needs:

* ``ModelProto`` field 1, the repeated ``SentencePiece`` messages
  {1: piece (string), 2: score (float32), 3: type (enum)}, types 1 NORMAL, 2 UNKNOWN,
  3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE;
* from ``TrainerSpec`` (field 2): model_type (3), byte_fallback (35),
  treat_whitespace_as_suffix (24), unk_surface (44);
* from ``NormalizerSpec`` (field 3): name (1), precompiled_charsmap (2),
  add_dummy_prefix (3), remove_extra_whitespaces (4), escape_whitespaces (5).

Every other field is skipped.  A file that is empty, truncated or not a ModelProto raises
``ValueError`` naming the file, the byte offset and the problem; nothing here can crash.
What it leaves out: the denormalizer spec (a map SentencePiece applies when decoding), and
BPE, WORD and CHAR models, which are refused (only Unigram models are Viterbi models).

How pieces are mapped (SentencePiece's own encoder is the reference)
------------------------------------------------------------------
* U+2581 ``▁`` inside a piece becomes the space byte ``b" "``.
* NORMAL pieces keep their score.  USER_DEFINED pieces get the score SentencePiece's
  Viterbi encoder gives them, ``length_in_bytes * max_score - 0.1`` where ``max_score``
  is the largest NORMAL score but at least FLT_MIN (so about -0.1 for a model with
  log-probability scores): the stored score of a user-defined piece is never used.
* When two pieces become the same bytes, the higher score is kept (on a tie, the lower
  SentencePiece id).
* UNKNOWN and CONTROL pieces become special tokens, by name (``<unk>``, ``<s>``,
  ``</s>``, ...), in SentencePiece id order, so in a default model they keep their ids
  0, 1, 2.  UNUSED pieces are skipped (SentencePiece never emits them either).
* Unknown characters.  SentencePiece covers a character that has no single-character
  piece with one ``<unk>`` node scored ``min_score - 10`` (``min_score``: the smallest
  NORMAL score), and with byte_fallback it then emits that character's UTF-8 bytes as
  BYTE pieces ``<0xNN>``; BYTE pieces are never matched against the text.  Here every
  byte is a piece (so any input, even invalid UTF-8, has a segmentation), scored so that
  a whole character spelled byte by byte costs exactly one unknown penalty: a byte that
  can start a character (0x00-0x7F, 0xC2-0xF4) and every byte that can never occur in
  UTF-8 scores ``min_score - 10``; a continuation byte (0x80-0xBF) scores 0.  A
  character that has a single-character piece is never worth spelling in bytes (its
  piece scores at least ``min_score``), so on valid UTF-8 the Viterbi score of a text is
  SentencePiece's, unknown characters included, and its byte pieces are what
  SentencePiece's byte fallback emits.  (In sampling, the byte paths of characters that
  do have a piece add a little mass that SentencePiece's lattice does not have.)  A
  NORMAL piece that is a single byte keeps its own, higher score.
* Scores are float64 (the float32 values, exactly).

Input normalization
-------------------
The imported model normalizes text as SentencePiece does before it segments it
(``normalize.SentencePieceNormalizer``, recorded in the model file): the user-defined
pieces are protected, the precompiled character map is applied (by default ``nmt_nfkc``:
NFKC and a few extra mappings), leading, trailing and repeated spaces are removed, a dummy
prefix is added, and SentencePiece's ``▁`` comes out as the space byte, the way the pieces
spell it.  So ``tokenizer.encode(text)`` segments the text SentencePiece segments, and the
tokens spell ``sp.normalize(text)`` with ``▁`` written as a space.  Decoding gives that
normalized text back, dummy space included, not the original text (the normalizer's
``normalize_with_offsets`` says where each byte came from).

``sentencepiece_input(t)`` is the whitespace part of that alone (no character map), with
spaces kept as spaces; the tokenizer does not need it.

>>> sentencepiece_input("  Hello   world ")
' Hello world'
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..checks import read_file
from ..model import MAX_ABS_SCORE, Model
from ..normalize import SentencePieceNormalizer
from ..tokenizer import Tokenizer

# SentencePiece.Type values.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
TYPE_NAMES = {
    NORMAL: "NORMAL", UNKNOWN: "UNKNOWN", CONTROL: "CONTROL",
    USER_DEFINED: "USER_DEFINED", UNUSED: "UNUSED", BYTE: "BYTE",
}
# TrainerSpec.ModelType values.
MODEL_TYPE_NAMES = {1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR"}
UNIGRAM = 1

META_SPACE = "\u2581".encode("utf-8")  # "▁", SentencePiece's visible space
# SentencePiece adds an unknown-character node scored min_score - kUnkPenalty.
UNK_PENALTY = 10.0
# SentencePiece starts its running maximum of NORMAL scores at FLT_MIN, not -FLT_MAX.
_FLT_MIN = 1.1754943508222875e-38
_USER_DEFINED_OFFSET = 0.1

# Protobuf wire types.
_VARINT, _FIXED64, _LEN, _SGROUP, _EGROUP, _FIXED32 = 0, 1, 2, 3, 4, 5
_WIRE_NAMES = {0: "varint", 1: "64-bit", 2: "length-delimited", 3: "start-group",
               4: "end-group", 5: "32-bit"}


@dataclass(frozen=True)
class SentencePieceEntry:
    """One ``SentencePiece`` message: the piece as stored, its float32 score, its type."""

    piece: bytes
    score: float
    type: int


@dataclass(frozen=True)
class SentencePieceModelFile:
    """What was read from a ``.model`` file (the fields this module understands).

    Defaults are the protobuf defaults, used when a field is absent.
    """

    pieces: tuple[SentencePieceEntry, ...]
    model_type: int = UNIGRAM
    byte_fallback: bool = False
    treat_whitespace_as_suffix: bool = False
    normalizer_name: str = ""
    precompiled_charsmap: bytes = dataclasses.field(default=b"", repr=False)  # often 240 KB
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    unk_surface: str = " \u2047 "  # what decode writes for the unknown piece


@dataclass(frozen=True)
class SentencePieceImport:
    """A converted model and how its ids relate to SentencePiece's.

    Attributes
    ----------
    tokenizer : Tokenizer
        The viterbisample tokenizer.
    spm_id_of : np.ndarray, int64, shape (tokenizer.vocab_size,)
        For each of our ids, the SentencePiece id of the same token, or -1 for a byte
        piece that the SentencePiece model lacks (it would emit ``<unk>`` there).
    id_of_spm : np.ndarray, int64, shape (number of SentencePiece pieces,)
        For each SentencePiece id, our id: the kept piece for a duplicate, the byte piece
        for a BYTE piece, the special token for UNKNOWN/CONTROL, and -1 for UNUSED.
    source : SentencePieceModelFile
        The fields read from the file.
    """

    tokenizer: Tokenizer
    spm_id_of: np.ndarray
    id_of_spm: np.ndarray
    source: SentencePieceModelFile

    def to_spm_ids(self, ids: Sequence[int]) -> list[int]:
        """Our ids as SentencePiece ids (-1 where SentencePiece has no such piece)."""
        return self.spm_id_of[np.asarray(ids, dtype=np.int64)].tolist()

    def input_for(self, text: str) -> str:
        """``sentencepiece_input(text)`` with this model's whitespace settings (the
        tokenizer normalizes by itself; this is the whitespace part alone)."""
        s = self.source
        return sentencepiece_input(
            text,
            add_dummy_prefix=s.add_dummy_prefix,
            remove_extra_whitespaces=s.remove_extra_whitespaces,
            treat_whitespace_as_suffix=s.treat_whitespace_as_suffix,
        )


def sentencepiece_input(
    text: str,
    *,
    add_dummy_prefix: bool = True,
    remove_extra_whitespaces: bool = True,
    treat_whitespace_as_suffix: bool = False,
) -> str:
    """The whitespace part of SentencePiece's normalization, with spaces kept as spaces.

    Strips the ends and collapses runs of ``" "`` (``remove_extra_whitespaces``), then
    adds one space in front (or behind, with ``treat_whitespace_as_suffix``) of a
    non-empty result.  Only U+0020 counts as a space, as in SentencePiece after its
    character map; NFKC and the character map itself are not applied.  Imported
    tokenizers do all of this themselves (``normalize.SentencePieceNormalizer``); on text
    the character map leaves alone, the two agree.

    >>> sentencepiece_input("a  b"), sentencepiece_input("   "), sentencepiece_input("x", add_dummy_prefix=False)
    (' a b', '', 'x')
    """
    if remove_extra_whitespaces and ("  " in text or text[:1] == " " or text[-1:] == " "):
        text = " ".join(part for part in text.split(" ") if part)
    if add_dummy_prefix and text:
        text = text + " " if treat_whitespace_as_suffix else " " + text
    return text


# -- the protobuf reader -----------------------------------------------------------------
class _Reader:
    """Reads protobuf fields from ``data[start:end]``; errors name the file and offset."""

    __slots__ = ("data", "pos", "end", "source", "what")

    def __init__(self, data: bytes, start: int, end: int, source: str, what: str) -> None:
        self.data, self.pos, self.end, self.source, self.what = data, start, end, source, what

    def fail(self, msg: str, at: int | None = None) -> ValueError:
        where = self.pos if at is None else at
        return ValueError(
            f"{self.source}: not a valid SentencePiece model: {msg} "
            f"(in {self.what}, at byte {where})"
        )

    def varint(self) -> int:
        data, pos, end = self.data, self.pos, self.end
        result = shift = 0
        start = pos
        while True:
            if pos >= end:
                raise self.fail("the file ends inside a varint (truncated?)", start)
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift >= 70:
                raise self.fail("a varint is longer than 10 bytes", start)
        self.pos = pos
        return result & 0xFFFFFFFFFFFFFFFF

    def fields(self):
        """Yield (field number, wire type, value): an int for varints, a (start, end)
        span for length-delimited fields, raw bytes for fixed-width ones."""
        while self.pos < self.end:
            at = self.pos
            key = self.varint()
            field, wire = key >> 3, key & 7
            if field == 0:
                raise self.fail("field number 0 is not allowed", at)
            if wire == _VARINT:
                yield field, wire, self.varint()
            elif wire == _LEN:
                n = self.varint()
                if n > self.end - self.pos:
                    raise self.fail(
                        f"field {field} claims {n} bytes but only {self.end - self.pos} remain "
                        "(truncated?)", at,
                    )
                yield field, wire, (self.pos, self.pos + n)
                self.pos += n
            elif wire in (_FIXED32, _FIXED64):
                n = 4 if wire == _FIXED32 else 8
                if n > self.end - self.pos:
                    raise self.fail(f"the file ends inside a {n}-byte field (truncated?)", at)
                yield field, wire, self.data[self.pos : self.pos + n]
                self.pos += n
            else:
                name = _WIRE_NAMES.get(wire, f"invalid ({wire})")
                raise self.fail(f"field {field} has wire type {name}, which this reader does not accept", at)

    def expect(self, field: int, wire: int, want: int, name: str) -> None:
        if wire != want:
            raise self.fail(
                f"field {field} ({name}) has wire type {_WIRE_NAMES.get(wire, wire)}, "
                f"expected {_WIRE_NAMES[want]}"
            )

    def sub(self, span: tuple[int, int], what: str) -> "_Reader":
        return _Reader(self.data, span[0], span[1], self.source, what)


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _parse_piece(r: _Reader, index: int) -> SentencePieceEntry:
    piece: bytes | None = None
    score, ptype = 0.0, NORMAL
    for field, wire, value in r.fields():
        if field == 1:
            r.expect(field, wire, _LEN, "piece")
            piece = r.data[value[0] : value[1]]
        elif field == 2:
            r.expect(field, wire, _FIXED32, "score")
            score = struct.unpack("<f", value)[0]
        elif field == 3:
            r.expect(field, wire, _VARINT, "type")
            ptype = _int32(value)
    if not piece:
        raise r.fail(f"piece {index} is {'empty' if piece is not None else 'missing'}")
    if not math.isfinite(score):
        raise r.fail(f"piece {index} ({piece!r}) has the score {score!r}; scores must be finite")
    if ptype not in TYPE_NAMES:
        raise r.fail(f"piece {index} ({piece!r}) has the unknown type {ptype}")
    return SentencePieceEntry(piece, float(score), ptype)


def parse_model_proto(data: bytes, source: str = "<bytes>") -> SentencePieceModelFile:
    """Read the fields this module uses from a serialized ``ModelProto``.

    Raises ``ValueError`` (naming ``source``) for anything that is not a well-formed
    ModelProto with at least one piece and a normalizer_spec (every file SentencePiece
    writes has one; requiring it is what catches a file cut between two fields).
    """
    data = bytes(data)
    if not data:
        raise ValueError(f"{source}: not a valid SentencePiece model: the file is empty")
    top = _Reader(data, 0, len(data), source, "ModelProto")
    pieces: list[SentencePieceEntry] = []
    opts: dict = {}
    seen_normalizer = False
    for field, wire, value in top.fields():
        if field == 1:
            top.expect(field, wire, _LEN, "pieces")
            pieces.append(_parse_piece(top.sub(value, f"piece {len(pieces)}"), len(pieces)))
        elif field == 2:
            top.expect(field, wire, _LEN, "trainer_spec")
            r = top.sub(value, "trainer_spec")
            for f, w, v in r.fields():
                if f == 3:
                    r.expect(f, w, _VARINT, "model_type")
                    opts["model_type"] = _int32(v)
                elif f == 35:
                    r.expect(f, w, _VARINT, "byte_fallback")
                    opts["byte_fallback"] = bool(v)
                elif f == 24:
                    r.expect(f, w, _VARINT, "treat_whitespace_as_suffix")
                    opts["treat_whitespace_as_suffix"] = bool(v)
                elif f == 44:
                    r.expect(f, w, _LEN, "unk_surface")
                    opts["unk_surface"] = data[v[0] : v[1]].decode("utf-8", "replace")
        elif field == 3:
            top.expect(field, wire, _LEN, "normalizer_spec")
            seen_normalizer = True
            r = top.sub(value, "normalizer_spec")
            for f, w, v in r.fields():
                if f == 1:
                    r.expect(f, w, _LEN, "name")
                    opts["normalizer_name"] = data[v[0] : v[1]].decode("utf-8", "replace")
                elif f == 2:
                    r.expect(f, w, _LEN, "precompiled_charsmap")
                    opts["precompiled_charsmap"] = data[v[0] : v[1]]
                elif f in (3, 4, 5):
                    key = {3: "add_dummy_prefix", 4: "remove_extra_whitespaces",
                           5: "escape_whitespaces"}[f]
                    r.expect(f, w, _VARINT, key)
                    opts[key] = bool(v)
    if not pieces:
        raise ValueError(f"{source}: not a valid SentencePiece model: it has no pieces")
    if not seen_normalizer:
        # SentencePiece writes it after the pieces and the trainer spec, so a file cut at
        # a field boundary (which the wire format cannot tell from a shorter file) lacks it.
        raise ValueError(
            f"{source}: not a valid SentencePiece model: it has no normalizer_spec "
            "(field 3); the file is truncated, or was not written by SentencePiece"
        )
    return SentencePieceModelFile(tuple(pieces), **opts)


def read_sentencepiece(path: str | os.PathLike) -> SentencePieceModelFile:
    """Read a ``.model`` file (see ``parse_model_proto``)."""
    data = read_file(path, "SentencePiece model file")
    return parse_model_proto(data, str(path))


# -- conversion --------------------------------------------------------------------------
def _byte_piece_value(piece: bytes) -> int | None:
    """NN for a piece spelled ``<0xNN>`` (two hex digits), else None."""
    digits = piece[3:5]
    # Not int() alone: it also takes " 1", "+1" and "-1" (then bytes([-1]) would fail).
    if len(piece) == 6 and piece[:3] == b"<0x" and piece[5:] == b">" and all(
        c in b"0123456789abcdefABCDEF" for c in digits
    ):
        return int(digits, 16)
    return None


def _fallback_byte_score(b: int, unk_score: float) -> float:
    # A continuation byte costs nothing, so a character spelled in bytes costs one penalty.
    return 0.0 if 0x80 <= b <= 0xBF else unk_score


def normalizer_of(model: SentencePieceModelFile) -> SentencePieceNormalizer:
    """The normalizer SentencePiece builds for this model.

    Raises ``ValueError`` for a malformed ``precompiled_charsmap``.
    """
    # SentencePiece's prefix matcher reads each user-defined piece as a C string, so a
    # piece is matched up to its first NUL (and one that starts with NUL is no symbol).
    symbols = [e.piece.split(b"\0", 1)[0] for e in model.pieces if e.type == USER_DEFINED]
    return SentencePieceNormalizer(
        model.precompiled_charsmap,
        add_dummy_prefix=model.add_dummy_prefix,
        remove_extra_whitespaces=model.remove_extra_whitespaces,
        escape_whitespaces=model.escape_whitespaces,
        treat_whitespace_as_suffix=model.treat_whitespace_as_suffix,
        user_defined_symbols=[s for s in symbols if s],
        name=model.normalizer_name,
    )


def convert(model: SentencePieceModelFile, source: str = "<model>") -> SentencePieceImport:
    """Build the viterbisample model (see the module docstring for the mapping).

    Raises ``ValueError`` for a model that is not Unigram, has no NORMAL piece, whose
    pieces break viterbisample's limits (for example a piece longer than 64 bytes, or a
    score beyond ``model.MAX_ABS_SCORE``, 1e4, also for the derived byte scores), or whose
    character map is malformed.
    """
    def fail(msg: str) -> ValueError:
        return ValueError(f"{source}: cannot import this SentencePiece model: {msg}")

    if model.model_type != UNIGRAM:
        name = MODEL_TYPE_NAMES.get(model.model_type, f"type {model.model_type}")
        raise fail(
            f"it is a {name} model; only Unigram models can be imported (their pieces and "
            "scores define a Viterbi segmentation, a BPE model's merge order does not)"
        )
    entries = model.pieces
    normal_scores = [e.score for e in entries if e.type == NORMAL]
    if not normal_scores:
        raise fail("it has no NORMAL pieces, so there is no score scale to take from it")
    for i, e in enumerate(entries):
        if e.type == NORMAL and abs(e.score) > MAX_ABS_SCORE:
            raise fail(
                f"piece {i} ({e.piece!r}) has the score {e.score!r}; scores are natural-log "
                f"probabilities and viterbisample needs |score| <= {MAX_ABS_SCORE:g}"
            )
    min_score = min(normal_scores)
    max_score = max(_FLT_MIN, max(normal_scores))
    unk_score = min_score - UNK_PENALTY

    specials: list[str] = []
    special_spm: list[int] = []
    best: dict[bytes, tuple[float, int]] = {}  # piece bytes -> (score, SentencePiece id)
    byte_ids: dict[int, int] = {}  # byte value -> SentencePiece id of its BYTE piece
    id_of_spm = np.full(len(entries), -1, np.int64)
    for i, e in enumerate(entries):
        if e.type in (UNKNOWN, CONTROL):
            try:
                name = e.piece.decode("utf-8")
            except UnicodeDecodeError:
                raise fail(f"special piece {i} ({e.piece!r}) is not valid UTF-8") from None
            if name in specials:
                raise fail(f"the special piece {name!r} appears twice (ids {special_spm[specials.index(name)]} and {i})")
            id_of_spm[i] = len(specials)
            specials.append(name)
            special_spm.append(i)
        elif e.type == BYTE:
            b = _byte_piece_value(e.piece)
            if b is None:
                raise fail(f"BYTE piece {i} is {e.piece!r}, not of the form <0xNN>")
            byte_ids.setdefault(b, i)
        elif e.type in (NORMAL, USER_DEFINED):
            key = e.piece.replace(META_SPACE, b" ")
            score = e.score if e.type == NORMAL else len(e.piece) * max_score - _USER_DEFINED_OFFSET
            old = best.get(key)
            if old is None or score > old[0]:
                best[key] = (score, i)
        # UNUSED: skipped; SentencePiece never emits it.

    pieces = list(best)
    scores = [best[p][0] for p in pieces]
    spm_of_piece = [best[p][1] for p in pieces]
    for b in range(256):
        key = bytes([b])
        if key not in best:
            pieces.append(key)
            scores.append(_fallback_byte_score(b, unk_score))
            spm_of_piece.append(byte_ids.get(b, -1))

    try:
        tok = Tokenizer(Model(pieces, scores, specials, normalizer_of(model)))
    except (TypeError, ValueError) as exc:
        raise fail(str(exc)) from None

    spm_id_of = np.asarray(special_spm + spm_of_piece, np.int64)
    s = len(specials)
    our_id = {p: s + k for k, p in enumerate(pieces)}
    for i, e in enumerate(entries):
        if e.type in (NORMAL, USER_DEFINED):
            id_of_spm[i] = our_id[e.piece.replace(META_SPACE, b" ")]
        elif e.type == BYTE:
            id_of_spm[i] = our_id[bytes([_byte_piece_value(e.piece)])]
    return SentencePieceImport(tok, spm_id_of, id_of_spm, model)


def import_sentencepiece(path: str | os.PathLike) -> SentencePieceImport:
    """Read a SentencePiece Unigram ``.model`` file and convert it, keeping the id maps.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is
    not a SentencePiece Unigram model.
    """
    return convert(read_sentencepiece(path), str(path))


def load_sentencepiece(path: str | os.PathLike) -> Tokenizer:
    """A ``Tokenizer`` with the pieces and scores of a SentencePiece Unigram model.

    The sentencepiece package is not needed.  The tokenizer normalizes text as
    SentencePiece does (see the module docstring).

    >>> tok = load_sentencepiece("m.model")                           # doctest: +SKIP
    >>> tok.tokenize("I  saw ａ girl")                                # doctest: +SKIP
    ['▁I', '▁saw', '▁a', '▁girl']
    """
    return import_sentencepiece(path).tokenizer
