"""A SentencePiece Unigram model with SentencePiece's own ids: the drop-in for fine-tuning.

``Tokenizer.load("spiece.model")`` (or ``Tokenizer.from_sentencepiece``) gives a
``SentencePieceTokenizer``: the ids are the model's (its numbering, its vocabulary size,
no extra ids), and ``encode(text)`` is SentencePiece's ``encode(text)``:

* the model's normalizer (``normalize.SentencePieceNormalizer``);
* the lattice SentencePiece builds.  Inside, the model is ``io.sentencepiece``'s import:
  the pieces, plus every byte as a piece scored so that a character spelled in bytes
  costs exactly SentencePiece's unknown-character penalty (min score - 10); a character
  without a piece of its own is spelled so, and its bytes come out as SentencePiece
  emits it: one ``<unk>`` for each run of unknown characters, or with ``byte_fallback``
  the model's ``<0xNN>`` pieces.  A character that has a piece is never spelled in bytes
  on a Viterbi path (its piece scores at least the min score);
* SentencePiece's arithmetic: it adds scores in float32 and keeps the first best path,
  so with ``float32=True`` (default) the Viterbi pass runs in float32 too
  (``lattice.viterbi_items``) and ties split as they do there;
* ``decode`` is SentencePiece's: pieces joined, ``▁`` as a space, the dummy prefix's
  space removed, ``<unk>`` as its surface (`` ⁇ ``), control tokens as nothing, byte
  pieces as bytes.

Not yet: sampling and the other questions of q_alpha (n-best, entropy, marginals,
log-probabilities).  SentencePiece's lattice has no byte path for a character that has a
piece; this model's has, so its q_alpha is not SentencePiece's, and those calls raise
``NotImplementedError`` rather than answer for another distribution.  Save is refused
too: the ``.model`` file is the model.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import numpy as np

from . import lattice
from .checks import check_ids, check_num_threads, check_texts, read_file
from .engine import in_chunks, joined, split
from .io.sentencepiece import BYTE, CONTROL, UNKNOWN, UNUSED, _byte_piece_value, convert, parse_model_proto
from .text import Text, pack, to_bytes
from .tokenizer import Tokenizer

META = "\u2581"
_ZERO = np.zeros(1, np.int64)
_EMPTY = np.frombuffer(b"\0", np.uint8)[:0]  # read-only like frombuffer's: one kernel signature


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece Unigram ``.model`` with its own ids (see the module docstring).

    Build one with ``Tokenizer.load(path)``, ``Tokenizer.from_sentencepiece(path)`` or
    ``SentencePieceTokenizer(data)`` from the file's bytes.
    """

    def __init__(self, proto: bytes, source: str = "<model>", *, float32: bool = True) -> None:
        imported = convert(parse_model_proto(proto, source), source)
        super().__init__(imported.tokenizer.model)
        self._proto = bytes(proto)
        self._source = source
        self.float32 = bool(float32)
        self.spec = imported.source
        entries = self.spec.pieces
        self._entries = entries
        self._spm_of = imported.spm_id_of.astype(np.int64)
        self._id_of_piece = {e.piece.decode("utf-8", "replace"): i for i, e in enumerate(entries)}
        unknown = [i for i, e in enumerate(entries) if e.type == UNKNOWN]
        self._unk = unknown[0] if unknown else None
        self._scores32 = self.model.scores.astype(np.float32)
        self._id_objects = np.array(range(len(entries)), dtype=object)
        self._spm_list = self._spm_of.tolist()

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, float32: bool = True) -> "SentencePieceTokenizer":
        return cls(read_file(path, "SentencePiece model file"), str(path), float32=float32)

    def __reduce__(self) -> tuple:
        return (_rebuild, (self._proto, self._source, self.float32))

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer({self._source!r}, vocab_size={self.vocab_size})"

    # -- the vocabulary, in SentencePiece's numbering --------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def unk_id(self) -> int | None:
        """Id of the unknown piece, or None."""
        return self._unk

    def _role(self, *names: str) -> int | None:
        for name in names:
            i = self._id_of_piece.get(name)
            if i is not None and self._entries[i].type in (CONTROL, UNKNOWN):
                return i
        return None

    @property
    def special_tokens(self) -> tuple[str, ...]:
        return tuple(self.id_to_piece(i) for i, e in enumerate(self._entries) if e.type in (CONTROL, UNKNOWN))

    def id_to_piece(self, id: int) -> str:
        """The piece as SentencePiece writes it (``▁`` for a space)."""
        return self._entries[self._check_id(id)].piece.decode("utf-8", "replace")

    def piece_to_id(self, piece: str | bytes) -> int:
        key = piece.decode("utf-8", "replace") if isinstance(piece, (bytes, bytearray)) else piece
        if not isinstance(key, str):
            raise TypeError(f"piece must be str or bytes, got {type(piece).__name__}")
        i = self._id_of_piece.get(key)
        if i is None:
            raise KeyError(f"{piece!r} is not in the vocabulary")
        return i

    def get_vocab(self) -> dict[str, int]:
        return dict(self._id_of_piece)

    def score(self, id: int) -> float:
        return float(self._entries[self._check_id(id)].score)

    def id_to_bytes(self, id: int) -> bytes:
        """What the piece spells: a space for ``▁``, the byte of a byte piece, nothing for
        control and unknown pieces."""
        e = self._entries[self._check_id(id)]
        if e.type in (CONTROL, UNKNOWN, UNUSED):
            return b""
        if e.type == BYTE:
            return bytes([_byte_piece_value(e.piece)])
        return e.piece.replace(META.encode(), b" ")

    # -- encoding -----------------------------------------------------------------------
    def encode(self, text: Text, alpha: float | None = None, seed: int | None = None, *, epoch: int = 0,
               index: int = 0, entropy_per_byte: float | None = None, extra_tokens: float | None = None,
               return_offsets: bool = False) -> Any:
        """SentencePiece's ``encode(text)``: the Viterbi ids (``return_offsets=True``:
        with each token's span in ``text``)."""
        if return_offsets:
            found = self.encode_batch([text], alpha, seed, epoch, 1, index, entropy_per_byte=entropy_per_byte,
                                      extra_tokens=extra_tokens, return_offsets=True)
            return found[0][0], found[1][0]
        self._viterbi_only(alpha, entropy_per_byte, extra_tokens)
        # One text, one kernel call, no thread pool: a data loader's __getitem__.
        data = self.model.normalizer.normalize(to_bytes(text))
        if not self.float32:
            internal = self._engine.encode_one(data, lattice.VITERBI)
        else:
            m = self.model
            out = np.empty(max(1, len(data)), np.int32)
            offsets = np.empty(2, np.int64)
            buf = np.frombuffer(data, np.uint8) if data else _EMPTY
            if lattice.viterbi_items(m.suffix_trie, self._scores32, m.lengths, buf, _ZERO, np.array([len(data)]),
                                     out, offsets) < 0:
                raise RuntimeError(f"Viterbi found no path through {data[:60]!r}: the model does not cover it")
            internal = out[: offsets[1]].tolist()
        ids = []
        for i in internal:  # SentencePiece's ids, each run of unknown characters one <unk>
            spm = self._spm_list[i]
            if spm < 0:
                if self._unk is None:
                    raise ValueError("the text has characters this model cannot spell, and it has no unknown piece")
                if ids and ids[-1] == self._unk and last_unknown:
                    continue
                spm, last_unknown = self._unk, True
            else:
                last_unknown = False
            ids.append(spm)
        return ids

    def encode_batch(self, texts: Iterable[Text], alpha: float | None = None, seed: int | None = None,
                     epoch: int = 0, num_threads: int | None = None, first_index: int = 0, *,
                     entropy_per_byte: float | None = None, extra_tokens: float | None = None,
                     return_offsets: bool = False) -> Any:
        """``encode`` of each text, in parallel."""
        self._viterbi_only(alpha, entropy_per_byte, extra_tokens)
        originals = check_texts(texts)
        internal, internal_offsets = self._internal(originals, num_threads)
        ids, offsets, keep = self._spm_ids(internal, internal_offsets)
        rows = split(self._id_objects[ids], offsets)  # one int object per id, made once
        if not return_offsets:
            return rows
        spans = [self._spans_of(t, np.asarray(r, np.int64)) for t, r in zip(originals, split(internal, internal_offsets))]
        return rows, [_merged(s, k) for s, k in zip(spans, split(keep, internal_offsets))]

    def encode_batch_arrays(self, texts: Iterable[Text], alpha: float | None = None, seed: int | None = None,
                            epoch: int = 0, num_threads: int | None = None, first_index: int = 0, *,
                            entropy_per_byte: float | None = None,
                            extra_tokens: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        self._viterbi_only(alpha, entropy_per_byte, extra_tokens)
        ids, offsets, _ = self._spm_ids(*self._internal(check_texts(texts), num_threads))
        return ids.astype(np.int32), offsets

    def tokenize(self, text: Text, alpha: float | None = None, seed: int | None = None, *,
                 as_bytes: bool = False) -> list:
        ids = self.encode(text, alpha, seed)
        return [self.id_to_bytes(i) for i in ids] if as_bytes else [self.id_to_piece(i) for i in ids]

    def _viterbi_only(self, alpha: Any, entropy_per_byte: Any, extra_tokens: Any) -> None:
        if alpha is not None or entropy_per_byte is not None or extra_tokens is not None:
            self._not_yet("sampling")

    def _internal(self, texts: list, num_threads: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Viterbi ids of the import's own numbering, flat, and offsets."""
        if not self.float32:
            return super().encode_batch_arrays(texts, num_threads=num_threads)
        prepared = self._prepare(texts)
        threads = check_num_threads(num_threads)
        m = self.model

        def work(first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
            buf, starts, ends = pack(prepared[first:last])
            out = np.empty(max(1, int(ends[-1]) if len(ends) else 0), np.int32)
            offsets = np.empty(len(starts) + 1, np.int64)
            status = lattice.viterbi_items(m.suffix_trie, self._scores32, m.lengths, buf, starts, ends, out, offsets)
            if status < 0:
                raise RuntimeError(f"Viterbi found no path through text {first - 1 - status}: the model does not cover it")
            return out[: offsets[-1]], offsets

        sizes = np.fromiter(map(len, prepared), np.int64, len(prepared))
        return joined(in_chunks(sizes + 1, threads, work) if len(prepared) else [])

    def _spm_ids(self, ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Our ids as SentencePiece's, with each run of unknown characters (byte pieces the
        model lacks) one unknown id, as SentencePiece merges them.  Returns the ids, their
        offsets, and which of the input tokens start an output token."""
        mapped = self._spm_of[ids]
        unknown = mapped < 0
        keep = np.ones(len(ids), bool)
        if unknown.any():
            if self._unk is None:
                raise ValueError("the text has characters this model cannot spell, and it has no unknown piece")
            mapped[unknown] = self._unk
            row_start = np.zeros(len(ids), bool)
            row_start[offsets[:-1][offsets[:-1] < len(ids)]] = True
            keep = ~(unknown & np.concatenate([[False], unknown[:-1]]) & ~row_start)
            offsets = np.concatenate([[0], np.cumsum(keep)])[offsets]
            mapped = mapped[keep]
        return mapped, offsets.astype(np.int64), keep

    # -- decoding -----------------------------------------------------------------------
    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """SentencePiece's ``decode``: control pieces spell nothing, the unknown piece its
        surface (`` ⁇ ``), a run of byte pieces the UTF-8 characters it holds (U+FFFD for
        each byte that is not part of one; ``errors`` is not used, as there), and other
        pieces themselves with ``▁`` as a space, except that while nothing has been
        written the leading ``▁`` of a piece is dropped (the dummy prefix): of the first
        such piece only, or of every one with ``remove_extra_whitespaces``."""
        ids = check_ids(ids, self.vocab_size).tolist()
        spec = self.spec
        strip_first = spec.add_dummy_prefix or spec.remove_extra_whitespaces
        parts: list[str] = []
        pending = bytearray()
        at_start, stripped = True, False
        for i in ids:
            e = self._entries[i]
            if e.type == BYTE:
                pending.append(_byte_piece_value(e.piece))
                continue
            if pending:
                parts.append(_bytes_as_text(pending))
                pending = bytearray()
            if stripped or any(parts):
                at_start = False
            stripped = False
            if e.type in (CONTROL, UNUSED):
                continue
            if e.type == UNKNOWN:
                parts.append(spec.unk_surface)
                continue
            piece = e.piece.decode("utf-8", "replace")
            if at_start and strip_first and piece.startswith(META):
                piece = piece[1:]
                stripped = not spec.remove_extra_whitespaces
            parts.append(piece.replace(META, " "))
        if pending:
            parts.append(_bytes_as_text(pending))
        return "".join(parts)

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        return self.decode(ids, "surrogateescape").encode("utf-8", "surrogateescape")

    # -- what is not exact for SentencePiece's lattice yet ---------------------------------
    def _not_yet(self, what: str) -> None:
        raise NotImplementedError(
            f"{what} with a SentencePiece model's ids is not available yet: SentencePiece's "
            "lattice has no byte paths for characters that have a piece, this model's has, so "
            "its q_alpha is not SentencePiece's (Viterbi ids are exact)"
        )

    def save(self, path: Any) -> None:
        raise ValueError("a SentencePiece model is its .model file: keep that file (viterbisample's model "
                         "file has no place for SentencePiece's ids)")

    def save_huggingface(self, path: Any) -> None:
        self._not_yet("export to Hugging Face")

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        self._not_yet("sampling")

    sample_batch = sample_batch_arrays = sample_distinct = sample_distinct_batch = sample

    def nbest(self, *args: Any, **kwargs: Any) -> Any:
        self._not_yet("n-best")

    nbest_batch = nbest

    def log_partition_batch(self, *args: Any, **kwargs: Any) -> Any:
        self._not_yet("statistics of q_alpha")

    stats_batch = count_edges_batch = marginals = log_prob = alpha_for_entropy = alpha_for_length = log_partition_batch

    def token_spans(self, text: Text, ids: Sequence[int]) -> list[tuple[int, int]]:
        self._not_yet("token_spans of given ids (use encode(..., return_offsets=True))")


def _bytes_as_text(data: bytearray) -> str:
    """Byte pieces as SentencePiece shows them: each valid UTF-8 character, and U+FFFD
    for each byte that does not start one."""
    out = []
    at = 0
    while at < len(data):
        for size in (1, 2, 3, 4):
            try:
                out.append(bytes(data[at : at + size]).decode("utf-8"))
                at += size
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append("\ufffd")
            at += 1
    return "".join(out)


def _merged(spans: list[tuple[int, int]], starts: list[bool]) -> list[tuple[int, int]]:
    """The spans of the output tokens: a token merged from several (a run of unknown
    characters) spans them all."""
    merged: list[tuple[int, int]] = []
    for (a, b), first in zip(spans, starts):
        if first or not merged:
            merged.append((a, b))
        else:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
    return merged


def _rebuild(proto: bytes, source: str, float32: bool) -> SentencePieceTokenizer:
    return SentencePieceTokenizer(proto, source, float32=float32)


def looks_like_model_proto(data: bytes) -> bool:
    """Whether a file's bytes start like a SentencePiece ``ModelProto`` (field 1, the
    pieces, length-delimited) rather than JSON."""
    return data[:1] == b"\x0a"
