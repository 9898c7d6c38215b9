"""One round of Unigram EM on the lattice kernels (ALGORITHMS.md section 7, steps 2-3).

E-step: the expected uses of every piece under the current model, summed over the units
with their counts, by the same forward-backward kernels that serve ``Tokenizer.marginals``
and ``stats_batch`` (``engine.lattice_stats``); the log-likelihood of the units comes
with it.  M-step: new log-probabilities by ``logmath.digamma_log_probabilities``, which
favours sparse vocabularies, after dropping pieces used less than ``min_count`` times.

Not here: which pieces to remove beyond that (``train/prune.py``).
"""

from __future__ import annotations

import numpy as np

from ..logmath import digamma_log_probabilities
from ..model import KernelArrays
from ..engine import lattice_stats
from .units import Units

# The smallest expected count an M-step scores a kept piece with: a piece kept although
# unused (a single byte, a user piece) gets a low but ordinary score, never -inf.
COUNT_FLOOR = 0.5


def e_step(arrays: KernelArrays, units: Units, threads: int) -> tuple[np.ndarray, float]:
    """(expected uses per piece id, without the special tokens; log-likelihood of the
    units).  Sums are taken over fixed-size chunks in order: the same for any ``threads``."""
    st = lattice_stats(arrays, units.buf, units.starts, units.ends, 1.0, threads, units.counts, True)
    return st["counts"][arrays.num_special :], float(units.counts @ st["log_z"])


def m_step(
    expected: np.ndarray, alive: np.ndarray, protected: int, min_count: float, at_least: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(new alive mask, log-probabilities of the pieces alive in it).  Of the ``alive``
    pieces, those used less than ``min_count`` times die, except the first ``protected``
    (single bytes, user pieces) and so many of the most used others that at least
    ``at_least`` pieces stay alive."""
    keep = alive & (expected >= min_count)
    keep[:protected] = alive[:protected]
    short = at_least - int(keep.sum())
    if short > 0:
        dropped = np.flatnonzero(alive & ~keep)
        keep[dropped[np.argsort(-expected[dropped], kind="stable")[:short]]] = True
    return keep, digamma_log_probabilities(np.maximum(expected[keep], COUNT_FLOOR))
