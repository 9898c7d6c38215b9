"""A BytePiece model with BytePiece's own ids (bojone/bytepiece 0.6.3).

``load_bytepiece(path)`` (``io.bytepiece``) gives a ``BytePieceTokenizer`` whose
``encode(text)`` is BytePiece's ``Tokenizer.encode(text)``, id for id, and whose
``decode`` is its ``decode``:

* the text is normalized as BytePiece's ``normalize`` does it: Unicode NFC
  (``BytePieceNormalizer``).  BytePiece then cuts it after every run of ``\\n`` and
  segments each line alone; the importer refuses pieces that could cross such a cut
  (a ``\\n`` then another byte), so every edge of the lattice over the whole text lies
  inside one line: the lattice is the union of the lines' lattices, and q_alpha is the
  product of theirs, so samples need no cutting.  Viterbi does: its path factors over
  the lines too, but only in exact arithmetic.  BytePiece's scores restart from 0 on
  each line, and a pass over the whole text adds the same piece scores to a large
  prefix score, which rounds differently: two paths that tie, or nearly, inside a line
  can swap (with the test model, line 141 of Botchan did, the whole book given as one
  text).  So Viterbi runs on each line apart (``_LineEngine``), on the lines BytePiece
  makes;
* the lattice: every piece of the file, scored ``log(count / total)`` in float64 as
  BytePiece computes it; both Viterbi passes keep, at each position, the longest of the
  last pieces with the best score (BytePiece visits the pieces ending at a position
  longest first and keeps the first best; ours visits them shortest first and lets a
  later equal score win), so ties split alike;
* ids: 0, 1, 2 are ``<pad>``, ``<bos>``, ``<eos>``, the pieces have the file's ids;
  ``vocab_size`` is BytePiece's (pieces + 3).  ``decode`` drops ids 0..2, joins the
  pieces and decodes with ``errors="ignore"`` by default, as BytePiece does;
* inputs: ``str`` as BytePiece takes it; also ``bytes``, decoded with
  ``surrogateescape`` before NFC, so that bytes that are not UTF-8 pass through as bytes
  (BytePiece's ``tokenize`` takes no bytes; its segmenter ``_tokenize`` on each line gives
  the same ids).  ``token_spans`` maps tokens back through NFC
  (``BytePieceNormalizer.normalize_with_offsets``).

Single bytes missing from the file.  Our ``Model`` needs all 256 one-byte pieces, and
BytePiece's trainer always writes them, but a hand-made file may lack some.  Such bytes
become internal pieces with ids past ``vocab_size`` (never returned by any method: a
text that could use one is refused first), and a text that contains such a byte is
refused with a ``ValueError`` by the normalizer.  Then the lattice of every accepted
text is exactly BytePiece's (an internal piece matches only where its byte occurs), so
Viterbi, q_alpha and all its samples are BytePiece's; BytePiece itself may have no
segmentation for such a text and then loops forever.

Sampling: ``encode(text, alpha, seed)`` is the exact sampler of q_alpha(w) proportional
to exp(alpha * S(w)), S the sum of the pieces' log-probabilities, over the same lattice.
BytePiece 0.6.3's ``tokenize(text, alpha)`` samples the same distribution: the same
alpha means the same q_alpha (it weights a path by exp(alpha * S) too; its alpha < 0,
the default, is Viterbi, ours ``alpha=None`` or ``inf``; alpha = 0 is uniform in both).
It draws with C's ``rand()`` and one process-wide seed; ours draws from the streams of
``rng.py``, so the ids of a sample differ but not their distribution
(``benchmarks/bench_bytepiece_ids.py`` fits both to q_alpha enumerated).  The other
questions of q_alpha (n-best, entropy, marginals) run on the whole text's lattice, the
product of the lines' ones.
Its first sampler, "Viterbi Sampling" (0.4.0), is not an exact sampler: see
``viterbisample.legacy``.
"""

from __future__ import annotations

import os
import re
import unicodedata
from typing import Any, Sequence

import numpy as np

from . import lattice
from .checks import check_ids, read_file
from .engine import Engine
from .io.bytepiece import SPECIAL_TOKENS, BytePieceModelFile, bytepiece_from_bytes
from .model import MAX_ABS_SCORE, Model
from .normalize import Normalizer
from .text import Text
from .tokenizer import Tokenizer

# The score of an internal piece (a byte the file lacks): any value is exact, since a text
# containing that byte is refused before it reaches a lattice.
_INTERNAL_SCORE = -MAX_ABS_SCORE


