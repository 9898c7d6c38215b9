"""BytePiece's "Viterbi Sampling" (bytepiece 0.4.0): a legacy research method, NOT an
exact sampler of q_alpha.

The procedure (bytepiece 0.4.0, ``faster.pyx``, commit 5747a8f, 2023-09-14; described in
kexue.fm/archives/9768 and replaced in 0.5.0 by an exact sampler, kexue.fm/archives/9811):
a Viterbi forward pass in which every position j holds one candidate, its last piece and
the *score of the path it holds* ``h[j]`` (a sum of log-probabilities, no alpha in it).
The edges (i, j, id) into j are visited in BytePiece's order, longest piece first (the
order pyahocorasick reports the matches ending at a position in), each with the score
``c = h[i] + s(id)``:

* the first is taken (its acceptance probability, sigmoid(alpha * (c - (-inf))), is 1);
* each later one replaces the held candidate with probability
  ``sigmoid(alpha * (c - h[j]))``, and then ``h[j] = c``.

Backtracking from n gives the sample.  The held score is the score of one random path,
not a sum over paths, so the choice at j ignores how many paths reach each i: the
result is not q_alpha (``viterbisample.legacy`` documents the bias and
``tests/test_bytepiece.py`` measures it).  0.4.0 ran Viterbi for alpha <= 0; here the
rule is applied as written for every finite alpha >= 0 (alpha = 0: each later candidate
replaces the held one with probability 1/2).  0.4.0 compared ``rand() / RAND_MAX``,
which can equal 1, with ``<``, so it could reject the first candidate (with
probability 2**-31) and then loop forever; here a uniform in [0, 1) is used.

Uniforms come from ``rng.py``'s streams: sample d of a call uses the stream
(seed, epoch, index, d), as the exact samplers do.  Arguments are validated by the
caller (``viterbisample.legacy``): Numba does not check bounds.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..rng import next_uniform, stream_key
from ..trie import prefix_matches
from .forward import STATUS_BAD_PATH, backtrack


@njit(cache=True, nogil=True)
def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow for any finite or infinite x."""
    if x >= 0.0:
        return 1.0 / (1.0 + np.exp(-x))
    e = np.exp(x)
    return e / (1.0 + e)


@njit(cache=True, nogil=True)
def viterbi_sampling_pass(rbase, rcheck, rvalue, scores, alpha, text, held, bp, mids, mstarts, state):
    """One Viterbi Sampling forward pass over ``text`` (uint8): fills ``bp[1..n]`` with
    the last piece held at each position (-1 where none ends) and returns the advanced
    stream ``state``.  ``held``: float64 of length >= n + 1; ``bp``: int32 of length
    >= n + 1; ``mids``/``mstarts``: match buffers of the longest piece length."""
    n = text.shape[0]
    held[0] = 0.0
    bp[0] = -1
    for j in range(1, n + 1):
        k = prefix_matches(rbase, rcheck, rvalue, text, j - 1, -1, -1, mids, 0, mstarts)
        cur = -np.inf
        arg = -1
        for m in range(k - 1, -1, -1):  # longest first: BytePiece's order
            c = held[mstarts[m]] + scores[mids[m]]
            if arg < 0:
                take = True
            else:
                state, u = next_uniform(state)
                take = u < _sigmoid(alpha * (c - cur))
            if take:
                cur = c
                arg = mids[m]
        held[j] = cur
        bp[j] = arg
    return state


@njit(cache=True, nogil=True)
def viterbi_sampling_draws(rbase, rcheck, rvalue, max_len, scores, lengths, alpha, text, draws, seed, epoch, index,
                           out, offsets):
    """``draws`` Viterbi Sampling outputs of ``text``: output d is written to
    ``out[offsets[d]:offsets[d + 1]]`` (``out`` has room for draws * len(text) ids,
    ``offsets`` for draws + 1).  Returns 0, or ``STATUS_BAD_PATH`` if a position has no
    piece ending there (a model without some single byte)."""
    n = text.shape[0]
    held = np.empty(n + 1, np.float64)
    bp = np.empty(n + 1, np.int32)
    mids = np.empty(max(1, max_len), np.int32)
    mstarts = np.empty(max(1, max_len), np.int64)
    offsets[0] = 0
    for d in range(draws):
        state = stream_key(seed, epoch, index, np.uint64(d))
        viterbi_sampling_pass(rbase, rcheck, rvalue, scores, alpha, text, held, bp, mids, mstarts, state)
        count = backtrack(bp, lengths, n, out, offsets[d])
        if count < 0:
            return STATUS_BAD_PATH
        offsets[d + 1] = offsets[d] + count
    return 0
