"""Pruning: which pieces the vocabulary can lose most cheaply (ALGORITHMS.md section 7.4).

Removing piece w sends each of its uses to the best segmentation of its own bytes
without it, A(w) (``lattice.alternative_items``), so the log-likelihood of the corpus
falls by about c_w * (log p(w) - log p(A(w))), with c_w the expected uses of w from the
last E-step.  The pieces whose removal costs least go first; single bytes and user
pieces are never removed.

Not here: the E-step that gives c_w (``train/em.py``).
"""

from __future__ import annotations

import numpy as np

from .. import lattice
from ..model import KernelArrays


def removal_loss(
    arrays: KernelArrays,
    pieces: tuple[np.ndarray, np.ndarray, np.ndarray],
    candidates: np.ndarray,
    expected: np.ndarray,
) -> np.ndarray:
    """Estimated log-likelihood lost by removing each of the ``candidates`` (indices into
    the pieces, whose bytes are ``buf[starts[i]:ends[i]]`` of the packed ``pieces``)."""
    buf, starts, ends = pieces
    alternative = np.empty(len(candidates), np.float64)
    lattice.alternative_items(
        arrays.suffix_trie, arrays.scores, buf, starts[candidates], ends[candidates], alternative, 0,
        len(candidates),
    )
    own = arrays.scores[arrays.num_special + candidates]
    return expected[candidates] * (own - alternative)


def survivors(loss: np.ndarray, size: int) -> np.ndarray:
    """Mask of the ``size`` entries whose removal costs most (ties: the earlier one)."""
    order = np.argsort(-loss, kind="stable")
    keep = np.zeros(len(loss), bool)
    keep[order[:size]] = True
    return keep
