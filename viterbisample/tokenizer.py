"""``Tokenizer``: the public face over a ``Model``.

Construction, the vocabulary, encoding, sampling and decoding live here, with their
defaults, argument checks and output types; batches run in ``engine.py`` (chunks,
threads, the number domain), the other questions a lattice answers in ``queries.py`` and
the calibration of alpha in ``calibrate.py``; the passes themselves are in ``lattice/``.

A text is ``str`` (UTF-8) or ``bytes``.  Every call is exact: ``alpha=None`` is the
Viterbi segmentation, ``alpha >= 0`` one sample drawn exactly from
q_alpha(w) = exp(alpha * score(w)) / Z_alpha (``alpha=0``: uniform over segmentations;
``alpha=inf``: Viterbi).

Random numbers come from streams keyed by (seed, epoch, text index, draw) (``rng.py``):
``encode(x, alpha, seed=s)`` equals ``encode_batch([x], alpha, seed=s)[0]``, and a text's
sample in a batch depends only on (seed, epoch, its global index), never on threads or on
how the batch was split.
"""

from __future__ import annotations

import codecs
import contextlib
import math
import os
import threading
from importlib import resources
from typing import Any, Iterable, Sequence

import numpy as np

from . import calibrate, lattice, normalize, offsets, queries
from .io import huggingface, model_file
from .checks import INT64_MAX, UINT64_MAX, check_alpha, check_count, check_ids, check_memory, check_seed, check_texts, check_uint64
from .engine import Engine, joined, kernel_alpha
from .inputs import InputOptions, model_inputs
from .model import DEFAULT_SPECIAL_TOKENS, Model
from .pieces import piece_display, piece_from_display
from .text import Text, to_bytes

