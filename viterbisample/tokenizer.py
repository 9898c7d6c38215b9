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
import gc
import math
import threading
from contextlib import contextmanager
from importlib import resources
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from . import lattice, model_io
from .checks import (
    INT32_MAX,
    INT64_MAX,
    UINT64_MAX,
    check_alpha,
    check_count,
    check_ids,
    check_memory,
    check_num_threads,
    check_real,
    check_seed,
    check_texts,
    check_uint64,
)
from .logmath import LinearWeights, inclusion_probability, linear_domain_weights, scaled_gap
from .model import DEFAULT_SPECIAL_TOKENS, KernelArrays, Model
from .parallel import ordered_results
from .rng import stream_key
from .text import Text, pack, to_bytes

DEFAULT_MODEL_RESOURCE = "default_model.json"
# Below this many bytes a batch runs on the calling thread: a pool costs more than it saves.
_MIN_PARALLEL_BYTES = 1 << 16
# Sums over a batch (expected piece counts) are reduced over chunks of this size, in
# order, so they are bit-identical for any number of threads.
_SUM_CHUNK_BYTES = 1 << 16


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
        self._weights_cache: dict[float, np.ndarray] = {}
        self._weights_lock = threading.Lock()
        self._id_objects: np.ndarray | None = None

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

    def _role(self, *names: str) -> int | None:
        for name in names:
            i = self.model.special_id(name)
            if i is not None:
                return i
        return None

    @property
    def pad_id(self) -> int | None:
        """Id of ``<pad>``, or None."""
        return self._role("<pad>")

    @property
    def bos_id(self) -> int | None:
        """Id of ``<bos>`` (or SentencePiece's ``<s>``), or None."""
        return self._role("<bos>", "<s>")

    @property
    def eos_id(self) -> int | None:
        """Id of ``<eos>`` (or SentencePiece's ``</s>``), or None."""
        return self._role("<eos>", "</s>")

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
    def encode(
        self,
        text: Text,
        alpha: float | None = None,
        seed: int | None = None,
        *,
        entropy_per_byte: float | None = None,
    ) -> list[int]:
        """Token ids of ``text``: the Viterbi path, or with ``alpha`` one exact sample.

        ``seed=None`` draws a fresh seed from the OS; a given seed reproduces the sample
        exactly, in any process.  ``entropy_per_byte`` (bits) instead of ``alpha`` samples
        with the alpha at which this text's q_alpha has that entropy per byte
        (``alpha_for_entropy`` on the one text).
        """
        alpha = self._alpha_or_entropy(alpha, entropy_per_byte, [text])
        # One text: the kernel call of encode_batch without the batch bookkeeping.
        a = self._kernel_alpha(alpha)
        s = check_seed(seed) if a != lattice.VITERBI else 0
        data = to_bytes(text)
        n = len(data)
        out = np.empty(max(n, 1), np.int32)
        offsets = np.empty(2, np.int64)
        buf = _as_array(data)
        self._encode_items(a, buf, np.zeros(1, np.int64), np.array([n], np.int64), 1, s, 0, 0, out, offsets)
        return out[: offsets[1]].tolist()

    def sample(
        self,
        text: Text,
        alpha: float,
        n: int,
        seed: int | None = None,
        *,
        replace: bool = True,
        include_best: bool = False,
    ) -> list:
        """``n`` exact samples of q_alpha for one text.

        With replacement (default): ``n`` independent samples as id lists, all from one
        forward pass; sample k uses the stream (seed, epoch 0, index 0, draw k), so
        sample 0 is ``encode(text, alpha, seed)``.  ``replace=False``: ``n`` distinct
        samples as ``(ids, log_prob, inclusion)`` triples (see ``sample_distinct``).
        ``include_best=True`` puts the Viterbi path first, in place of one sample.
        """
        if not replace:
            return self.sample_distinct(text, alpha, n, seed=seed, include_best=include_best)
        found = self.sample_batch([text], alpha, n, seed=seed, num_threads=1)[0]
        if include_best and found:
            found = [self.encode(text)] + found[:-1]
        return found

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
        *,
        entropy_per_byte: float | None = None,
    ) -> list[list[int]]:
        """``encode`` of many texts, in parallel.

        Text k of the batch samples from the stream (seed, epoch, first_index + k, 0):
        when a corpus is split into batches, pass each batch's position in the corpus as
        ``first_index`` and the samples equal those of one big batch.  ``num_threads``
        (default: all cores) never changes the output.  ``entropy_per_byte`` (bits)
        instead of ``alpha`` calibrates one alpha over this whole batch
        (``alpha_for_entropy``); for a corpus, calibrate once on a sample and pass alpha.
        """
        texts = check_texts(texts)
        alpha = self._alpha_or_entropy(alpha, entropy_per_byte, texts, num_threads)
        # Each chunk becomes lists on the thread that encoded it, while others encode.
        chunks = self._encoded_chunks(texts, alpha, seed, epoch, num_threads, first_index, finish=self._rows)
        return [row for rows in chunks for row in rows]

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
        texts = check_texts(texts)
        a = check_alpha(alpha)
        draws = _check_draws(texts, n, as_lists=True)
        chunks = self._encoded_chunks(texts, a, seed, epoch, num_threads, first_index, draws, self._rows)
        rows = [row for part in chunks for row in part]
        return [rows[k * n : (k + 1) * n] for k in range(len(texts))]

    def encode_batch_arrays(
        self,
        texts: Iterable[Text],
        alpha: float | None = None,
        seed: int | None = 0,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
        *,
        entropy_per_byte: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like ``encode_batch`` but as NumPy arrays, without a Python int per token.

        Returns ``(ids, offsets)``: int32 ids of all texts back to back, and int64
        offsets of length ``len(texts) + 1``; text k is ``ids[offsets[k]:offsets[k+1]]``.
        No texts give no ids and the offsets ``[0]``.
        """
        texts = check_texts(texts)
        alpha = self._alpha_or_entropy(alpha, entropy_per_byte, texts, num_threads)
        return _joined_or_empty(self._encoded_chunks(texts, alpha, seed, epoch, num_threads, first_index))

    def sample_batch_arrays(
        self,
        texts: Iterable[Text],
        alpha: float,
        n: int,
        seed: int | None = 0,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``sample_batch`` as NumPy arrays: ``(ids, offsets)`` with ``len(texts) * n + 1``
        offsets; sample d of text k is ``ids[offsets[k * n + d]:offsets[k * n + d + 1]]``.
        No texts (or ``n = 0``) give no ids and the offsets ``[0]``."""
        texts = check_texts(texts)
        a = check_alpha(alpha)
        draws = _check_draws(texts, n, as_lists=False)
        return _joined_or_empty(self._encoded_chunks(texts, a, seed, epoch, num_threads, first_index, draws))

    def _alpha_or_entropy(self, alpha, entropy_per_byte, texts, num_threads=None):
        if entropy_per_byte is None:
            return alpha
        if alpha is not None:
            raise ValueError("give alpha or entropy_per_byte, not both")
        return self.alpha_for_entropy(texts, entropy_per_byte, num_threads=num_threads)

    def _encoded_chunks(self, texts, alpha, seed, epoch, num_threads, first_index, draws=1, finish=None):
        """(ids, offsets) of consecutive chunks of the batch, in order (``_run``), or
        ``finish(ids, offsets)`` of each.

        Each chunk is packed, encoded and finished by one thread, so the parts that hold
        the GIL (packing, building lists) overlap the other threads' kernels; the
        caller's work on a chunk overlaps the later ones (``parallel.ordered_results``).
        """
        a = self._kernel_alpha(alpha)
        s = check_seed(seed)
        e = check_uint64(epoch, "epoch")
        threads = check_num_threads(num_threads)
        first = check_count(first_index, "first_index")
        texts = check_texts(texts)
        if first > 2**63 - 1 - len(texts):
            raise ValueError(f"first_index must be < 2**63 - len(texts), got {first}")
        bounds = _sampled_chunks(texts, threads, draws)

        def job(k: int) -> Any:
            lo, hi = bounds[k]
            ids, offsets = self._run(pack(texts[lo:hi]), first + lo, a, s, e, draws)
            return (ids, offsets) if finish is None else finish(ids, offsets)

        return ordered_results(job, len(bounds), threads)

    def _rows(self, ids: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
        """One list of ids per output, from flat ids and offsets.

        Python ints are taken from an object array of all ids, made once, rather than
        made for every token: that halves the cost of the lists.
        """
        if self._id_objects is None:
            self._id_objects = np.array(range(self.vocab_size), dtype=object)
        return _split(self._id_objects[ids], offsets)

    @staticmethod
    def _kernel_alpha(alpha: Any) -> float:
        """The alpha a kernel takes: ``lattice.VITERBI`` for None and for inf (the limit
        of q_alpha is the set of best paths, and Viterbi's tie rule picks one of them)."""
        if alpha is None:
            return lattice.VITERBI
        a = check_alpha(alpha)
        return lattice.VITERBI if a == math.inf else a

    def _weights(self, alpha: float) -> np.ndarray:
        """The linear sampler's weights at ``alpha``, or an empty array where only the log
        domain is exact (``logmath.linear_domain_weights``)."""
        with self._weights_lock:
            hit = self._weights_cache.get(alpha)
        if hit is not None:
            return hit
        m = self.model
        linear = linear_domain_weights(m.scores, m.lengths, alpha, m.num_special, m.suffix_trie.max_len)
        result = linear.weights if linear is not None else np.zeros(0, np.float64)
        with self._weights_lock:
            if len(self._weights_cache) >= 16:
                self._weights_cache.clear()
            self._weights_cache[alpha] = result
        return result

    def _run(self, packed, first, alpha, seed, epoch, draws=1):
        """``lattice.encode_items`` over one packed batch (``text.pack``) whose first text
        has index ``first``: (ids, offsets), ``draws`` outputs per text."""
        buf, starts, ends = packed
        if alpha == lattice.VITERBI and draws > 1:  # alpha = inf: every sample is the Viterbi path
            ids, offsets = self._run(packed, first, alpha, seed, epoch)
            rows = np.repeat(np.arange(len(starts)), draws)
            lengths = np.diff(offsets)[rows]
            picks = np.repeat(offsets[:-1][rows] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
            return ids[np.arange(int(lengths.sum())) + picks], np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        total = int(ends[-1]) if len(ends) else 0  # packed: the texts fill the buffer
        out = np.empty(max(1, total * draws), np.int32)
        offsets = np.empty(len(starts) * draws + 1, np.int64)
        self._encode_items(alpha, buf, starts, ends, draws, seed, epoch, first, out, offsets)
        return out[: offsets[-1]].copy(), offsets

    def _encode_items(self, alpha, buf, starts, ends, draws, seed, epoch, first, out, offsets) -> None:
        """``lattice.encode_items``, with its failure turned into an exception that names
        the text (it cannot happen for a valid model: every byte is a piece)."""
        m = self.model
        trie = m.suffix_trie
        weights = self._weights(alpha) if alpha != lattice.VITERBI else m.scores[:0]
        status = lattice.encode_items(
            trie.base, trie.check, trie.value, m.scores, weights, m.lengths,
            max(1, trie.max_len), alpha, buf, starts, ends, draws,
            np.uint64(seed), np.uint64(epoch), np.uint64(first), out, offsets,
        )
        if status < 0:
            t = -1 - status
            text = bytes(buf[starts[t] : ends[t]])
            what = "Viterbi" if alpha == lattice.VITERBI else f"sampling at alpha={alpha!r}"
            raise RuntimeError(
                f"{what} found no path through the lattice of text {first + t} "
                f"({text[:60]!r}{'...' if len(text) > 60 else ''}): the model does not cover it"
            )

    # -- scores of texts and segmentations ----------------------------------------------
    def log_partition(self, text: Text, alpha: float = 1.0) -> float:
        """log Z_alpha(text) = log of the sum over all segmentations w of exp(alpha S(w))."""
        return float(self.log_partition_batch([text], alpha)[0])

    def log_partition_batch(
        self, texts: Iterable[Text], alpha: float = 1.0, num_threads: int | None = None
    ) -> np.ndarray:
        """``log_partition`` of each text, as a float64 array."""
        return self._log_partition_parts(texts, alpha, num_threads)[0]

    def _log_partition_parts(self, texts, alpha, num_threads=None):
        """(log Z, Viterbi score, log Z relative to the best path) of each text."""
        a = check_alpha(alpha)
        threads = check_num_threads(num_threads)
        buf, starts, ends = pack(check_texts(texts))
        m = self.model
        trie = m.suffix_trie
        out, best, rel = (np.zeros(len(starts), np.float64) for _ in range(3))
        args = (trie.base, trie.check, trie.value, m.scores, a, max(1, trie.max_len), buf, starts, ends, out, best, rel)
        _in_chunks(ends - starts, threads, lambda f, l: lattice.log_partition_items(*args, f, l))
        return out, best, rel

    def count_edges_batch(self, texts: Iterable[Text], num_threads: int | None = None) -> np.ndarray:
        """Number of lattice edges (pieces occurring at each position) of each text."""
        threads = check_num_threads(num_threads)
        buf, starts, ends = pack(check_texts(texts))
        rt = self.model.suffix_trie
        out = np.zeros(len(starts), np.int64)
        args = (rt.base, rt.check, rt.value, max(1, rt.max_len), buf, starts, ends, out)
        _in_chunks(ends - starts, threads, lambda f, l: lattice.count_edges_items(*args, f, l))
        return out

    def stats_batch(
        self,
        texts: Iterable[Text],
        alpha: float = 1.0,
        num_threads: int | None = None,
        text_weights: Sequence[float] | np.ndarray | None = None,
        piece_counts: bool = False,
    ) -> dict[str, np.ndarray]:
        """Exact summaries of q_alpha for each text, by forward-backward (ALGORITHMS.md
        section 5; in the linear domain where the weights allow it, else in log space).

        Returns a dict of float64 arrays, one entry per text: ``log_z`` (log Z_alpha),
        ``entropy`` (nats), ``expected_length`` (expected number of tokens) and
        ``expected_score`` (E[S]).  With ``piece_counts=True`` also ``counts``: per id,
        the expected number of uses summed over the texts, each text weighted by
        ``text_weights`` (default 1).  Sums are taken over chunks cut by size alone, in
        order, so they do not depend on ``num_threads``.
        """
        a = check_alpha(alpha)
        threads = check_num_threads(num_threads)
        texts = check_texts(texts)
        buf, starts, ends = pack(texts)
        n = len(starts)
        if text_weights is None:
            weights = np.ones(n, np.float64)
        else:
            weights = np.asarray(text_weights, np.float64)
            if weights.shape != (n,) or not np.all(np.isfinite(weights)):
                raise ValueError(f"text_weights must be {n} finite numbers, one per text")
        return lattice_stats(self.model.kernel_arrays, buf, starts, ends, a, threads, weights, piece_counts)

    def entropy(self, text: Text, alpha: float = 1.0) -> float:
        """Entropy of q_alpha over the segmentations of ``text``, in nats (exact).

        ``alpha=0`` gives log(number of segmentations); it falls as alpha grows.
        """
        return float(self.stats_batch([text], alpha)["entropy"][0])

    def expected_length(self, text: Text, alpha: float = 1.0) -> float:
        """Expected number of tokens of a sample of q_alpha (exact)."""
        return float(self.stats_batch([text], alpha)["expected_length"][0])

    def marginals(self, text: Text, alpha: float = 1.0, by: str = "piece") -> Any:
        """Marginal probabilities of q_alpha (exact).

        ``by="piece"``: dict id -> expected number of uses in a sample (they sum to the
        expected length).  ``by="edge"``: list of (start, end, id, probability) for
        every edge of the lattice, where probability = P(a sample has token ``id`` at
        bytes [start, end)); ordered by end, then longest first.
        """
        a = check_alpha(alpha)
        if by == "piece":
            counts = self.stats_batch([text], a, piece_counts=True)["counts"]
            nz = np.flatnonzero(counts)
            return dict(zip(nz.tolist(), counts[nz].tolist()))
        if by != "edge":
            raise ValueError(f"by must be 'piece' or 'edge', got {by!r}")
        data = to_bytes(text)
        m = self.model
        trie, rtrie = m.trie, m.suffix_trie
        arr = np.frombuffer(data, np.uint8) if data else np.frombuffer(b"\0", np.uint8)[:0]
        s, e, i, p = lattice.edge_marginals(rtrie.base, rtrie.check, rtrie.value, m.scores, a, max(1, trie.max_len), arr)
        return list(zip(s.tolist(), e.tolist(), i.tolist(), p.tolist()))

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
        for i in arr.tolist():  # summed in path order, as the passes sum best scores
            total += float(m.scores[i])
        # Relative to the best path: alpha * S - log Z loses every digit at large alpha.
        _, best, rel = self._log_partition_parts([data], a)
        return scaled_gap(a, min(total - float(best[0]), 0.0)) - float(rel[0])

    # -- n-best, distinct samples, calibrated alpha --------------------------------------
    def nbest(self, text: Text, k: int) -> list[tuple[list[int], float]]:
        """The exact ``k`` best segmentations with their scores, best first.

        Exact for any input length (a k-best dynamic program, O(n k) memory); fewer than
        ``k`` if the text has fewer segmentations.  Among equal scores the order follows
        the Viterbi tie rule, so the first is ``encode(text)``.
        """
        return self.nbest_batch([text], k, num_threads=1)[0]

    def nbest_batch(
        self, texts: Iterable[Text], k: int, num_threads: int | None = None
    ) -> list[list[tuple[list[int], float]]]:
        """``nbest`` of each text, in parallel.

        The k-best tables take 16 bytes per byte of text and per path kept: ``ValueError``
        if they, with the paths returned, would not fit in this machine's memory
        (``checks.memory_limit``), or if k is above 2**31 - 1 (the kernel's int32 ranks).
        """
        k = check_count(k, "k", 1)
        texts = [to_bytes(t) for t in check_texts(texts)]
        longest = max(map(len, texts), default=0)
        # Each position keeps k partial paths (a float64 score, an int32 rank and an int32
        # piece); the paths returned cost an int32 and a list slot per id, and a list each.
        found = [_most_paths(len(t), k) for t in texts]
        check_memory(
            (longest + 1) * k * 16 + sum(f * (12 * len(t) + 200) for f, t in zip(found, texts)),
            f"nbest with k = {k} on a text of {longest} bytes (16 bytes per byte and path)",
            "split the text or lower k",
        )
        k = check_count(k, "k", 1, INT32_MAX)
        m = self.model
        rt = m.suffix_trie

        def one(data: bytes) -> list[tuple[list[int], float]]:
            ids, offsets, scores = lattice.nbest(
                rt.base, rt.check, rt.value, m.scores, m.lengths, max(1, rt.max_len),
                _as_array(data), k,
            )
            return [(seg, sc) for seg, sc in zip(self._rows(ids, offsets), scores.tolist())]

        return self._per_text(texts, num_threads, one)

    def sample_distinct(
        self,
        text: Text,
        alpha: float,
        n: int,
        seed: int | None = None,
        include_best: bool = False,
    ) -> list[tuple[list[int], float, float]]:
        """``n`` distinct segmentations drawn without replacement from q_alpha.

        Exact Gumbel-top-k sampling over all paths, found by a best-first search that
        expands only the ancestors of the returned paths (fine for long texts).  Returns
        ``(ids, log_prob, inclusion)`` triples in the order drawn: ``log_prob`` is
        log q_alpha(ids) and ``inclusion`` an estimate of the probability that the path
        is in such a sample (Kool et al.'s threshold estimator, 1 when every path was
        returned).  ``include_best=True`` returns the Viterbi path first (inclusion 1)
        and ``n - 1`` paths drawn without replacement from the others.  Fewer than ``n``
        if the text has fewer segmentations.  Uses the stream (seed, 0, 0, 0).
        """
        return self.sample_distinct_batch(
            [text], alpha, n, seed=seed, include_best=include_best, num_threads=1
        )[0]

    def sample_distinct_batch(
        self,
        texts: Iterable[Text],
        alpha: float,
        n: int,
        seed: int | None = 0,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
        include_best: bool = False,
    ) -> list[list[tuple[list[int], float, float]]]:
        """``sample_distinct`` of each text; text k uses the stream
        (seed, epoch, first_index + k, 0), so results do not depend on threads."""
        a = check_alpha(alpha)
        n = check_count(n, "n")
        s = check_seed(seed)
        e = check_uint64(epoch, "epoch")
        texts = [to_bytes(t) for t in check_texts(texts)]
        first = check_count(first_index, "first_index", 0, UINT64_MAX + 1 - max(1, len(texts)))
        # The search keeps n + 1 leaves (16 bytes each) whatever the text, and about one
        # node (44 bytes) per byte of each path it returns; the paths cost as in nbest.
        found = [_most_paths(len(t), n) for t in texts]
        check_memory(
            16 * (n + 1) + max((f * 44 * (len(t) + 1) for f, t in zip(found, texts)), default=0)
            + sum(f * (12 * len(t) + 200) for f, t in zip(found, texts)),
            f"n = {n} distinct samples of {len(texts)} text(s) of up to "
            f"{max(map(len, texts), default=0)} bytes",
        )
        n = check_count(n, "n", 0, INT64_MAX - 1)
        m = self.model
        rt = m.suffix_trie
        keyed = list(zip(texts, range(first, first + len(texts))))

        def one(item: tuple[bytes, int]) -> list[tuple[list[int], float, float]]:
            data, index = item
            if n == 0:
                return []
            key = np.uint64(stream_key(np.uint64(s), np.uint64(e), np.uint64(index), np.uint64(0)))
            ids, offsets, logq, keys, kappa = lattice.sample_distinct(
                rt.base, rt.check, rt.value, m.scores, a, m.lengths, max(1, rt.max_len),
                _as_array(data), n, key,
            )
            paths = self._rows(ids, offsets)
            logq = logq.tolist()
            if logq and min(logq) == -math.inf:
                # Paths of probability 0 are never drawn: at alpha = inf all but the
                # Viterbi path, at a huge finite alpha those whose q underflows.
                drawn = [r for r, q in enumerate(logq) if q > -math.inf]
                paths, logq, keys = [paths[r] for r in drawn], [logq[r] for r in drawn], keys[drawn]
            if include_best:
                best = self.encode(data)
                if best in paths:
                    at = paths.index(best)
                    paths.insert(0, paths.pop(at))
                    logq.insert(0, logq.pop(at))
                    kappa_rest = kappa
                else:
                    kappa_rest = float(keys[-1]) if len(paths) == n else -math.inf
                    paths = [best] + paths[: n - 1]
                    logq = [self.log_prob(data, best, a)] + logq[: n - 1]
                incl = [1.0] + [inclusion_probability(q, kappa_rest) for q in logq[1:]]
            else:
                incl = [inclusion_probability(q, kappa) for q in logq]
            return list(zip(paths, logq, incl))

        return self._per_text(keyed, num_threads, one)

    def alpha_for_entropy(
        self, texts: Iterable[Text], bits_per_byte: float, num_threads: int | None = None
    ) -> float:
        """The alpha at which q_alpha has ``bits_per_byte`` bits of entropy per byte,
        summed over ``texts`` (total entropy / total bytes).

        Entropy falls monotonically as alpha grows (dH/dalpha = -alpha Var[S]), so this is
        a bracketed 1-D root find.  Raises ``ValueError`` if the target is above the
        entropy at alpha = 0 (uniform over segmentations) or below what alpha <= 1e4
        reaches.
        """
        texts = check_texts(texts)
        target = check_real(bits_per_byte, "bits_per_byte")
        n_bytes = sum(len(to_bytes(t)) for t in texts)
        if n_bytes == 0:
            raise ValueError("alpha_for_entropy needs texts with at least one byte")

        def entropy_per_byte(a: float) -> float:
            h = self.stats_batch(texts, a, num_threads=num_threads)["entropy"]
            return float(h.sum()) / n_bytes / math.log(2)

        return _solve_decreasing(entropy_per_byte, target, "bits of entropy per byte")

    def alpha_for_length(
        self, texts: Iterable[Text], extra_tokens: float, num_threads: int | None = None
    ) -> float:
        """The alpha at which samples have ``extra_tokens`` more tokens than the Viterbi
        segmentation in expectation, summed over ``texts`` (0.1 means +10%).

        Expected length falls toward the Viterbi length as alpha grows; raises
        ``ValueError`` if the target is out of reach for alpha in [0, 1e4], and if the
        texts have no bytes at all (``[]`` or only empty texts): with no tokens there is
        no relative excess to calibrate, and any alpha returned would be made up.
        """
        texts = check_texts(texts)
        target = check_real(extra_tokens, "extra_tokens")
        _, offsets = self.encode_batch_arrays(texts, num_threads=num_threads)
        viterbi = float(offsets[-1])
        if viterbi == 0:
            raise ValueError(
                f"alpha_for_length needs texts with at least one byte, got {len(texts)} "
                "text(s) and no bytes"
            )

        def relative_excess(a: float) -> float:
            e = self.stats_batch(texts, a, num_threads=num_threads)["expected_length"]
            return float(e.sum()) / viterbi - 1.0

        return _solve_decreasing(relative_excess, target, "relative extra tokens")

    def _per_text(self, items: list, num_threads: int | None, one: Any) -> list:
        """``one(item)`` for each item, on threads; results in order."""
        threads = check_num_threads(num_threads)
        results: list = [None] * len(items)

        def work(first: int, last: int) -> None:
            for t in range(first, last):
                results[t] = one(items[t])

        sizes = np.array([len(i[0]) if isinstance(i, tuple) else len(i) for i in items], np.int64)
        _in_chunks(sizes + 1, threads, work)
        return results

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
        An unknown ``errors`` name is a ``ValueError`` even when every byte is valid.
        """
        if not isinstance(errors, str):
            raise TypeError(f"errors must be the name of an error handler, got {type(errors).__name__}")
        try:
            codecs.lookup_error(errors)
        except LookupError:
            raise ValueError(
                f"errors must be an error handler such as 'replace', 'strict' or "
                f"'surrogateescape', got {errors!r}"
            ) from None
        return self.decode_bytes(ids).decode("utf-8", errors)


def lattice_stats(
    arrays: KernelArrays,
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    alpha: float,
    threads: int,
    weights: np.ndarray,
    piece_counts: bool,
) -> dict[str, np.ndarray]:
    """``Tokenizer.stats_batch`` over a packed, checked batch and any ``KernelArrays``
    (the trainer's E-step passes its own)."""
    n = len(starts)
    trie, rtrie, scores = arrays.trie, arrays.suffix_trie, arrays.scores
    log_z, length, score, entropy = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    linear = linear_domain_weights(scores, arrays.lengths, alpha, arrays.num_special, arrays.max_len)
    if linear is None:
        linear = LinearWeights(scores[:0], scores[:0], 0.0)  # empty: the log domain

    def work(first: int, last: int) -> np.ndarray:
        counts = np.zeros(len(scores) if piece_counts else 0, np.float64)
        lattice.stats_items(
            trie.base, trie.check, trie.value, rtrie.base, rtrie.check, rtrie.value,
            linear.weights, linear.log_weights, linear.shift, scores, alpha, arrays.max_len,
            buf, starts, ends, weights, counts, log_z, length, score, entropy, first, last,
        )
        return counts

    chunk_counts = _in_chunks(ends - starts, threads, work, _SUM_CHUNK_BYTES)
    out = {
        "log_z": log_z,
        "entropy": entropy,
        "expected_length": length,
        "expected_score": score,
    }
    if piece_counts:
        total = np.zeros(len(scores), np.float64)
        for c in chunk_counts:
            total += c
        out["counts"] = total
    return out


def _rebuild(pieces, scores, specials) -> Tokenizer:
    return Tokenizer(Model(pieces, scores, specials))


def _joined(chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One (ids, offsets) from the (ids, offsets) of consecutive chunks."""
    chunks = list(chunks)
    if len(chunks) == 1:
        return chunks[0]
    ids = np.concatenate([c[0] for c in chunks])
    shifts = np.cumsum([0] + [len(c[0]) for c in chunks[:-1]])
    offsets = np.concatenate([[0]] + [c[1][1:] + shift for c, shift in zip(chunks, shifts)])
    return ids, offsets.astype(np.int64)


def _as_array(data: bytes) -> np.ndarray:
    """A text's bytes as the read-only uint8 array every kernel takes."""
    return np.frombuffer(data, np.uint8) if data else np.frombuffer(b"\0", np.uint8)[:0]


def _joined_or_empty(chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``_joined``, and for no chunks (no texts) no ids and the offsets ``[0]``."""
    chunks = list(chunks)
    if not chunks:
        return np.zeros(0, np.int32), np.zeros(1, np.int64)
    return _joined(chunks)


def _check_draws(texts: list, n: Any, as_lists: bool) -> int:
    """``n`` outputs per text for ``sample_batch`` (``as_lists``) or
    ``sample_batch_arrays``: an int refused (``ValueError``) beyond this machine's memory
    or the kernels' int64.

    The kernels allocate an int32 per byte of each text and per draw, an int64 offset
    and an int32 back-pointer row per draw; lists add a pointer per id and a list per
    sample.  (Texts are measured only when n > 1: one draw costs what an encode does.)
    """
    draws = check_count(n, "n")
    if draws > 1 and texts:
        sizes = [len(t) if isinstance(t, bytes) else len(to_bytes(t)) for t in texts]
        total, longest = sum(sizes), max(sizes)
        per_id, per_output = (12, 8 + 64) if as_lists else (4, 8)
        check_memory(
            draws * (per_id * total + per_output * len(texts) + 4 * (longest + 1)),
            f"n = {draws} samples of {len(texts)} text(s) ({total} bytes)",
        )
    return check_count(draws, "n", 0, INT64_MAX)


def _most_paths(n_bytes: int, k: int) -> int:
    """At most how many of k paths a search returns for a text of n_bytes bytes: a text
    has at most 2**(n_bytes - 1) segmentations (one for the empty text)."""
    return k if n_bytes > 64 else min(k, 2 ** max(0, n_bytes - 1))


def _split(ids: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    """One list per text of the items of ``ids`` (any dtype), built with the cyclic
    garbage collector paused: the lists hold only ints, and its passes over millions of
    new lists cost four times the building itself."""
    flat = ids.tolist()
    bounds = offsets.tolist()
    with _gc_paused():
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False
_gc_forks = 0  # bumped in a forked child: pauses begun before the fork are not its own


def _gc_reset_in_child() -> None:
    """After fork: the threads that paused the collector did not come along and will never
    end their pauses here, so the child starts unpaused (and with a fresh lock, in case one
    of them held it at the fork)."""
    global _gc_lock, _gc_pausers, _gc_forks
    _gc_lock = threading.Lock()
    _gc_forks += 1
    if _gc_pausers:
        _gc_pausers = 0
        if _gc_was_enabled:
            gc.enable()


import os  # noqa: E402  (only for this fork hook, so it stays next to it)

if hasattr(os, "register_at_fork"):  # Windows has no fork
    os.register_at_fork(after_in_child=_gc_reset_in_child)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The collector off while any thread is inside, then as it was before the first."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
        forks = _gc_forks
    try:
        yield
    finally:
        with _gc_lock:
            if forks == _gc_forks:  # else this pause was begun by the parent, before a fork
                _gc_pausers -= 1
                if _gc_pausers == 0 and _gc_was_enabled:
                    gc.enable()


def _solve_decreasing(f: Any, target: float, what: str, hi_limit: float = 1e4) -> float:
    """The alpha >= 0 with f(alpha) = target for a decreasing f: bracket by doubling, then
    the Illinois variant of regula falsi on log(alpha) (bisection as a fallback)."""
    f0 = f(0.0)
    if target >= f0:
        if target - f0 <= 1e-12 * max(1.0, abs(f0)):
            return 0.0
        raise ValueError(f"{what} = {target} is above the maximum {f0:.6g}, reached at alpha = 0")
    lo, f_lo = 0.0, f0
    hi = 1.0
    f_hi = f(hi)
    while f_hi > target:
        lo, f_lo = hi, f_hi
        hi *= 4.0
        if hi > hi_limit:
            raise ValueError(f"{what} = {target} is below what alpha <= {hi_limit:g} reaches ({f_hi:.6g})")
        f_hi = f(hi)
    side = 0
    for _ in range(100):
        if hi - lo <= 1e-10 * hi:
            break
        mid = lo + (hi - lo) * (f_lo - target) / (f_lo - f_hi) if f_lo != f_hi else 0.5 * (lo + hi)
        if not lo < mid < hi:
            mid = 0.5 * (lo + hi)
        f_mid = f(mid)
        if abs(f_mid - target) <= 1e-12 * max(1.0, abs(target)):
            return mid
        if f_mid > target:
            lo, f_lo = mid, f_mid
            if side == -1:
                f_hi = target + 0.5 * (f_hi - target)
            side = -1
        else:
            hi, f_hi = mid, f_mid
            if side == 1:
                f_lo = target + 0.5 * (f_lo - target)
            side = 1
    return 0.5 * (lo + hi)


def _in_chunks(lengths: np.ndarray, threads: int, work: Any, chunk_bytes: int | None = None) -> list:
    """``work(first, last)`` over contiguous item chunks, on ``threads`` threads (the
    kernels release the GIL); results in chunk order.  With ``chunk_bytes`` the chunks
    are cut by size alone, so results summed over chunks do not depend on ``threads``."""
    bounds = _chunks(lengths, threads, chunk_bytes)
    return list(ordered_results(lambda k: work(*bounds[k]), len(bounds), threads))


def _sampled_chunks(texts: list, threads: int, draws: int = 1) -> list[tuple[int, int]]:
    """``_chunks`` for a batch of texts, cut by the lengths of at most about 2048 evenly
    spaced ones: on a big batch, measuring every text would be a serial step as long as
    packing one chunk.  (``len`` of a str counts characters: near enough the bytes.)"""
    n = len(texts)
    stride = max(1, n // 1024)
    sample = np.fromiter(map(len, texts[::stride]), np.int64)
    # Sampled text k stands for texts [k * stride, (k + 1) * stride), the last for the rest.
    return [(a * stride, n if b == len(sample) else b * stride)
            for a, b in _chunks(sample * (stride * draws), threads)]


def _chunks(lengths: np.ndarray, threads: int, chunk_bytes: int | None = None) -> list[tuple[int, int]]:
    """Contiguous item ranges cut by bytes: with ``chunk_bytes``, as many as that size
    gives whatever the threads; else one if the batch is small, or 4 per thread plus one.

    Those 4 * threads + 1 are staggered: the first and the last are half the size of the
    others.  Two threads then start their kernels half a chunk apart and stay so, and
    each one's packing of its next chunk (which holds the GIL) overlaps the other's
    kernel instead of waiting for it; they still finish together.
    """
    n = len(lengths)
    if n == 0:
        return []
    total = int(lengths.sum())
    if chunk_bytes is not None:
        n_chunks = min(n, max(1, -(-total // chunk_bytes)))
        marks = np.arange(1, n_chunks) / n_chunks
    elif threads <= 1 or n == 1 or total < _MIN_PARALLEL_BYTES:
        return [(0, n)]
    else:
        sizes = np.ones(4 * threads + 1)
        sizes[0] = sizes[-1] = 0.5
        marks = np.cumsum(sizes)[:-1] / sizes.sum()
    cuts = np.searchsorted(np.cumsum(lengths), marks * total, side="right")
    edges = np.unique(np.concatenate([[0], cuts, [n]]))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
