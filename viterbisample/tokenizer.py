"""``Tokenizer``: the public API over a ``Model`` and the lattice kernels.

Policy lives here (defaults, argument checks, batching, threads, output types); the work
happens in ``lattice.py``.  A text is ``str`` (UTF-8) or ``bytes``.  Every call is exact:
``alpha=None`` is the Viterbi segmentation, ``alpha >= 0`` one sample drawn exactly from
q_alpha(w) = exp(alpha * score(w)) / Z_alpha (``alpha=0``: uniform over segmentations).

Random numbers come from streams keyed by (seed, epoch, text index, draw) (``rng.py``):
``encode(x, alpha, seed=s)`` equals ``encode_batch([x], alpha, seed=s)[0]``, and a text's
sample in a batch depends only on (seed, epoch, its global index), never on threads or on
how the batch was split.
"""

from __future__ import annotations

import codecs
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any, Iterable, Sequence

import numpy as np

from . import lattice, model_io
from .checks import (
    check_alpha,
    check_count,
    check_ids,
    check_num_threads,
    check_seed,
    check_texts,
    check_uint64,
)
from .logmath import tempered_linear_weights, tempered_log_weights
from .model import DEFAULT_SPECIAL_TOKENS, Model
from .text import Text, pack, to_bytes, unpack

DEFAULT_MODEL_RESOURCE = "default_model.json"
# Below this many bytes a batch runs on the calling thread: a pool costs more than it saves.
_MIN_PARALLEL_BYTES = 1 << 16


def _hex_bytes(err: UnicodeDecodeError) -> tuple[str, int]:
    bad = err.object[err.start : err.end]
    return "".join(f"<0x{b:02X}>" for b in bad), err.end


codecs.register_error("viterbisample-hex", _hex_bytes)


def piece_display(piece: bytes) -> str:
    """A readable form of a piece: its UTF-8 text, with each byte that is not part of a
    valid character shown as ``<0xNN>``.

    >>> piece_display(b"caf\\xc3\\xa9"), piece_display(b"\\xe3\\x81")
    ('café', '<0xE3><0x81>')
    """
    return piece.decode("utf-8", "viterbisample-hex")