class BytePieceNormalizer(Normalizer):
    """BytePiece's normalization: Unicode NFC of the text (bytes that are not UTF-8 pass
    through as they are, by way of ``surrogateescape``).  Refuses, with a ``ValueError``,
    a text containing one of ``missing`` (bytes the model has no one-byte piece for; see
    the module docstring)."""

    kind = "bytepiece"

    def __init__(self, missing: Sequence[int] = ()) -> None:
        self.missing = tuple(sorted(set(int(b) for b in missing)))
        # bytes.translate(None, present) deletes every byte that has a piece, leaving
        # only missing ones: one C pass per text.
        self._present = bytes(b for b in range(256) if b not in self.missing)

    def normalize(self, data: bytes) -> bytes:
        data = bytes(data)
        if not data.isascii():  # NFC leaves ASCII unchanged
            text = data.decode("utf-8", "surrogateescape")
            if not unicodedata.is_normalized("NFC", text):
                data = unicodedata.normalize("NFC", text).encode("utf-8", "surrogateescape")
        if self.missing:
            self._refuse_missing(data)
        return data

    def normalize_batch(self, texts: list[bytes]) -> list[bytes]:
        if self.missing:
            return [self.normalize(t) for t in texts]
        # Most texts are ASCII, which NFC leaves alone: one C call each decides it.
        return [t if t.isascii() else self.normalize(t) for t in texts]

    def _refuse_missing(self, data: bytes) -> None:
        left = data.translate(None, self._present)
        if left:
            b = left[0]
            raise ValueError(
                f"the text contains the byte 0x{b:02x} (at offset {data.index(bytes([b]))}), which this "
                "BytePiece model has no piece for; BytePiece cannot segment it exactly either"
            )

    def normalize_with_offsets(self, data: bytes) -> tuple[bytes, np.ndarray]:
        """NFC with the input byte each output byte came from.  The text is cut where
        NFC does not act across the cut (before a character of combining class 0,
        unless NFC of the two sides joined differs from the two normalized apart); a
        part NFC leaves alone maps byte for byte, a changed part maps its last output
        byte to its last input byte and the others to its first, so a token holding the
        whole part spans all of it."""
        data = bytes(data)
        out = self.normalize(data)
        if out == data:
            return data, np.arange(len(data), dtype=np.int64)
        text = data.decode("utf-8", "surrogateescape")
        parts: list[str] = []
        for ch in text:
            if parts and (unicodedata.combining(ch) or _nfc(parts[-1] + ch) != _nfc(parts[-1]) + _nfc(ch)):
                parts[-1] += ch
            else:
                parts.append(ch)
        source: list[int] = []
        at = 0
        for part in parts:
            raw = part.encode("utf-8", "surrogateescape")
            norm = _nfc(part).encode("utf-8", "surrogateescape")
            if norm == raw:
                source.extend(range(at, at + len(raw)))
            else:
                source.extend([at] * (len(norm) - 1) + [at + len(raw) - 1])
            at += len(raw)
        return out, np.array(source, dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "missing": list(self.missing)}


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# Where BytePiece cuts a text (``normalize``'s regex ``.*\\n+|.+``): after a line feed
# that another byte follows.
_CUT = re.compile(rb"\n(?=[^\n])")


