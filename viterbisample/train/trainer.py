"""Unigram vocabulary training: seeds, then rounds of EM and pruning (ALGORITHMS.md s. 7).

The corpus arrives as distinct units with counts (``train/units.py``); every step works
on them:

1. Seeds: the 256 single bytes, the user pieces, and the right-closed frequent
   substrings ranked by count * length (``train/seeds.py``).
2. A round: an EM iteration (``train/em.py``: expected counts by forward-backward on
   the encoding kernels, a digamma M-step that drops pieces used less than half a
   time), then pruning (``train/prune.py``) down to max(target, ``shrink`` * size).
3. Once the vocabulary has exactly ``vocab_size`` ids (special tokens included), two
   last EM iterations re-score it without dropping anything.

While the vocabulary is still much larger than the target, rounds run on a seeded sample
of the units of at most ``em_sample_bytes``: they only have to find the clearly useless
pieces, and the last rounds see every unit.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np

from ..checks import check_num_threads
from ..logmath import log_normalize
from ..model import DEFAULT_SPECIAL_TOKENS, KernelArrays
from ..text import pack
from ..trie import build_trie_packed
from ..tokenizer import Tokenizer
from .em import e_step, m_step
from ..progress import Progress
from .prune import removal_loss, survivors
from .seeds import seed_pieces
from .units import Units

# Rounds run on a sample of the units while the vocabulary is over this many times the
# target size.
SAMPLE_WHILE_ABOVE = 2.0
EM_SAMPLE_BYTES = 4_000_000


class Trainer:
    """One training run; ``viterbisample.train`` documents the options."""

    def __init__(
        self,
        vocab_size: int,
        max_piece_bytes: int = 24,
        whole_characters: bool = True,
        split_digits: bool = False,
        user_pieces: Sequence[bytes] = (),
        special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
        seed_size: int | None = None,
        shrink: float = 0.6,
        em_iterations: int = 1,
        final_iterations: int = 2,
        em_sample_bytes: int = EM_SAMPLE_BYTES,
        threads: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.vocab_size = vocab_size
        self.max_piece_bytes = max_piece_bytes
        self.whole_characters = whole_characters
        self.split_digits = split_digits
        self.user_pieces = [p for p in dict.fromkeys(user_pieces) if len(p) > 1]
        self.special_tokens = tuple(special_tokens)
        self.seed_size = seed_size or 4 * vocab_size
        self.shrink = shrink
        self.em_iterations = em_iterations
        self.final_iterations = final_iterations
        self.em_sample_bytes = em_sample_bytes
        self.threads = check_num_threads(threads)
        self.progress = progress or Progress(False)
        self.history: list[dict] = []  # one entry per EM iteration: round, size, log-likelihood
        smallest = len(self.special_tokens) + 256 + len(self.user_pieces)
        if vocab_size < smallest:
            raise ValueError(
                f"vocab_size must be at least {smallest} (the {len(self.special_tokens)} special "
                f"tokens, the 256 single bytes and {len(self.user_pieces)} user-defined pieces), "
                f"got {vocab_size}"
            )

    def run(self, units: Units, e_step: Callable[[KernelArrays, Units, int], tuple] = e_step) -> Tokenizer:
        """Train on ``units``.  ``e_step(arrays, units, threads)`` gives (expected counts,
        log-likelihood): ``em.e_step`` here, a cluster's in ``distributed.train``; both
        sum over the same chunks in the same order, so the model is the same."""
        if len(units) == 0 or units.counts.sum() == 0:
            raise ValueError("the corpus is empty: nothing to train on")
        n_special = len(self.special_tokens)
        protected = 256 + len(self.user_pieces)
        target = self.vocab_size - n_special
        show = self.progress
        show.live(f"seeding from {len(units):,} distinct units ({units.ends[-1] / 1e6:.1f} MB)")
        seeds, seed_counts = seed_pieces(
            units, self.seed_size, self.max_piece_bytes, self.whole_characters, self.split_digits
        )
        fixed = [bytes([b]) for b in range(256)] + self.user_pieces
        taken = set(fixed)
        chosen = [i for i, p in enumerate(seeds) if p not in taken]
        pieces = Pieces(fixed + [seeds[i] for i in chosen], n_special)
        init = np.concatenate([np.ones(protected), seed_counts[chosen]])
        logp = log_normalize(init)
        alive = np.ones(len(pieces), bool)
        show.done(f"seeds: {len(pieces):,} pieces ({len(chosen):,} frequent substrings)")

        sample = units
        if units.ends[-1] > self.em_sample_bytes:
            sample = units.subset(units.sample(self.em_sample_bytes))
        final = len(pieces) <= target
        round_no = 0
        while True:
            round_no += 1
            size = int(alive.sum())
            data = sample if (not final and size > SAMPLE_WHILE_ABOVE * target) else units
            for _ in range(self.final_iterations if final else self.em_iterations):
                show.live(f"round {round_no}: EM on {size:,} pieces")
                expected, loglik = e_step(pieces.arrays(alive, logp), data, self.threads)
                # Once pruned to size, EM only re-scores: dropping would undershoot.
                alive, kept_logp = m_step(expected, alive, protected, 0.0 if final else 0.5, target)
                logp[alive] = kept_logp
                size = int(alive.sum())
                per_byte = loglik / float(data.counts @ (data.ends - data.starts))
                self.history.append({"round": round_no, "pieces": size, "log_likelihood": loglik,
                                     "per_byte": per_byte, "sample": data is not units})
                show.done(f"round {round_no}: EM -> {size:,} pieces, log-likelihood "
                          f"{per_byte:.4f} nats/byte{' (sample)' if data is not units else ''}")
            if final:
                break
            if size <= target:
                final = True
                continue
            new_size = max(target, int(size * self.shrink))
            show.live(f"round {round_no}: pruning {size:,} pieces to {new_size:,}")
            candidates = np.flatnonzero(alive[protected:]) + protected
            loss = removal_loss(pieces.arrays(alive, logp), pieces.packed, candidates, expected)
            alive[candidates[~survivors(loss, new_size - (size - len(candidates)))]] = False
            size = int(alive.sum())
            show.done(f"round {round_no}: pruned to {size:,} pieces")
            final = size <= target
            if size < pieces.compact_below * len(pieces):
                pieces, logp, alive = pieces.compacted(alive, logp)
        if size < target:
            message = (
                f"the corpus supports only {size + n_special} ids (pieces used at least "
                f"half a time, plus the 256 bytes); the model stops below vocab_size={self.vocab_size}"
            )
            show.done(message)
            warnings.warn(message, stacklevel=3)
        # Bytes and user pieces first, then the learnt pieces, most probable first.
        kept = np.flatnonzero(alive)
        learnt = kept[protected:][np.argsort(-logp[kept[protected:]], kind="stable")]
        order = np.concatenate([kept[:protected], learnt])
        return Tokenizer.from_pieces([pieces.items[i] for i in order.tolist()], logp[order], self.special_tokens)


class Pieces:
    """The candidate pieces of a run with fixed ids (special tokens first), their tries
    built once, and the kernel arrays of any alive subset: pruned pieces are hidden from
    the tries (``Trie.without``) rather than rebuilt around, until few enough are left
    that walking past them costs more than a rebuild (``compacted``)."""

    compact_below = 0.75

    def __init__(self, items: list[bytes], num_special: int) -> None:
        self.items = items
        self.num_special = num_special
        self.packed = buf, starts, ends = pack(items)
        ids = np.arange(num_special, num_special + len(items))
        self.trie = build_trie_packed(buf, ends - starts, ids)
        self.suffix_trie = build_trie_packed(buf, ends - starts, ids, reverse=True)
        self.lengths = np.zeros(num_special + len(items), np.int32)
        self.lengths[num_special:] = ends - starts

    def __len__(self) -> int:
        return len(self.items)

    def arrays(self, alive: np.ndarray, logp: np.ndarray) -> KernelArrays:
        s = self.num_special
        dead = np.concatenate([np.zeros(s, bool), ~alive])
        scores = np.zeros(s + len(self.items), np.float64)
        # Dead ids are never matched; a live score keeps them out of the weights' range.
        scores[s:] = np.where(alive, logp, logp[alive].min())
        return KernelArrays(self.trie.without(dead), self.suffix_trie.without(dead), scores, self.lengths, s)

    def compacted(self, alive: np.ndarray, logp: np.ndarray) -> tuple["Pieces", np.ndarray, np.ndarray]:
        """The alive pieces alone, with new ids (in the same order)."""
        keep = np.flatnonzero(alive)
        return Pieces([self.items[i] for i in keep.tolist()], self.num_special), logp[keep], np.ones(len(keep), bool)