DEFAULT_MODEL_RESOURCE = "default_model.json"


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
        self._engine = Engine(model)
        self._identity = model.normalizer.is_identity

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
        """Read a model file written by ``save``, a SentencePiece Unigram ``.model``
        (``from_sentencepiece``: SentencePiece's ids), a BytePiece model file (BytePiece's
        ids), or a Hugging Face ``tokenizer.json`` of a byte-level Unigram model
        (``save_huggingface``'s) or of a SentencePiece-converted Unigram model
        (``huggingface_tokenizer``: its own ids); ``ValueError`` if malformed or of a kind
        it cannot reproduce exactly."""
        from .io.bytepiece import load_bytepiece, looks_like_bytepiece
        from .sentencepiece_tokenizer import SentencePieceTokenizer, looks_like_model_proto

        with open(path, "rb") if isinstance(path, (str, os.PathLike)) and os.path.isfile(path) else _nothing() as f:
            head = f.read(1) if f is not None else b""
        if looks_like_model_proto(head):
            return SentencePieceTokenizer.from_file(path)
        if head.strip() in (b"{", b""):
            with open(path, "rb") if head else _nothing() as f:
                data = f.read() if f is not None else b""
            # First BytePiece: its pieces may spell "model", which a tokenizer.json holds.
            if looks_like_bytepiece(data[:4096]):
                return load_bytepiece(path)
            text = data.decode("utf-8", "replace")
            if huggingface.is_sentencepiece_tokenizer_json(text):
                # Not the byte-level form: a SentencePiece-converted Unigram model with its
                # own ids (other kinds are refused there, by name).
                return huggingface.load_sentencepiece_huggingface(path)
        return cls(model_file.load(path))

    @classmethod
    def from_sentencepiece(cls, path: Any, *, float32: bool = True) -> "Tokenizer":
        """A SentencePiece Unigram ``.model`` file with SentencePiece's own ids, giving
        exactly its ``encode`` (``sentencepiece_tokenizer.SentencePieceTokenizer``;
        ``float32``: its arithmetic, so that ties split alike)."""
        from .sentencepiece_tokenizer import SentencePieceTokenizer

        return SentencePieceTokenizer.from_file(path, float32=float32)

    def save(self, path: Any) -> None:
        """Write the model file atomically (see ``io.model_file``)."""
        model_file.save(self.model, path)

    def save_huggingface(self, path: Any) -> None:
        """Write a Hugging Face ``tokenizer.json`` that ``tokenizers`` loads and that gives
        this tokenizer's Viterbi ids (see ``io.huggingface`` for the one difference:
        special token names written literally in a text)."""
        huggingface.save_huggingface(self.model, path)

    @classmethod
    def default(cls) -> "Tokenizer":
        """The model shipped with the package (loaded once, thread-safe)."""
        with cls._default_lock:
            if cls._default is None:
                res = resources.files("viterbisample") / "data" / DEFAULT_MODEL_RESOURCE
                cls._default = cls(model_file.loads(res.read_text("utf-8"), DEFAULT_MODEL_RESOURCE))
            return cls._default

    def __reduce__(self) -> tuple:
        m = self.model
        return (_rebuild, (m.pieces, m.piece_scores.tolist(), m.special_tokens, m.normalizer.to_json()))

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, max_piece_bytes={self.model.max_piece_len})"

    # -- vocabulary --------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids: special tokens plus pieces."""
        return len(self.model)

    def __len__(self) -> int:
        """The number of ids (``vocab_size``)."""
        return len(self.model)

    def get_vocab(self) -> dict[str, int]:
        """Every id by its piece's display form (``id_to_piece``; special tokens by
        name), as Hugging Face tokenizers' ``get_vocab`` gives it."""
        return {self.id_to_piece(i): i for i in range(self.vocab_size)}

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

        A str is looked up as a special token name, then as a piece's display (what
        ``id_to_piece`` and ``tokenize`` give, ``pieces.piece_display``: ``"▁the"`` is
        the piece b" the"), then as the piece's own UTF-8 text.  Raises ``KeyError`` if
        there is no such piece.
        """
        if isinstance(piece, str):
            sid = self.model.special_id(piece)
            if sid is not None:
                return sid
            key = piece_from_display(piece)
            if self.model.piece_id(key) is None:
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
        epoch: int = 0,
        index: int = 0,
        entropy_per_byte: float | None = None,
        extra_tokens: float | None = None,
        return_offsets: bool = False,
    ) -> list[int] | tuple[list[int], list[tuple[int, int]]]:
        """Token ids of ``text``: the Viterbi path, or with ``alpha`` one exact sample.

        The sample is drawn from the stream (seed, epoch, index, 0), so it is the one
        ``encode_batch`` gives for a text at position ``index`` of the corpus in that
        epoch: a data loader's ``__getitem__`` can call ``encode(x, alpha, seed,
        epoch=e, index=i)`` and get the same samples whatever its workers and batches.
        ``seed=None`` draws a fresh seed from the OS; a given seed reproduces the sample
        exactly, in any process.  ``entropy_per_byte`` (bits) or ``extra_tokens`` instead
        of ``alpha`` samples with the alpha calibrated on this one text
        (``alpha_for_entropy``, ``alpha_for_length``).  ``return_offsets=True`` returns
        ``(ids, spans)``, each token's (start, end) in ``text`` (characters of a str, bytes
        of bytes; see ``offsets.py``).
        """
        # The per-call path of data loaders: each step is the cheapest form of its check.
        try:
            data = text.encode() if type(text) is str and self._identity else self._bytes_of(text)
        except UnicodeEncodeError:  # a lone surrogate: surrogateescape, or a clear error
            data = self._bytes_of(text)
        e = epoch if type(epoch) is int and 0 <= epoch <= UINT64_MAX else check_uint64(epoch, "epoch")
        i = index if type(index) is int and 0 <= index <= UINT64_MAX else check_uint64(index, "index")
        if alpha is None and entropy_per_byte is None and extra_tokens is None:
            ids = self._engine.encode_one(data, lattice.VITERBI)
        else:
            if type(alpha) is float and 0.0 <= alpha < math.inf and entropy_per_byte is extra_tokens is None:
                a = alpha + 0.0  # -0.0 is 0.0
            else:
                a = kernel_alpha(self._calibrated(alpha, entropy_per_byte, extra_tokens, [data]))
            if a == lattice.VITERBI:
                ids = self._engine.encode_one(data, a)
            else:
                s = seed if type(seed) is int and 0 <= seed <= UINT64_MAX else check_seed(seed)
                ids = self._engine.encode_one(data, a, s, e, i)
        if return_offsets:
            return ids, self.token_spans(text, ids)
        return ids

    def token_spans(self, text: Text, ids: Sequence[int]) -> list[tuple[int, int]]:
        """Each token's (start, end) in ``text``, for ``ids`` that segment it (any Viterbi
        path or sample of it): characters of a str, bytes of bytes, through the
        normalizer; (0, 0) for special tokens.  See ``offsets.py``."""
        return self._spans_of(text, check_ids(ids, self.vocab_size))

    def _spans_of(self, text: Text, ids: np.ndarray) -> list[tuple[int, int]]:
        """``token_spans`` of checked ids of this model's lattice."""
        data = to_bytes(text)
        lengths = self.model.lengths[ids].astype(np.int64)
        norm = self.model.normalizer
        normalized, source = (data, None) if self._identity else norm.normalize_with_offsets(data)
        if int(lengths.sum()) != len(normalized):
            raise ValueError(
                f"the ids spell {int(lengths.sum())} bytes, but the text has {len(normalized)} to segment"
            )
        return offsets.token_spans(lengths, source, offsets.char_of_byte(text, data))

    def __call__(
        self,
        texts: Text | Iterable[Text],
        alpha: float | None = None,
        seed: int | None = None,
        *,
        epoch: int = 0,
        index: int = 0,
        add_bos: bool = False,
        add_eos: bool = False,
        max_length: int | None = None,
        truncation: bool = False,
        padding: bool | str = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str = "right",
        return_tensors: str | None = None,
        return_offsets: bool = False,
        extra_tokens: float | None = None,
        entropy_per_byte: float | None = None,
        num_threads: int | None = None,
    ) -> dict[str, Any]:
        """Texts as model inputs: ``{"input_ids", "attention_mask"}`` (and ``"offsets"``).

        The texts are encoded as ``encode_batch`` does (Viterbi, or with ``alpha`` the
        samples keyed by (seed, epoch, index + k) for text k, so text k gets what
        ``encode(text, alpha, seed, epoch=epoch, index=index + k)`` gives), then
        ``inputs.model_inputs`` adds ``add_bos``/``add_eos`` tokens, truncates to
        ``max_length`` keeping whole tokens (``truncation=True``), pads (``padding=True``
        to the longest row, ``"max_length"``, rounded up to ``pad_to_multiple_of``) with
        ``pad_id`` on ``padding_side``, and converts (``return_tensors`` None: lists,
        ``"np"``: int64 arrays, ``"pt"``: PyTorch tensors).  One str gives unbatched
        lists (a batch of one with ``return_tensors``), as Hugging Face's tokenizers do.
        ``extra_tokens`` or ``entropy_per_byte`` instead of ``alpha`` calibrate alpha on
        these texts (for a data set, calibrate once: ``loader.SubwordRegularization``).
        """
        options = self.input_options(
            add_bos=add_bos, add_eos=add_eos, max_length=max_length, truncation=truncation, padding=padding,
            pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side, return_tensors=return_tensors,
        )
        single = isinstance(texts, (str, bytes, bytearray, memoryview))
        batch = [texts] if single else check_texts(texts)
        if single:
            found = self.encode(texts, alpha, seed, epoch=epoch, index=index, entropy_per_byte=entropy_per_byte,
                                extra_tokens=extra_tokens, return_offsets=return_offsets)
            rows, spans = ([found[0]], [found[1]]) if return_offsets else ([found], None)
        else:
            found = self.encode_batch(batch, alpha, seed, epoch, num_threads, index, entropy_per_byte=entropy_per_byte,
                                      extra_tokens=extra_tokens, return_offsets=return_offsets)
            rows, spans = found if return_offsets else (found, None)
        out = model_inputs(rows, options, spans)
        return {k: v[0] for k, v in out.items()} if single and return_tensors is None else out

    def input_options(self, *, add_bos: bool = False, add_eos: bool = False, **options: Any) -> InputOptions:
        """``inputs.InputOptions`` with this model's bos, eos and pad ids (``ValueError``
        when one is asked for and the model has no such token)."""
        for flag, name, i in ((add_bos, "bos", self.bos_id), (add_eos, "eos", self.eos_id)):
            if not isinstance(flag, bool):
                raise TypeError(f"add_{name} must be True or False, got {flag!r}")
            if flag and i is None:
                raise ValueError(f"add_{name}=True, but this model has no {name} token "
                                 f"(special tokens: {list(self.special_tokens)})")
        return InputOptions(bos_id=self.bos_id if add_bos else None, eos_id=self.eos_id if add_eos else None,
                            pad_id=self.pad_id, **options)

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
        """``n`` exact samples of q_alpha for one text, as lists of ids.

        With replacement (default): ``n`` independent samples, all from one forward pass;
        sample k uses the stream (seed, epoch 0, index 0, draw k), so sample 0 is
        ``encode(text, alpha, seed)``.  ``replace=False``: ``n`` distinct samples, drawn
        without replacement (``sample_distinct`` gives them with their probabilities).
        ``include_best=True`` puts the Viterbi path first, in place of one sample.
        """
        if not replace:
            found = self.sample_distinct(text, alpha, n, seed=seed, include_best=include_best)
            return [ids for ids, _, _ in found]
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
        seed: int | None = None,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
        *,
        entropy_per_byte: float | None = None,
        extra_tokens: float | None = None,
        return_offsets: bool = False,
    ) -> list[list[int]] | tuple[list[list[int]], list[list[tuple[int, int]]]]:
        """``encode`` of many texts, in parallel.

        Text k of the batch samples from the stream (seed, epoch, first_index + k, 0), as
        ``encode(text, alpha, seed, epoch=epoch, index=first_index + k)`` does; ``seed=None``
        draws one fresh seed from the OS for the whole batch, as in ``encode``:
        when a corpus is split into batches, pass each batch's position in the corpus as
        ``first_index`` and the samples equal those of one big batch.  ``num_threads``
        (default: all cores) never changes the output.  ``entropy_per_byte`` (bits)
        instead of ``alpha`` calibrates one alpha over this whole batch
        (``alpha_for_entropy``), and ``extra_tokens`` likewise (``alpha_for_length``); for
        a corpus, calibrate once on a sample and pass alpha.  ``return_offsets=True``
        returns ``(rows, spans)``: each token's (start, end) in its text (``token_spans``).
        """
        originals = check_texts(texts)
        texts = self._prepare(originals)
        alpha = self._calibrated(alpha, entropy_per_byte, extra_tokens, texts, num_threads)
        # Each chunk becomes lists on the thread that encoded it, while others encode.
        chunks = self._engine.encoded_chunks(texts, alpha, seed, epoch, num_threads, first_index,
                                             finish=self._engine.rows)
        rows = [row for rows in chunks for row in rows]
        if return_offsets:
            return rows, [self.token_spans(t, r) for t, r in zip(originals, rows)]
        return rows

    def sample_batch(
        self,
        texts: Iterable[Text],
        alpha: float,
        n: int,
        seed: int | None = None,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
    ) -> list[list[list[int]]]:
        """``n`` exact samples of each text, from one forward pass per text.

        Sample d of text k uses the stream (seed, epoch, first_index + k, d), so sample 0
        equals ``encode_batch`` and ``sample_batch([x], ...)[0] == sample(x, ...)``.
        """
        texts = self._prepare(texts)
        a = check_alpha(alpha)
        draws = _check_draws(texts, n, as_lists=True)
        chunks = self._engine.encoded_chunks(texts, a, seed, epoch, num_threads, first_index, draws,
                                             self._engine.rows)
        rows = [row for part in chunks for row in part]
        return [rows[k * n : (k + 1) * n] for k in range(len(texts))]

    def encode_batch_arrays(
        self,
        texts: Iterable[Text],
        alpha: float | None = None,
        seed: int | None = None,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
        *,
        entropy_per_byte: float | None = None,
        extra_tokens: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like ``encode_batch`` but as NumPy arrays, without a Python int per token.

        Returns ``(ids, offsets)``: int32 ids of all texts back to back, and int64
        offsets of length ``len(texts) + 1``; text k is ``ids[offsets[k]:offsets[k+1]]``.
        No texts give no ids and the offsets ``[0]``.
        """
        texts = self._prepare(texts)
        alpha = self._calibrated(alpha, entropy_per_byte, extra_tokens, texts, num_threads)
        return joined(self._engine.encoded_chunks(texts, alpha, seed, epoch, num_threads, first_index))

    def sample_batch_arrays(
        self,
        texts: Iterable[Text],
        alpha: float,
        n: int,
        seed: int | None = None,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``sample_batch`` as NumPy arrays: ``(ids, offsets)`` with ``len(texts) * n + 1``
        offsets; sample d of text k is ``ids[offsets[k * n + d]:offsets[k * n + d + 1]]``.
        No texts (or ``n = 0``) give no ids and the offsets ``[0]``."""
        texts = self._prepare(texts)
        a = check_alpha(alpha)
        draws = _check_draws(texts, n, as_lists=False)
        return joined(self._engine.encoded_chunks(texts, a, seed, epoch, num_threads, first_index, draws))

    def _calibrated(self, alpha, entropy_per_byte, extra_tokens, texts, num_threads=None):
        """``alpha``, or the one calibrated on ``texts`` (already prepared) for a target
        entropy per byte or share of extra tokens."""
        given = [name for name, v in (("alpha", alpha), ("entropy_per_byte", entropy_per_byte),
                                      ("extra_tokens", extra_tokens)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"give one of alpha, entropy_per_byte and extra_tokens, not both {given[0]} and {given[1]}")
        if entropy_per_byte is not None:
            return calibrate.alpha_for_entropy(self._engine, texts, entropy_per_byte, num_threads)
        if extra_tokens is not None:
            return calibrate.alpha_for_length(self._engine, texts, extra_tokens, num_threads)
        return alpha

    def _prepare(self, texts: Iterable[Text]) -> list:
        """Every text's way in: through the model's normalizer (skipped when it is the
        identity), then to bytes (``text.pack`` or ``to_bytes``, later)."""
        texts = check_texts(texts)
        norm = self.model.normalizer
        return texts if norm.is_identity else norm.normalize_batch([to_bytes(t) for t in texts])

    def _prepare_one(self, text: Text) -> Text:
        norm = self.model.normalizer
        return text if norm.is_identity else norm.normalize(to_bytes(text))

    def _bytes_of(self, text: Text) -> bytes:
        """One text's bytes after the normalizer (``_prepare_one`` then ``to_bytes``).
        (Where strict UTF-8 works, ``str.encode()`` gives what surrogateescape gives.)"""
        return to_bytes(self._prepare_one(text))

    def _weights(self, alpha: float) -> np.ndarray:
        """The linear sampler's weights at ``alpha``; empty where it runs in the log domain."""
        return self._engine.weights(alpha)

    # -- scores of texts and segmentations ----------------------------------------------
    def log_partition(self, text: Text, alpha: float = 1.0) -> float:
        """log Z_alpha(text) = log of the sum over all segmentations w of exp(alpha S(w))."""
        return float(self.log_partition_batch([text], alpha)[0])

    def log_partition_batch(
        self, texts: Iterable[Text], alpha: float = 1.0, num_threads: int | None = None
    ) -> np.ndarray:
        """``log_partition`` of each text, as a float64 array."""
        return queries.log_partition_parts(self._engine, self._prepare(texts), alpha, num_threads)[0]

    def count_edges_batch(self, texts: Iterable[Text], num_threads: int | None = None) -> np.ndarray:
        """Number of lattice edges (pieces occurring at each position) of each text."""
        return queries.count_edges_batch(self._engine, self._prepare(texts), num_threads)

    def stats_batch(
        self,
        texts: Iterable[Text],
        alpha: float = 1.0,
        num_threads: int | None = None,
        text_weights: Sequence[float] | np.ndarray | None = None,
        piece_counts: bool = False,
        viterbi_length: bool = False,
    ) -> dict[str, np.ndarray]:
        """Exact summaries of q_alpha for each text, by forward-backward (ALGORITHMS.md
        section 5; in the linear domain where the weights allow it, else in log space).

        Returns a dict of float64 arrays, one entry per text: ``log_z`` (log Z_alpha),
        ``entropy`` (nats), ``expected_length`` (expected number of tokens) and
        ``expected_score`` (E[S]).  With ``piece_counts=True`` also ``counts``: per id,
        the expected number of uses summed over the texts, each text weighted by
        ``text_weights`` (default 1).  Sums are taken over chunks cut by size alone, in
        order, so they do not depend on ``num_threads``.  With ``viterbi_length=True``
        also ``viterbi_length``: the number of tokens of each text's Viterbi path (int64).
        """
        return queries.stats_batch(self._engine, self._prepare(texts), alpha, num_threads, text_weights,
                                   piece_counts, viterbi_length)

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
        return queries.marginals(self._engine, self._prepare_one(text), alpha, by)

    def log_prob(self, text: Text, ids: Sequence[int], alpha: float = 1.0) -> float:
        """log q_alpha(ids | text) = alpha * S(ids) - log Z_alpha(text).

        Raises ``ValueError`` if ``ids`` is not a segmentation of ``text`` (special tokens
        are not part of any segmentation).
        """
        return queries.log_prob(self._engine, self._prepare_one(text), ids, alpha)

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
        return queries.nbest_batch(self._engine, self._prepare(texts), k, num_threads)

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
        seed: int | None = None,
        epoch: int = 0,
        num_threads: int | None = None,
        first_index: int = 0,
        include_best: bool = False,
    ) -> list[list[tuple[list[int], float, float]]]:
        """``sample_distinct`` of each text; text k uses the stream
        (seed, epoch, first_index + k, 0), so results do not depend on threads."""
        return queries.sample_distinct_batch(
            self._engine, self._prepare(texts), alpha, n, seed, epoch, num_threads, first_index, include_best
        )

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
        return calibrate.alpha_for_entropy(self._engine, self._prepare(texts), bits_per_byte, num_threads)

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
        return calibrate.alpha_for_length(self._engine, self._prepare(texts), extra_tokens, num_threads)

    # -- decoding ----------------------------------------------------------------------
    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The exact bytes spelled by ``ids`` (special tokens spell nothing).

        Lossless: ``decode_bytes(encode(x)) == bytes of x`` for every text and every sample.
        """
        table = self.model.decode_table
        return b"".join([table[i] for i in check_ids(ids, self.vocab_size).tolist()])

    def decode_batch(self, batch: Iterable[Sequence[int]], errors: str = "replace") -> list[str]:
        """``decode`` of each list of ids."""
        return [self.decode(ids, errors) for ids in batch]

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


def _nothing():
    return contextlib.nullcontext(None)


def _rebuild(pieces, scores, specials, normalizer=None) -> Tokenizer:
    return Tokenizer(Model(pieces, scores, specials, normalize.from_json(normalizer or {"kind": "identity"})))


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
