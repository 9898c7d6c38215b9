"""Seed vocabularies: the most frequent byte substrings of a corpus.

``seed_pieces`` chooses the trainer's seeds among the right-closed frequent substrings of
the units (``substrings.count_substrings``), best count * length first (the bytes a piece
would cover), on a seeded sample of the units when they are large.

This is the seeding step of Unigram training (ALGORITHMS.md section 7.1).

Not here: EM and pruning.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..utf8 import utf8_valid
from .substrings import count_substrings
from .units import Units

# Seeds only need to contain the pieces that EM will keep, so on large corpora they are
# counted on a seeded random sample of the distinct units of about this many bytes.
SEED_SAMPLE_BYTES = 2_000_000


def seed_pieces(
    units: Units,
    size: int,
    max_piece_bytes: int,
    whole_characters: bool,
    split_digits: bool,
    sample_bytes: int = SEED_SAMPLE_BYTES,
    min_count: float = 2.0,
) -> tuple[list[bytes], np.ndarray]:
    """Up to ``size`` multi-byte seed pieces, best count * length first, and their counts
    (in the sample).  With ``whole_characters`` every seed is valid UTF-8; with
    ``split_digits`` no seed holds a digit.  Deterministic."""
    if int(units.ends[-1] if len(units) else 0) > sample_bytes:
        units = units.subset(units.sample(sample_bytes))
    pos, length, count, _ = count_substrings(
        units.buf, units.starts, units.ends, units.counts, max_piece_bytes, min_count, whole_characters
    )
    ok = _allowed(units.buf, pos, length, whole_characters, split_digits)
    pos, length, count = pos[ok], length[ok], count[ok]
    value = count * length
    if len(value) > size:  # only the best candidates need a full sort
        top = np.argpartition(-value, size - 1)[:size]
    else:
        top = np.arange(len(value))
    # Ties by position then length: a fixed order whatever the sort.
    top = top[np.lexsort((length[top], pos[top], -value[top]))]
    raw = units.buf.tobytes()
    pieces = [raw[p : p + n] for p, n in zip(pos[top].tolist(), length[top].tolist())]
    return pieces, count[top]


@njit(cache=True, nogil=True)
def _allowed(buf, pos, length, whole_characters, split_digits):
    """Which substrings may be seeds: valid UTF-8 (with ``whole_characters``) and
    without ASCII digits (with ``split_digits``)."""
    ok = np.ones(pos.shape[0], np.bool_)
    for k in range(pos.shape[0]):
        i = pos[k]
        end = i + length[k]
        if split_digits:
            for t in range(i, end):
                if 48 <= buf[t] <= 57:
                    ok[k] = False
                    break
        if whole_characters and ok[k]:
            ok[k] = utf8_valid(buf, i, end)
    return ok
