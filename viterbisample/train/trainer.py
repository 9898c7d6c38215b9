"""Unigram vocabulary training: seeds, EM on the lattice kernels, pruning by lost likelihood.

ALGORITHMS.md section 7.  The corpus becomes units (lines, or pre-tokens when a split
pattern is given) with counts; every step works on those:

1. Seeds: the frequent byte substrings (``substrings.count_substrings``), ranked by
   count * length, plus all 256 bytes and the user-defined pieces.
2. E-step: expected piece counts by forward-backward (``Tokenizer.stats_batch``, the same
   kernels as encoding), each unit weighted by its count; the log-likelihood is the sum
   of count * log Z over units.
3. M-step: log p(w) = digamma(c_w) - digamma(sum c), which favours sparse vocabularies;
   pieces whose expected count falls below ``min_expected`` are dropped.
4. Prune: a piece's removal would send its uses to its best alternative segmentation
   (the Viterbi path of its own bytes without it); the likelihood lost is about
   count * (log p(w) - sum of log p over that alternative).  The pieces losing least go,
   down to max(vocab_size, shrink * size) per round.  Single bytes and user-defined pieces
   are never removed.

Rounds of EM and pruning repeat until the vocabulary has exactly ``vocab_size`` ids
(special tokens included), then a last EM sets the scores.
"""

from __future__ import annotations

import sys
import warnings
from typing import Callable, Sequence

import numpy as np

from ..logmath import digamma
from ..model import DEFAULT_SPECIAL_TOKENS
from ..text import pack
from ..tokenizer import Tokenizer
from .substrings import count_substrings


