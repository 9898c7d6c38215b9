"""Legacy research methods, kept to compare against: not for training data.

``viterbi_sampling`` is BytePiece's first sampler ("Viterbi Sampling", bytepiece 0.4.0).
It is NOT an exact sampler of q_alpha(w) = exp(alpha S(w)) / Z_alpha: use
``Tokenizer.encode(text, alpha, seed)`` (or ``sample``, ``sample_batch``) for that.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .checks import check_alpha, check_count, check_seed, check_uint64
from .lattice.forward import STATUS_BAD_PATH
from .lattice.legacy import viterbi_sampling_draws
from .tokenizer import Tokenizer

__all__ = ["viterbi_sampling"]


def viterbi_sampling(
    tokenizer: Tokenizer,
    text: Any,
    alpha: float,
    seed: int | None = None,
    *,
    n: int | None = None,
    epoch: int = 0,
    index: int = 0,
) -> list[int] | list[list[int]]:
    """BytePiece 0.4.0's "Viterbi Sampling" of ``text``: NOT an exact sampler of q_alpha.

    A Viterbi forward pass in which, at each position, the pieces ending there are
    visited longest first and each one after the first replaces the held one with
    probability sigmoid(alpha * (its path score - the held path's score)), the held
    score being that of the one path held, not a sum over paths (``lattice/legacy.py``
    has the exact rule and its source).  Because it ignores how many paths reach each
    position, the segmentations it returns do not follow q_alpha: on five short texts of
    the BytePiece test model (alpha 0 to 1) its exact distribution, enumerated, is 0.15
    to 0.30 away from q_alpha in total variation (``tests/test_bytepiece.py``).  Kept as
    a documented baseline for comparisons, and to reproduce results that used it.

    ``alpha``: a finite number >= 0, the slope of the sigmoid applied to score
    differences.  It is not the exponent of q_alpha, and the same number does not give
    a comparable spread of segmentations (alpha = 0 flips a fair coin for each later
    candidate, which is not uniform over segmentations; BytePiece 0.4.0 ran Viterbi for
    alpha <= 0).  Uses the
    tokenizer's normalizer and lattice.  ``n=None`` returns one list of ids; an int n
    returns n of them, sample d drawn from the stream (seed, epoch, index, d) of
    ``rng.py``; ``seed=None`` draws a fresh seed.
    """
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a Tokenizer, got {type(tokenizer).__name__}")
    a = check_alpha(alpha)
    if a == math.inf:
        raise ValueError("alpha must be finite for Viterbi Sampling (alpha = inf is Viterbi: use encode(text))")
    draws = 1 if n is None else check_count(n, "n", 0, 2**31 - 1)
    s = check_seed(seed)
    e = check_uint64(epoch, "epoch")
    i = check_uint64(index, "index")
    data = tokenizer._bytes_of(text)
    buf = np.frombuffer(data, np.uint8) if data else np.zeros(0, np.uint8)
    model = tokenizer.model
    trie = model.suffix_trie
    out = np.empty(max(1, draws * len(data)), np.int32)
    offsets = np.empty(draws + 1, np.int64)
    status = viterbi_sampling_draws(
        trie.base, trie.check, trie.value, max(1, trie.max_len), model.scores, model.lengths, a, buf, draws,
        np.uint64(s), np.uint64(e), np.uint64(i), out, offsets,
    )
    if status == STATUS_BAD_PATH:
        raise RuntimeError(f"Viterbi Sampling found no path through the lattice of {data[:60]!r}")
    rows = [out[offsets[d] : offsets[d + 1]].tolist() for d in range(draws)]
    return rows[0] if n is None else rows
