"""``Model``: the vocabulary, its invariants, and the flat arrays the kernels read.

Ids ``0 .. S-1`` are the special tokens (pad, bos, eos and user-defined ones, by name);
ids ``S ..`` are byte-string pieces with float64 natural-log scores.  Every one of the 256
single bytes is a piece, so every byte string has a segmentation and decoding is lossless.
Scores must be finite with ``|score| <= MAX_ABS_SCORE`` (1e4): a log-probability below
-1e4 is a probability under 1e-4342, far beyond anything a model learns, and the bound
keeps ``alpha * score`` sums of the lattice passes far from overflow.  Every way to build
a model (the file loader, ``Tokenizer.from_pieces``, the SentencePiece importer) checks
it, since they all go through the constructor.
Special tokens are never produced from raw text: they are not in the trie.

The constructor is the only way to build a model (the file loader goes through it too), so
a model that exists is valid: that is what lets the kernels skip bounds checks.
"""

from __future__ import annotations

from functools import cached_property
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from .normalize import IDENTITY, Normalizer
from .trie import Trie, build_trie

DEFAULT_SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")
# The sampler records which piece lengths start and end at each position in a uint64 bit
# mask, so pieces are at most 64 bytes (SentencePiece's default limit is 16 characters).
MAX_PIECE_BYTES = 64
# Scores are natural-log probabilities: finite, with |score| at most this (see above).
MAX_ABS_SCORE = 1e4


class KernelArrays(NamedTuple):
    """What the lattice kernels read of a vocabulary: both tries and the per-id arrays.

    A ``Model`` gives its own (``Model.kernel_arrays``); the trainer builds its tries once
    over all seed pieces and, as pieces are pruned, hides them from the tries instead of
    rebuilding them (``Trie.without``).
    """

    trie: Trie  # pieces, walked forward from a position
    suffix_trie: Trie  # reversed pieces, walked backward: the pieces ending at a position
    scores: np.ndarray  # float64 per id
    lengths: np.ndarray  # int32 per id
    num_special: int  # ids below this are special tokens, never in a lattice
    # The paths across one character where not every byte is a piece (rows of ids, -1
    # padded; ``logmath.linear_domain_weights``); None: the single bytes.
    steps: np.ndarray | None = None

    @property
    def max_len(self) -> int:
        return max(1, self.trie.max_len)


class Model:
    """An immutable Unigram vocabulary.

    Parameters
    ----------
    pieces : sequence of bytes (or str, taken as UTF-8)
        Distinct, non-empty pieces.  Must include all 256 single bytes.
    scores : sequence of float
        Natural-log scores, one per piece: finite, ``|score| <= MAX_ABS_SCORE`` (1e4).
    special_tokens : sequence of str
        Names of the special tokens, given ids 0, 1, ... in this order.
    normalizer : Normalizer
        The stage every text passes before it is segmented (``normalize.py``; default
        ``identity``).

    Raises
    ------
    TypeError, ValueError
        Naming the offending piece, score or token.
    """

    def __init__(
        self,
        pieces: Sequence[bytes | str],
        scores: Sequence[float] | np.ndarray,
        special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
        normalizer: Normalizer = IDENTITY,
    ) -> None:
        if not isinstance(normalizer, Normalizer):
            raise TypeError(f"normalizer must be a Normalizer, got {type(normalizer).__name__}")
        self.normalizer = normalizer
        self.special_tokens: tuple[str, ...] = _check_specials(special_tokens)
        self.pieces: tuple[bytes, ...] = _check_pieces(pieces)
        self.piece_scores: np.ndarray = _check_scores(scores, len(self.pieces))
        if len(self._piece_index) != len(self.pieces):
            seen: set[bytes] = set()
            for p in self.pieces:
                if p in seen:
                    raise ValueError(f"duplicate piece {p!r}")
                seen.add(p)
        missing = [b for b in range(256) if bytes([b]) not in self._piece_index]
        if missing:
            shown = ", ".join(f"0x{b:02x}" for b in missing[:8])
            more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
            raise ValueError(
                f"the vocabulary lacks {len(missing)} of the 256 single-byte pieces "
                f"({shown}{more}); every byte must be a piece so that any text can be encoded"
            )
        self._special_index = {name: i for i, name in enumerate(self.special_tokens)}

    @cached_property
    def _piece_index(self) -> dict[bytes, int]:
        s = len(self.special_tokens)
        return {p: i + s for i, p in enumerate(self.pieces)}

    # -- sizes and lookups -------------------------------------------------------------
    @property
    def num_special(self) -> int:
        return len(self.special_tokens)

    def __len__(self) -> int:
        return len(self.special_tokens) + len(self.pieces)

    def special_id(self, name: str) -> int | None:
        return self._special_index.get(name)

    def piece_id(self, piece: bytes) -> int | None:
        return self._piece_index.get(piece)

    def piece_bytes(self, id: int) -> bytes:
        """The bytes of piece ``id``; b"" for a special token."""
        s = len(self.special_tokens)
        return b"" if id < s else self.pieces[id - s]

    # -- flat arrays for the kernels (built once, on first use) --------------------------
    @cached_property
    def scores(self) -> np.ndarray:
        """float64 score per id; 0 for special tokens (they are never in a lattice)."""
        out = np.zeros(len(self), np.float64)
        out[self.num_special :] = self.piece_scores
        return out

    @cached_property
    def lengths(self) -> np.ndarray:
        """int32 byte length per id; 0 for special tokens."""
        out = np.zeros(len(self), np.int32)
        out[self.num_special :] = [len(p) for p in self.pieces]
        return out

    @cached_property
    def trie(self) -> Trie:
        s = self.num_special
        return build_trie(self.pieces, range(s, s + len(self.pieces)))

    @cached_property
    def suffix_trie(self) -> Trie:
        """The trie of reversed pieces: walked backward from a position, it lists the
        pieces that end there (what every pass in ``lattice/`` enumerates)."""
        s = self.num_special
        return build_trie(self.pieces, range(s, s + len(self.pieces)), reverse=True)

    @cached_property
    def kernel_arrays(self) -> KernelArrays:
        return KernelArrays(self.trie, self.suffix_trie, self.scores, self.lengths, self.num_special)

    @cached_property
    def decode_table(self) -> list[bytes]:
        """Bytes per id, specials as b"", for ``b"".join`` decoding."""
        return [b""] * self.num_special + list(self.pieces)

    @property
    def max_piece_len(self) -> int:
        return int(self.lengths.max())

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Model)
            and self.special_tokens == other.special_tokens
            and self.pieces == other.pieces
            and np.array_equal(self.piece_scores, other.piece_scores)
            and self.normalizer == other.normalizer
        )

    def __repr__(self) -> str:
        return (
            f"Model({len(self.pieces)} pieces, {len(self.special_tokens)} special tokens, "
            f"longest piece {self.max_piece_len} bytes)"
        )


