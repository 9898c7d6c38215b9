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

Sampling (``alpha``), n-best and the statistics of q_alpha (entropy, expected length,
log Z, calibrated alpha) run on SentencePiece's own lattice, in which a character that
has a piece is never spelled in bytes (``sentencepiece_lattice``): the samples are exact
draws from the distribution SentencePiece's ``encode(..., enable_sampling=True,
nbest_size=-1)`` samples from, and n-best is its exact k best (SentencePiece's A* may
stop early).  A run of unknown characters counts one token per character in
``expected_length`` and in calibration (the lattice's tokens), one ``<unk>`` in the ids.
Viterbi over a batch and every sample walk that lattice over characters rather than
bytes (``sentencepiece_lattice.CharacterLattice``: one trie step per character, not
three, on CJK text); the questions that count bytes walk it over bytes.
Not yet: marginals, ``log_prob`` and ``token_spans`` of given SentencePiece ids.  Save
is refused: the ``.model`` file is the model.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any, Iterable, Sequence

import numpy as np

from . import lattice, queries
from .checks import (
    UINT64_MAX, check_alpha, check_count, check_ids, check_num_threads, check_seed, check_texts, check_uint64,
    read_file,
)
from .engine import Engine, as_array, chunks, joined, kernel_alpha, split
from .parallel import ordered_results
from .kernel_cache import direct_call
from .io.sentencepiece import (
    BYTE, CONTROL, NORMAL, UNK_PENALTY, UNKNOWN, UNUSED, USER_DEFINED, SentencePieceModelFile, _byte_piece_value,
    convert, parse_model_proto,
)
from .sentencepiece_lattice import SentencePieceLattice, sentencepiece_ids
from .text import Text, bytes_list, pack, split_packed, to_bytes
from .tokenizer import Tokenizer, _check_draws

META = "\u2581"
_ZERO = np.zeros(1, np.int64)


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece Unigram ``.model`` with its own ids (see the module docstring).

    Build one with ``Tokenizer.load(path)``, ``Tokenizer.from_sentencepiece(path)`` or
    ``SentencePieceTokenizer(data)`` from the file's bytes.
    """

    def __init__(self, proto: bytes, source: str = "<model>", *, float32: bool = True) -> None:
        self._setup(parse_model_proto(proto, source), source, float32)
        self._proto = bytes(proto)

    @classmethod
    def from_spec(cls, spec: SentencePieceModelFile, source: str = "<model>", *, float32: bool = True,
                  rebuild: tuple | None = None) -> "SentencePieceTokenizer":
        """A tokenizer from the fields of a model already read (``io.sentencepiece``'s
        ``SentencePieceModelFile``), for formats that carry a SentencePiece model in
        another form.  ``rebuild``: ``(function, args)`` that makes it again (pickling);
        without it, it cannot be pickled."""
        tok = cls.__new__(cls)
        tok._setup(spec, source, float32)
        tok._proto = None
        tok._rebuild_with = rebuild
        return tok

    def _setup(self, spec: SentencePieceModelFile, source: str, float32: bool) -> None:
        imported = convert(spec, source)
        super().__init__(imported.tokenizer.model)
        self._source = source
        self.float32 = bool(float32)
        self.spec = imported.source
        entries = self.spec.pieces
        self._entries = entries
        self._spm_of = imported.spm_id_of.astype(np.int64)
        self._id_of_piece = {e.piece.decode("utf-8", "replace"): i for i, e in enumerate(entries)}
        unknown = [i for i, e in enumerate(entries) if e.type == UNKNOWN]
        self._unk = unknown[0] if unknown else None
        self._id_objects = np.array(range(len(entries)), dtype=object)
        self._spm_list = self._spm_of.tolist()
        # Sampling and the other questions of q_alpha run on SentencePiece's own lattice.
        matched = np.zeros(len(self.model), bool)
        for i, spm in enumerate(self._spm_list):
            matched[i] = spm >= 0 and entries[spm].type in (NORMAL, USER_DEFINED)
        unknown_score = min(e.score for e in entries if e.type == NORMAL) - UNK_PENALTY
        self._lattice = SentencePieceLattice(self.model, matched, unknown_score)
        self._engine = Engine(self._lattice)
        # Viterbi and sampling run on the same lattice over characters, the faster form.
        self._characters = self._lattice.characters
        self._character_engine = Engine(self._characters)
        # Viterbi's scores: SentencePiece's float32 arithmetic, or float64.
        scores = self._characters.scores
        self._viterbi_scores = scores.astype(np.float32) if self.float32 else scores
        # One text's Viterbi (``_viterbi_one``): the import's pieces, packed once.
        self._import_scores = self.model.scores.astype(np.float32) if self.float32 else self.model.scores
        self._text_ints = lattice.text_model(self.model.suffix_trie, self.model.scores, self.model.scores[:0],
                                             self.model.lengths, lattice.VITERBI)[0]
        self._rooms = threading.local()
        self._viterbi_text = None
        # What an unknown character is spelled with: byte pieces with byte_fallback, else <unk>.
        self._byte_ids = np.full(256, -1, np.int32)
        if self.spec.byte_fallback:
            for i, e in enumerate(entries):
                if e.type == BYTE and self._byte_ids[_byte_piece_value(e.piece)] < 0:
                    self._byte_ids[_byte_piece_value(e.piece)] = i

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, float32: bool = True) -> "SentencePieceTokenizer":
        return cls(read_file(path, "SentencePiece model file"), str(path), float32=float32)

    def __reduce__(self) -> tuple:
        if self._proto is not None:
            return (_rebuild, (self._proto, self._source, self.float32))
        if getattr(self, "_rebuild_with", None) is None:
            raise TypeError(f"{self!r} was built from fields without a way to rebuild it; it cannot be pickled")
        return self._rebuild_with

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
    # Every path runs on SentencePiece's lattice over the marked text
    # (``sentencepiece_lattice``): Viterbi (in float32 with ``float32``), samples, n-best.

    def encode(self, text: Text, alpha: float | None = None, seed: int | None = None, *, epoch: int = 0,
               index: int = 0, entropy_per_byte: float | None = None, extra_tokens: float | None = None,
               return_offsets: bool = False) -> Any:
        """SentencePiece's ``encode(text)``: the Viterbi ids, or with ``alpha`` one exact
        sample of q_alpha over SentencePiece's lattice (``encode(text, enable_sampling=True,
        alpha=alpha, nbest_size=-1)`` there), keyed by (seed, epoch, index) as
        ``Tokenizer.encode``; ``return_offsets=True``: with each token's span in ``text``."""
        if return_offsets:
            found = self.encode_batch([text], alpha, seed, epoch, 1, index, entropy_per_byte=entropy_per_byte,
                                      extra_tokens=extra_tokens, return_offsets=True)
            return found[0][0], found[1][0]
        # One text, one kernel call per stage, no thread pool: a data loader's __getitem__.
        data = self.model.normalizer.normalize(to_bytes(text))
        if alpha is None and entropy_per_byte is None and extra_tokens is None:
            return self._spm_list_of(self._viterbi_one(data))
        if type(alpha) is float and 0.0 <= alpha < math.inf and entropy_per_byte is extra_tokens is None:
            a = alpha + 0.0  # -0.0 is 0.0
        else:
            a = kernel_alpha(self._calibrated(alpha, entropy_per_byte, extra_tokens, [self._lattice.mark(data)]))
        if a == lattice.VITERBI:
            return self._spm_list_of(self._viterbi_one(data))
        s = seed if type(seed) is int and 0 <= seed <= UINT64_MAX else check_seed(seed)
        found = self._character_engine.encode_one(self._characters.of(data), a, s, check_uint64(epoch, "epoch"),
                                                  check_uint64(index, "index"))
        m = self._lattice
        if m.mark_id not in found and max(found, default=0) < m.first_unknown_id:
            return self._spm_list_of(found)  # no unknown character: the pieces' ids
        paths = np.array(found, np.int32), np.array([0, len(found)], np.int64)
        return self._to_spm(paths, (as_array(data), _ZERO, np.array([len(data)])), 1)[0].tolist()

    def _viterbi_one(self, data: bytes) -> list[int]:
        """The Viterbi path of one normalized text, in the import's ids: one compiled call
        (``lattice.viterbi_text``) over the import's pieces, whose byte paths cost at least
        the unknown node's score and so change no best path (an unknown character is
        spelled in bytes at exactly that score), with buffers kept per thread."""
        room = getattr(self._rooms, "room", None)
        if room is None or room[0].shape[0] < 2 * len(data) + 1:
            room = self._new_room(len(data))
        out, best, mids, mstarts = room
        try:
            return out[: (self._viterbi_text or self._compile_viterbi_text())(
                self._text_ints, self._import_scores, data, out, best, mids, mstarts)].tolist()
        except RuntimeError:
            raise RuntimeError(f"Viterbi found no path through {data[:60]!r}: the model does not cover it") from None

    def _new_room(self, size: int) -> tuple:
        max_len = max(1, self.model.suffix_trie.max_len)
        room = (np.empty(2 * max(size, 4096) + 1, np.int32), np.empty(lattice.ring_size(max_len), self._import_scores.dtype),
                *lattice.match_buffers(max_len))
        if size <= 1 << 20:  # kept for the next call of this thread
            self._rooms.room = room
        return room

    def _compile_viterbi_text(self) -> Any:
        out, best, mids, mstarts = self._new_room(0)
        self._viterbi_text = direct_call(lattice.viterbi_text, self._text_ints, self._import_scores, b"", out, best,
                                         mids, mstarts)
        return self._viterbi_text

    def _spm_list_of(self, internal: list[int]) -> list[int]:
        """SentencePiece's ids of a path in the import's ids: each run of unknown
        characters (byte pieces SentencePiece lacks) one <unk>."""
        ids = [self._spm_list[i] for i in internal]
        if -1 not in ids:
            return ids
        ids = []
        last_unknown = False
        for i in internal:
            spm = self._spm_list[i]
            if spm < 0:
                if self._unk is None:
                    raise ValueError("the text has characters this model cannot spell, and it has no unknown piece")
                if last_unknown:
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
        """``encode`` of each text, in parallel (text k keyed by first_index + k)."""
        originals = check_texts(texts)
        if not return_offsets:
            ids, offsets = self._encoded(originals, alpha, seed, epoch, num_threads, first_index, entropy_per_byte,
                                         extra_tokens)
            return split(self._id_objects[ids], offsets)  # one int object per id, made once
        # Offsets: the paths spelled in the import's pieces over the normalized text.
        normalized = self.model.normalizer.normalize_packed(originals)
        paths = self._paths(normalized, alpha, seed, epoch, num_threads, first_index, entropy_per_byte,
                            extra_tokens, to_spm=False)
        internal, internal_offsets = self._lattice.unmark(*paths, normalized)
        ids, offsets, keep = self._spm_ids(internal, internal_offsets)
        rows = split(self._id_objects[ids], offsets)
        spans = [self._spans_of(t, np.asarray(r, np.int64)) for t, r in zip(originals, split(internal, internal_offsets))]
        return rows, [_merged(s, k) for s, k in zip(spans, split(keep, internal_offsets))]

    def encode_batch_arrays(self, texts: Iterable[Text], alpha: float | None = None, seed: int | None = None,
                            epoch: int = 0, num_threads: int | None = None, first_index: int = 0, *,
                            entropy_per_byte: float | None = None,
                            extra_tokens: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self._encoded(check_texts(texts), alpha, seed, epoch, num_threads, first_index, entropy_per_byte,
                             extra_tokens)

    def sample_batch(self, texts: Iterable[Text], alpha: float, n: int, seed: int | None = None, epoch: int = 0,
                     num_threads: int | None = None, first_index: int = 0) -> list[list[list[int]]]:
        """``n`` exact samples of each text over SentencePiece's lattice (see
        ``Tokenizer.sample_batch``)."""
        texts = check_texts(texts)
        ids, offsets = self.sample_batch_arrays(texts, alpha, n, seed, epoch, num_threads, first_index)
        rows = split(self._id_objects[ids], offsets)
        return [rows[k * n : (k + 1) * n] for k in range(len(texts))]

    def sample_batch_arrays(self, texts: Iterable[Text], alpha: float, n: int, seed: int | None = None,
                            epoch: int = 0, num_threads: int | None = None,
                            first_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        texts = check_texts(texts)
        a = check_alpha(alpha)
        draws = _check_draws(texts, n, as_lists=False)
        if draws == 0:
            return np.zeros(0, np.int32), np.zeros(1, np.int64)
        normalized = self.model.normalizer.normalize_packed(texts)
        return self._paths(normalized, a, seed, epoch, num_threads, first_index, None, None, draws=draws)

    def nbest_batch(self, texts: Iterable[Text], k: int, num_threads: int | None = None
                    ) -> list[list[tuple[list[int], float]]]:
        """The exact ``k`` best segmentations of SentencePiece's lattice, in its ids, with
        their scores (float64 sums of the pieces' scores, the unknown node's for each
        unknown character), best first.  SentencePiece's own n-best is an A* search that
        may stop early; this is a k-best dynamic program (``Tokenizer.nbest``)."""
        normalized = self._normalized(texts)
        found = queries.nbest_batch(self._engine, self._lattice.mark_batch(normalized, pack(normalized)), k,
                                    num_threads)
        return [list(zip(self._spm_paths(data, [p for p, _ in paths]), [score for _, score in paths]))
                for data, paths in zip(normalized, found)]

    def sample_distinct_batch(self, texts: Iterable[Text], alpha: float, n: int, seed: int | None = None,
                              epoch: int = 0, num_threads: int | None = None, first_index: int = 0,
                              include_best: bool = False) -> list[list[tuple[list[int], float, float]]]:
        """``n`` distinct segmentations of each text drawn without replacement from q_alpha
        over SentencePiece's lattice, in its ids, with their log q_alpha and inclusion
        estimates (``Tokenizer.sample_distinct_batch``; ``include_best``: the best path of
        the lattice in float64).  Distinct paths of the lattice are distinct id lists."""
        normalized = self._normalized(texts)
        found = queries.sample_distinct_batch(self._engine, self._lattice.mark_batch(normalized, pack(normalized)),
                                              alpha, n, seed, epoch, num_threads, first_index, include_best)
        out = []
        for data, triples in zip(normalized, found):
            paths = self._spm_paths(data, [p for p, _, _ in triples])
            out.append([(ids, log_q, inclusion) for ids, (_, log_q, inclusion) in zip(paths, triples)])
        return out

    def _spm_paths(self, data: bytes, paths: list[list[int]]) -> list[list[int]]:
        """SentencePiece's ids of paths of the lattice of one normalized text."""
        unmarked = (as_array(data), _ZERO, np.array([len(data)]))
        return [self._to_spm((np.array(p, np.int32), np.array([0, len(p)])), unmarked, 1)[0].tolist() for p in paths]

    def tokenize(self, text: Text, alpha: float | None = None, seed: int | None = None, *,
                 as_bytes: bool = False) -> list:
        ids = self.encode(text, alpha, seed)
        return [self.id_to_bytes(i) for i in ids] if as_bytes else [self.id_to_piece(i) for i in ids]

    def _encoded(self, texts: list, alpha: Any, seed: Any, epoch: Any, num_threads: Any, first_index: Any,
                 entropy_per_byte: Any, extra_tokens: Any) -> tuple[np.ndarray, np.ndarray]:
        """SentencePiece's ids of the texts' Viterbi paths or samples, flat, and offsets."""
        normalized = self.model.normalizer.normalize_packed(texts)
        return self._paths(normalized, alpha, seed, epoch, num_threads, first_index, entropy_per_byte, extra_tokens)

    def _paths(self, normalized: tuple, alpha: Any, seed: Any, epoch: Any, num_threads: Any, first_index: Any,
               entropy_per_byte: Any, extra_tokens: Any, draws: int = 1, to_spm: bool = True,
               characters: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The Viterbi paths (``alpha`` None or inf) or ``draws`` samples of each of the
        normalized texts (packed), on SentencePiece's lattice over their characters, in
        chunks on threads: SentencePiece's ids, or with ``to_spm=False`` the lattice's,
        flat, and offsets.  ``characters``: the texts as the lattice reads them, when not
        ``normalized``'s characters (``CharacterLattice.of_words``)."""
        if alpha is None and entropy_per_byte is None and extra_tokens is None:
            a = lattice.VITERBI
        elif alpha is not None and entropy_per_byte is None and extra_tokens is None:
            a = kernel_alpha(alpha)
        else:
            texts = split_packed(self._lattice.mark_packed(normalized))
            a = kernel_alpha(self._calibrated(alpha, entropy_per_byte, extra_tokens, texts, num_threads))
        s, e = check_seed(seed), check_uint64(epoch, "epoch")
        threads = check_num_threads(num_threads)
        first = check_count(first_index, "first_index")
        buf, starts, ends = self._characters.of_packed(normalized) if characters is None else characters
        if first > 2**63 - 1 - len(starts):
            raise ValueError(f"first_index must be < 2**63 - len(texts), got {first}")
        bounds = chunks(ends - starts, threads)

        def work(k: int) -> tuple[np.ndarray, np.ndarray]:
            lo, hi = bounds[k]
            part = (buf, starts[lo:hi], ends[lo:hi])
            if a == lattice.VITERBI:  # (alpha = inf too: the best paths, with SentencePiece's ties)
                paths = self._viterbi_chunk(part, first + lo, draws)
            else:
                size = int((ends[lo:hi] - starts[lo:hi]).sum()) * draws
                out, offsets = np.empty(max(1, size), np.int32), np.empty((hi - lo) * draws + 1, np.int64)
                self._character_engine.encode_items(a, buf, part[1], part[2], draws, s, e, first + lo, out, offsets)
                paths = out[: offsets[-1]], offsets
            if not to_spm:
                return paths
            return self._to_spm(paths, (normalized[0], normalized[1][lo:hi], normalized[2][lo:hi]), draws)

        return joined(ordered_results(work, len(bounds), threads))

    def _viterbi_chunk(self, packed: tuple, first: int, draws: int) -> tuple[np.ndarray, np.ndarray]:
        """Viterbi over texts as characters (``CharacterLattice``) (each path ``draws``
        times: the samples at alpha = inf)."""
        buf, starts, ends = packed
        if draws > 1:
            starts, ends = np.repeat(starts, draws), np.repeat(ends, draws)
        m = self._characters
        out = np.empty(max(1, int((ends - starts).sum())), np.int32)
        offsets = np.empty(len(starts) + 1, np.int64)
        status = lattice.viterbi_items(m.suffix_trie, self._viterbi_scores, m.lengths, buf, starts, ends, out, offsets)
        if status < 0:
            raise RuntimeError(f"Viterbi found no path through text {first + (-1 - status) // draws}: the model "
                               "does not cover it")
        return out[: offsets[-1]], offsets

    def _to_spm(self, paths: tuple, normalized: tuple, draws: int) -> tuple[np.ndarray, np.ndarray]:
        """``sentencepiece_lattice.sentencepiece_ids`` of paths through marked texts;
        ``normalized``: the texts unmarked, packed."""
        ids, offsets = paths
        buf, starts, ends = normalized
        out = np.empty(max(1, int((ends - starts).sum()) * draws), np.int32)
        out_offsets = np.empty(len(offsets), np.int64)
        unk = -1 if self._unk is None else self._unk
        m = self._lattice
        n = sentencepiece_ids(ids, offsets, self._spm_of, m.lengths, m.mark_id, m.first_unknown_id, unk,
                              self._byte_ids, buf, starts, ends, draws, out, out_offsets)
        out = out[:n]
        if unk < 0 and (out < 0).any():
            raise ValueError("the text has characters this model cannot spell, and it has no unknown piece")
        return out, out_offsets

    def _normalized(self, texts: Iterable[Text]) -> list[bytes]:
        return self.model.normalizer.normalize_batch(bytes_list(check_texts(texts)))

    def _prepare(self, texts: Iterable[Text]) -> list:
        """The way in of the questions of q_alpha (``Tokenizer``'s): normalized, then
        marked for SentencePiece's lattice (``sentencepiece_lattice``)."""
        return split_packed(self._lattice.mark_packed(self.model.normalizer.normalize_packed(check_texts(texts))))

    def _prepare_one(self, text: Text) -> Text:
        return self._lattice.mark(self.model.normalizer.normalize(to_bytes(text)))

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

    # -- what is not available with SentencePiece's ids yet --------------------------------
    def _not_yet(self, what: str) -> None:
        raise NotImplementedError(
            f"{what} with a SentencePiece model's ids is not available yet (encode, encode_batch, "
            "sample_batch, sample_distinct, nbest, entropy, expected_length, log_partition and stats_batch are)"
        )

    def save(self, path: Any) -> None:
        raise ValueError("a SentencePiece model is its .model file: keep that file (viterbisample's model "
                         "file has no place for SentencePiece's ids)")

    def save_huggingface(self, path: Any) -> None:
        """Write the ``tokenizer.json`` Hugging Face's SentencePiece conversion writes
        (``io.huggingface.save_sentencepiece_huggingface``, which says where its ids and
        SentencePiece's can differ)."""
        from .io.huggingface import save_sentencepiece_huggingface

        save_sentencepiece_huggingface(self, path)

    def marginals(self, *args: Any, **kwargs: Any) -> Any:
        self._not_yet("marginals (by id)")

    def log_prob(self, *args: Any, **kwargs: Any) -> Any:
        self._not_yet("log_prob of given ids")

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