class Tokenizer:
    """A Unigram tokenizer: Viterbi decoding and exact sampling over one ``Model``.

    Build one with ``Tokenizer.from_pieces``, ``Tokenizer.load`` or ``Tokenizer.default``.

    >>> tok = Tokenizer.from_pieces([bytes([b]) for b in range(256)] + [b"ab"],
    ...                             [-5.0] * 256 + [-1.0])
    >>> tok.tokenize("abc")
    ['ab', 'c']
    >>> tok.decode(tok.encode("abc", alpha=0.5, seed=1))
    'abc'
    """

    _default: "Tokenizer | None" = None
    _default_lock = threading.Lock()

    def __init__(self, model: Model) -> None:
        if not isinstance(model, Model):
            raise TypeError(f"Tokenizer needs a Model, got {type(model).__name__}")
        self.model = model
        self._weights_cache: dict[float, tuple[np.ndarray, bool]] = {}
        self._weights_lock = threading.Lock()

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_pieces(
        cls,
        pieces: Sequence[bytes | str],
        scores: Sequence[float] | np.ndarray,
        special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    ) -> "Tokenizer":
        """A tokenizer over ``pieces`` with natural-log ``scores`` (see ``Model``)."""
        return cls(Model(pieces, scores, special_tokens))

    @classmethod
    def load(cls, path: Any) -> "Tokenizer":
        """Read a model file written by ``save`` (raises ``ValueError`` if malformed)."""
        return cls(model_io.load(path))

    def save(self, path: Any) -> None:
        """Write the model file atomically (see ``model_io``)."""
        model_io.save(self.model, path)

    @classmethod
    def default(cls) -> "Tokenizer":
        """The model shipped with the package (loaded once, thread-safe)."""
        with cls._default_lock:
            if cls._default is None:
                res = resources.files("viterbisample") / "data" / DEFAULT_MODEL_RESOURCE
                cls._default = cls(model_io.loads(res.read_text("utf-8"), DEFAULT_MODEL_RESOURCE))
            return cls._default

    def __reduce__(self) -> tuple:
        m = self.model
        return (_rebuild, (m.pieces, m.piece_scores.tolist(), m.special_tokens))

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, max_piece_bytes={self.model.max_piece_len})"

    # -- vocabulary --------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids: special tokens plus pieces."""
        return len(self.model)

    @property
    def special_tokens(self) -> tuple[str, ...]:
        return self.model.special_tokens

    @property
    def pad_id(self) -> int | None:
        return self.model.special_id("<pad>")

    @property
    def bos_id(self) -> int | None:
        return self.model.special_id("<bos>")

    @property
    def eos_id(self) -> int | None:
        return self.model.special_id("<eos>")

    def _check_id(self, id: Any) -> int:
        i = check_count(id, "id")
        if i >= self.vocab_size:
            raise ValueError(
                f"token id {i} is out of range for a vocabulary of {self.vocab_size} ids "
                f"(0..{self.vocab_size - 1})"
            )
        return i

    def id_to_piece(self, id: int) -> str:
        """The piece as text (``piece_display``), or the special token's name."""
        i = self._check_id(id)
        if i < self.model.num_special:
            return self.model.special_tokens[i]
        return piece_display(self.model.piece_bytes(i))

    def id_to_bytes(self, id: int) -> bytes:
        """The exact bytes of a piece; b"" for a special token."""
        return self.model.piece_bytes(self._check_id(id))

    def piece_to_id(self, piece: str | bytes) -> int:
        """The id of a piece given as bytes or str, or of a special token given by name.

        A str is looked up first as a special token name, then as UTF-8 piece bytes.
        Raises ``KeyError`` if there is no such piece.
        """
        if isinstance(piece, str):
            sid = self.model.special_id(piece)
            if sid is not None:
                return sid
            key = to_bytes(piece)
        elif isinstance(piece, (bytes, bytearray, memoryview)):
            key = bytes(piece)
        else:
            raise TypeError(f"piece must be str or bytes, got {type(piece).__name__}")
        pid = self.model.piece_id(key)
        if pid is None:
            raise KeyError(f"{piece!r} is not in the vocabulary")
        return pid

    def score(self, id: int) -> float:
        """The natural-log score of a piece; 0.0 for a special token."""
        return float(self.model.scores[self._check_id(id)])

    # -- encoding ----------------------------------------------------------------------
    def encode(self, text: Text, alpha: float | None = None, seed: int | None = None) -> list[int]:
        """Token ids of ``text``: the Viterbi path, or with ``alpha`` one exact sample.

        ``seed=None`` draws a fresh seed from the OS; a given seed reproduces the sample
        exactly, in any process.
        """
        return self.encode_batch([text], alpha=alpha, seed=seed)[0]

    def sample(
        self, text: Text, alpha: float, n: int, seed: int | None = None
    ) -> list[list[int]]:
        """``n`` independent exact samples of q_alpha for one text.

        Sample k uses the stream (seed, epoch 0, index 0, draw k): sample 0 is
        ``encode(text, alpha, seed)``.
        """
        return self.sample_batch([text], alpha, n, seed=seed, num_threads=1)[0]

    def tokenize(
        self, text: Text, alpha: float | None = None, seed: int | None = None, *, as_bytes: bool = False
    ) -> list[str] | list[bytes]:
        """The pieces of ``encode(text, alpha, seed)``: display strings (``piece_display``)
        or, with ``as_bytes=True``, their exact bytes."""
        table = self.model.decode_table
        ids = self.encode(text, alpha=alpha, seed=seed)
        if as_bytes:
            return [table[i] for i in ids]
        return [piece_display(table[i]) for i in ids]

    def encode_batch(
        self,
        texts: Iterable[Text],
        alpha: float | None = None,
        seed: int | None = 0,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
    ) -> list[list[int]]:
        """``encode`` of many texts, in parallel.

        Text k of the batch samples from the stream (seed, epoch, first_index + k, 0):
        when a corpus is split into batches, pass each batch's position in the corpus as
        ``first_index`` and the samples equal those of one big batch.  ``num_threads``
        (default: all cores) never changes the output.
        """
        flat, out_starts, counts = self._encode_texts(
            texts, alpha, seed, epoch, num_threads, first_index
        )
        return unpack(flat, out_starts, counts)

    def sample_batch(
        self,
        texts: Iterable[Text],
        alpha: float,
        n: int,
        seed: int | None = 0,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
    ) -> list[list[list[int]]]:
        """``n`` exact samples of each text, from one forward pass per text.

        Sample d of text k uses the stream (seed, epoch, first_index + k, d), so sample 0
        equals ``encode_batch`` and ``sample_batch([x], ...)[0] == sample(x, ...)``.
        """
        a = check_alpha(alpha)
        draws = check_count(n, "n")
        texts = check_texts(texts)
        flat, out_starts, counts = self._encode_texts(
            texts, a, seed, epoch, num_threads, first_index, draws
        )
        rows = unpack(flat, out_starts, counts)
        return [rows[k * draws : (k + 1) * draws] for k in range(len(texts))]

    def encode_batch_arrays(
        self,
        texts: Iterable[Text],
        alpha: float | None = None,
        seed: int | None = 0,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like ``encode_batch`` but as NumPy arrays, without a Python int per token.

        Returns ``(ids, offsets)``: int32 ids of all texts back to back, and int64
        offsets of length ``len(texts) + 1``; text k is ``ids[offsets[k]:offsets[k+1]]``.
        """
        flat, out_starts, counts = self._encode_texts(
            texts, alpha, seed, epoch, num_threads, first_index
        )
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        # Each text had room for one id per byte; close the gaps.
        gather = np.repeat(out_starts - offsets[:-1], counts) + np.arange(offsets[-1])
        return flat[gather], offsets

    def _encode_texts(self, texts, alpha, seed, epoch, num_threads, first_index, draws=1):
        """Checks, packing and the kernel run shared by the batch methods."""
        a = None if alpha is None else check_alpha(alpha)
        s = check_seed(seed)
        e = check_uint64(epoch, "epoch")
        threads = check_num_threads(num_threads)
        first = check_count(first_index, "first_index")
        buf, starts, ends = pack(check_texts(texts))
        if first > 2**63 - 1 - len(starts):
            raise ValueError(f"first_index must be < 2**63 - len(texts), got {first}")
        indices = np.arange(len(starts), dtype=np.int64) + np.int64(first)
        flat, out_starts, counts = self._run(buf, starts, ends, indices, a, s, e, threads, draws)
        return flat, out_starts, counts

    def _weights(self, alpha: float) -> tuple[np.ndarray, bool]:
        """Per-piece weights for the forward pass at ``alpha``: linear if safe, else log."""
        with self._weights_lock:
            hit = self._weights_cache.get(alpha)
        if hit is not None:
            return hit
        m = self.model
        weights, _, safe = tempered_linear_weights(m.scores, m.lengths, alpha, m.num_special)
        result = (weights, False) if safe else (tempered_log_weights(m.scores, alpha), True)
        with self._weights_lock:
            if len(self._weights_cache) >= 16:
                self._weights_cache.clear()
            self._weights_cache[alpha] = result
        return result

    def _run(self, buf, starts, ends, indices, alpha, seed, epoch, threads, draws=1):
        """Run ``lattice.encode_items`` on ``threads`` threads; returns the flat ids and,
        per output (item-major, ``draws`` per item), its start and its length."""
        m = self.model
        trie = m.suffix_trie
        n_items = len(starts)
        item_lengths = ends - starts
        out_lengths = np.repeat(item_lengths, draws)
        out_starts = np.zeros(len(out_lengths), np.int64)
        if len(out_lengths):
            np.cumsum(out_lengths[:-1], out=out_starts[1:])
        out = np.empty(max(1, int(out_lengths.sum())), np.int32)
        counts = np.zeros(len(out_lengths), np.int64)
        if alpha is None:
            mode, weights, log_domain, draws = lattice.MODE_VITERBI, m.scores, False, 1
        else:
            mode = lattice.MODE_SAMPLE
            weights, log_domain = self._weights(alpha)
        args = (
            trie.base, trie.check, trie.value, m.scores, weights, m.lengths,
            max(1, trie.max_len), mode, log_domain, buf, starts, ends, draws, out_starts, np.uint64(seed), np.uint64(epoch), indices, out, counts,
        )
        bounds = _chunks(item_lengths * draws, threads)
        if len(bounds) <= 1:
            for first, last in bounds:
                lattice.encode_items(*args, first, last)
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for f in [pool.submit(lattice.encode_items, *args, a, b) for a, b in bounds]:
                    f.result()
        if counts.size and counts.min() < 0:
            raise RuntimeError("internal error: a sampled or decoded path did not reach the start")
        return out, out_starts, counts

    # -- scores of texts and segmentations ----------------------------------------------
    def log_partition(self, text: Text, alpha: float = 1.0) -> float:
        """log Z_alpha(text) = log of the sum over all segmentations w of exp(alpha S(w))."""
        return float(self.log_partition_batch([text], alpha)[0])

    def log_partition_batch(self, texts: Iterable[Text], alpha: float = 1.0) -> np.ndarray:
        """``log_partition`` of each text, as a float64 array."""
        a = check_alpha(alpha)
        buf, starts, ends = pack(check_texts(texts))
        m = self.model
        trie = m.suffix_trie
        out = np.zeros(len(starts), np.float64)
        lattice.log_partition_items(
            trie.base, trie.check, trie.value, tempered_log_weights(m.scores, a),
            max(1, trie.max_len), buf, starts, ends, out, 0, len(starts),
        )
        return out

    def log_prob(self, text: Text, ids: Sequence[int], alpha: float = 1.0) -> float:
        """log q_alpha(ids | text) = alpha * S(ids) - log Z_alpha(text).

        Raises ``ValueError`` if ``ids`` is not a segmentation of ``text`` (special tokens
        are not part of any segmentation).
        """
        a = check_alpha(alpha)
        data = to_bytes(text)
        arr = check_ids(ids, self.vocab_size)
        m = self.model
        if arr.size and arr.min() < m.num_special:
            raise ValueError(
                f"ids contain the special token {int(arr[arr < m.num_special][0])}, which no "
                "segmentation of a text contains"
            )
        if b"".join(m.decode_table[i] for i in arr.tolist()) != data:
            raise ValueError("ids do not spell the text: decode_bytes(ids) differs from the text's bytes")
        total = 0.0
        for i in arr.tolist():
            total += float(m.scores[i])
        return a * total - self.log_partition(data, a)

    # -- decoding ----------------------------------------------------------------------
    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The exact bytes spelled by ``ids`` (special tokens spell nothing).

        Lossless: ``decode_bytes(encode(x)) == bytes of x`` for every text and every sample.
        """
        table = self.model.decode_table
        return b"".join([table[i] for i in check_ids(ids, self.vocab_size).tolist()])

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """``decode_bytes(ids)`` as text.

        The bytes of all ids are joined first, so a sample that splits a multi-byte
        character across pieces still decodes to the same text.  Only bytes that are not
        valid UTF-8 as a whole are handled by ``errors`` (as in ``bytes.decode``):
        ``"replace"`` gives U+FFFD, ``"strict"`` raises, ``"surrogateescape"`` is lossless.
        """
        return self.decode_bytes(ids).decode("utf-8", errors)


def _rebuild(pieces, scores, specials) -> Tokenizer:
    return Tokenizer(Model(pieces, scores, specials))


def _chunks(lengths: np.ndarray, threads: int) -> list[tuple[int, int]]:
    """Contiguous item ranges of about equal bytes: 4 per thread, or one if small."""
    n = len(lengths)
    if n == 0:
        return []
    total = int(lengths.sum())
    if threads <= 1 or n == 1 or total < _MIN_PARALLEL_BYTES:
        return [(0, n)]
    n_chunks = min(n, 4 * threads)
    cum = np.cumsum(lengths)
    cuts = np.searchsorted(cum, np.arange(1, n_chunks) * (total / n_chunks), side="right")
    edges = np.unique(np.concatenate([[0], cuts, [n]]))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]