def _check_specials(special_tokens: Iterable[str]) -> tuple[str, ...]:
    if isinstance(special_tokens, (str, bytes)):
        raise TypeError(
            f"special_tokens must be a sequence of str, got the single {type(special_tokens).__name__} "
            f"{special_tokens!r}; wrap it in a list"
        )
    out = tuple(special_tokens)
    seen: set[str] = set()
    for name in out:
        if not isinstance(name, str):
            raise TypeError(f"special token names must be str, got {name!r} ({type(name).__name__})")
        if not name:
            raise ValueError("special token names must be non-empty")
        if name in seen:
            raise ValueError(f"duplicate special token {name!r}")
        seen.add(name)
    return out


def _check_pieces(pieces: Iterable[bytes | str]) -> tuple[bytes, ...]:
    if isinstance(pieces, (str, bytes)):
        raise TypeError("pieces must be a sequence of bytes or str, not a single string")
    out = []
    for i, p in enumerate(pieces):
        if isinstance(p, str):
            p = p.encode("utf-8")
        elif isinstance(p, (bytearray, memoryview)):
            p = bytes(p)
        elif not isinstance(p, bytes):
            raise TypeError(f"piece {i} must be bytes or str, got {type(p).__name__} {p!r}")
        if not p:
            raise ValueError(f"piece {i} is empty; pieces must have at least one byte")
        if len(p) > MAX_PIECE_BYTES:
            raise ValueError(
                f"piece {i} is {len(p)} bytes long; the limit is {MAX_PIECE_BYTES} bytes"
            )
        out.append(p)
    return tuple(out)


def _check_scores(scores: Sequence[float] | np.ndarray, n: int) -> np.ndarray:
    if isinstance(scores, (str, bytes)):
        raise TypeError("scores must be a sequence of numbers")
    try:
        arr = np.array(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"scores must be numbers: {exc}") from None
    except OverflowError:  # a Python int beyond the float range
        raise ValueError(
            f"a score is too large for a float; scores must be finite with |score| <= {MAX_ABS_SCORE:g}"
        ) from None
    if arr.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"got {n} pieces but {arr.shape[0]} scores; give one score per piece")
    bad = np.flatnonzero(~(np.abs(arr) <= MAX_ABS_SCORE))  # NaN compares False: caught too
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"score {i} is {float(arr[i])!r}; scores are natural-log probabilities and must be "
            f"finite with |score| <= {MAX_ABS_SCORE:g}"
        )
    arr.setflags(write=False)
    return arr