class _LineEngine(Engine):
    """``Engine`` whose Viterbi runs on each line of a text apart, as BytePiece's does
    (see the module docstring); sampling runs on whole texts (q_alpha factors)."""

    def encode_one(self, data: bytes, alpha: float, seed: int = 0, epoch: int = 0, index: int = 0) -> list[int]:
        if alpha != lattice.VITERBI or _CUT.search(data) is None:
            return super().encode_one(data, alpha, seed, epoch, index)
        cuts = [0, *(m.end() for m in _CUT.finditer(data)), len(data)]
        ids: list[int] = []
        for a, b in zip(cuts, cuts[1:]):
            ids += super().encode_one(data[a:b], alpha)
        return ids

    def run(self, packed, first, alpha, seed, epoch, draws=1):
        if alpha != lattice.VITERBI:
            return super().run(packed, first, alpha, seed, epoch, draws)
        buf, starts, ends = packed
        n = len(starts)
        # Cut points strictly inside a text (a text starting after a line feed is not cut).
        cuts = np.flatnonzero((buf[:-1] == 10) & (buf[1:] != 10)) + 1
        cuts = cuts[cuts < (ends[-1] if n else 0)]
        owner = np.searchsorted(ends, cuts, side="right")
        inside = starts[owner] < cuts if len(cuts) else np.zeros(0, bool)
        cuts, owner = cuts[inside], owner[inside]
        if len(cuts):
            sub_starts = np.concatenate([starts, cuts])
            sub_owner = np.concatenate([np.arange(n), owner])
            order = np.lexsort((sub_owner, sub_starts))
            sub_starts, sub_owner = sub_starts[order], sub_owner[order]
            same_next = np.append(sub_owner[1:] == sub_owner[:-1], False)
            sub_ends = np.where(same_next, np.append(sub_starts[1:], 0), ends[sub_owner])
            ids, sub_offsets = super().run((buf, sub_starts, sub_ends), first, alpha, seed, epoch, 1)
            offsets = sub_offsets[np.append(np.searchsorted(sub_owner, np.arange(n)), len(sub_starts))]
        else:
            ids, offsets = super().run(packed, first, alpha, seed, epoch, 1)
        if draws == 1:
            return ids, offsets
        # Every draw of Viterbi is its path: each text's ids, ``draws`` times over.
        counts = np.diff(offsets)
        out = np.concatenate([ids[offsets[t] : offsets[t + 1]] for t in range(n) for _ in range(draws)]
                             or [ids[:0]])
        return out, np.concatenate([[0], np.cumsum(np.repeat(counts, draws))]).astype(np.int64)


class BytePieceTokenizer(Tokenizer):
    """A BytePiece model file with BytePiece's ids (see the module docstring).

    Build one with ``io.bytepiece.load_bytepiece(path)``, ``BytePieceTokenizer.from_file``
    or ``BytePieceTokenizer(data)`` from the file's bytes.
    """

    def __init__(self, data: bytes, source: str = "<bytepiece model>") -> None:
        spec, scores = bytepiece_from_bytes(data, source)
        present = {p[0] for p in spec.pieces if len(p) == 1}
        missing = [b for b in range(256) if b not in present]
        pieces = list(spec.pieces) + [bytes([b]) for b in missing]
        all_scores = np.concatenate([scores, np.full(len(missing), _INTERNAL_SCORE)])
        try:
            model = Model(pieces, all_scores, SPECIAL_TOKENS, BytePieceNormalizer(missing))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: not a usable BytePiece model: {exc}") from None
        super().__init__(model)
        self._engine = _LineEngine(model)
        self.spec: BytePieceModelFile = spec
        self.missing_bytes: tuple[int, ...] = tuple(missing)
        self._data = bytes(data)
        self._source = source
        self._size = len(spec.pieces) + len(SPECIAL_TOKENS)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "BytePieceTokenizer":
        return cls(read_file(path, "BytePiece model file"), str(path))

    def __reduce__(self) -> tuple:
        return (BytePieceTokenizer, (self._data, self._source))

    def __repr__(self) -> str:
        return f"BytePieceTokenizer({self._source!r}, vocab_size={self.vocab_size})"

    # -- the vocabulary: BytePiece's ids only ----------------------------------------------
    @property
    def vocab_size(self) -> int:
        """BytePiece's ``vocab_size``: the pieces of the file plus 3."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def piece_to_id(self, piece: str | bytes) -> int:
        pid = super().piece_to_id(piece)
        if pid >= self._size:  # an internal piece (a byte the file lacks)
            raise KeyError(f"{piece!r} is not in the vocabulary")
        return pid

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The bytes of ``ids`` joined, ids 0..2 as nothing (BytePiece's ``decode``)."""
        table = self.model.decode_table
        return b"".join([table[i] for i in check_ids(ids, self._size).tolist()])

    def decode(self, ids: Sequence[int], errors: str = "ignore") -> str:
        """BytePiece's ``decode``: ``decode_bytes(ids).decode("utf-8", "ignore")``
        (``errors`` as in ``Tokenizer.decode``)."""
        return super().decode(ids, errors)

    def save(self, path: Any) -> None:
        raise ValueError(
            "a BytePiece model is its JSON file: copy that file (saving it as a viterbisample model "
            "would lose its normalization)"
        )

    def save_huggingface(self, path: Any) -> None:
        raise ValueError(
            "a BytePiece model cannot be written as a tokenizer.json: it has no exact NFC counterpart here"
        )

    def bytepiece_tokenize(self, text: Text) -> list[bytes]:
        """The pieces of ``encode(text)`` as bytes: BytePiece's ``tokenize(text)``."""
        table = self.model.decode_table
        return [table[i] for i in self.encode(text)]