def _utf8_whole(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


SEED_SAMPLE_BYTES = 4_000_000


def seed_pieces(
    units: list[bytes],
    counts: np.ndarray,
    size: int,
    max_piece_bytes: int,
    whole_characters: bool,
    split_digits: bool,
    min_count: float = 2.0,
) -> tuple[list[bytes], np.ndarray]:
    """The ``size`` best multi-byte seeds by count * length, with their counts.

    Seeds only need to contain the pieces EM will keep, so past ``SEED_SAMPLE_BYTES`` of
    distinct units they are counted on a seeded random sample of units of that size (EM
    then scores them on the whole corpus).
    """
    total = sum(map(len, units))
    if total > SEED_SAMPLE_BYTES:
        order = np.random.default_rng(0).permutation(len(units))
        sizes = np.fromiter((len(units[i]) for i in order), np.int64, len(units))
        take = np.sort(order[: int(np.searchsorted(np.cumsum(sizes), SEED_SAMPLE_BYTES)) + 1])
        units = [units[i] for i in take]
        counts = counts[take]
    buf, starts, ends = pack(units)
    pos, length, count, byte_counts = count_substrings(
        buf, starts, ends, counts.astype(np.float64), max_piece_bytes, min_count
    )
    order = np.argsort(-(count * length), kind="stable")
    raw = buf.tobytes()
    pieces: list[bytes] = []
    kept: list[float] = []
    for k in order.tolist():
        p = raw[pos[k] : pos[k] + length[k]]
        if whole_characters and not _utf8_whole(p):
            continue
        if split_digits and any(48 <= b <= 57 for b in p):
            continue
        pieces.append(p)
        kept.append(float(count[k]))
        if len(pieces) >= size:
            break
    return pieces, np.array(kept)


class Trainer:
    """One training run; see ``viterbisample.train.train`` for the options."""

    def __init__(
        self,
        vocab_size: int,
        max_piece_bytes: int = 16,
        whole_characters: bool = True,
        split_digits: bool = False,
        user_pieces: Sequence[bytes] = (),
        special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
        seed_size: int | None = None,
        shrink: float = 0.75,
        em_iterations: int = 2,
        threads: int | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.vocab_size = vocab_size
        self.max_piece_bytes = max_piece_bytes
        self.whole_characters = whole_characters
        self.split_digits = split_digits
        self.user_pieces = list(dict.fromkeys(user_pieces))
        self.special_tokens = tuple(special_tokens)
        self.seed_size = seed_size or max(8 * vocab_size, 100_000)
        self.shrink = shrink
        self.em_iterations = em_iterations
        self.threads = threads
        self.log = log or (lambda message: None)

    # A piece set is (pieces, log-probabilities); bytes first, then user pieces.
    def _tokenizer(self, pieces: list[bytes], logp: np.ndarray) -> Tokenizer:
        return Tokenizer.from_pieces(pieces, logp, self.special_tokens)

    def _em(self, pieces, logp, units, counts):
        tok = self._tokenizer(pieces, logp)
        st = tok.stats_batch(units, 1.0, num_threads=self.threads, text_weights=counts, piece_counts=True)
        expected = st["counts"][len(self.special_tokens):]
        loglik = float((counts * st["log_z"]).sum())
        return expected, loglik

    def _m_step(self, expected: np.ndarray, protected: int, min_expected: float = 0.5):
        """Digamma M-step; returns (keep mask, new log-probabilities of the kept)."""
        keep = expected >= min_expected
        keep[:protected] = True
        c = np.maximum(expected[keep], 1e-12)
        total = c.sum()
        dg_total = digamma(total)
        logp = np.array([digamma(x) - dg_total for x in c.tolist()])
        return keep, logp

    def run(self, units: list[bytes], counts: np.ndarray) -> Tokenizer:
        if not units or counts.sum() == 0:
            raise ValueError("the corpus is empty: nothing to train on")
        n_special = len(self.special_tokens)
        bytes_ = [bytes([b]) for b in range(256)]
        users = [p for p in self.user_pieces if len(p) > 1]
        protected = 256 + len(users)
        if self.vocab_size < n_special + protected:
            raise ValueError(
                f"vocab_size must be at least {n_special + protected} (the {n_special} special "
                f"tokens, the 256 single bytes and {len(users)} user-defined pieces), got {self.vocab_size}"
            )
        target = self.vocab_size - n_special
        self.log(f"seeding from {len(units)} units ({sum(map(len, units)) / 1e6:.1f} MB)")
        seeds, seed_counts = seed_pieces(
            units, counts, self.seed_size, self.max_piece_bytes, self.whole_characters,
            self.split_digits,
        )
        user_set = set(users) | set(bytes_)
        seeds_kept = [(p, c) for p, c in zip(seeds, seed_counts.tolist()) if p not in user_set]
        pieces = bytes_ + users + [p for p, _ in seeds_kept]
        # Initial scores: log relative counts (bytes counted once per occurrence).
        init = np.array([1.0] * protected + [c for _, c in seeds_kept])
        logp = np.log(init / init.sum())
        self.log(f"{len(pieces)} seed pieces")
        round_no = 0
        final = len(pieces) <= target
        while True:
            round_no += 1
            for _ in range(self.em_iterations):
                expected, loglik = self._em(pieces, logp, units, counts)
                # Once pruned to size, EM only re-scores: dropping would undershoot.
                keep, logp = self._m_step(expected, protected, 0.0 if final else 0.5)
                pieces = [p for p, k in zip(pieces, keep.tolist()) if k]
                self.log(f"round {round_no}: {len(pieces)} pieces, log-likelihood {loglik:.6g}")
            if final or len(pieces) <= target:
                break
            pieces, logp = self._prune(pieces, logp, units, counts, protected, target)
            final = len(pieces) <= target
        if len(pieces) < target:
            message = (
                f"the corpus supports only {len(pieces) + n_special} ids (pieces seen at least "
                f"twice, plus the 256 bytes); the model stops below vocab_size={self.vocab_size}"
            )
            self.log(message)
            warnings.warn(message, stacklevel=3)
        return self._tokenizer(pieces, logp)

    def _prune(self, pieces, logp, units, counts, protected, target):
        """Drop the pieces whose removal loses least likelihood.

        Removing piece w hands its expected uses c_w to its best alternative segmentation
        A(w) (the better of its own bytes' two best segmentations that is not w alone):
        the log-likelihood falls by about c_w (log p(w) - sum over a in A(w) of log p(a)).
        """
        size = max(target, int(len(pieces) * self.shrink))
        tok = self._tokenizer(pieces, logp)
        s = len(self.special_tokens)
        expected, _ = self._em(pieces, logp, units, counts)
        candidates = list(range(protected, len(pieces)))
        alts = tok.nbest_batch([pieces[i] for i in candidates], 2, num_threads=self.threads)
        loss = np.full(len(pieces), np.inf)  # protected pieces sort first and stay
        for i, found in zip(candidates, alts):
            alt = next(ids for ids, _ in found if ids != [s + i])
            loss[i] = expected[i] * (logp[i] - sum(logp[j - s] for j in alt))
        order = np.argsort(-loss, kind="stable")
        keep = np.zeros(len(pieces), bool)
        keep[order[:size]] = True
        new_pieces = [p for p, k in zip(pieces, keep.tolist()) if k]
        return new_pieces, logp[keep]


def stderr_log(message: str) -> None:
    if sys.stderr.isatty():
        print(f"vsample train: {message}", file=sys.stderr)

