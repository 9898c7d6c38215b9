"""Counter-based random numbers keyed by (seed, epoch, text index, draw).

Each sampled segmentation owns a stream: its key is a SplitMix64 hash of the four numbers,
and its k-th output is ``mix64(key + k * GAMMA)``.  Nothing is global, so the same key
gives the same numbers in any thread, process or batch split, and a fork cannot make two
workers share a stream (ALGORITHMS.md section 6).

Not here: how a kernel spends its draws (``lattice/``).
"""

from __future__ import annotations

import os
import random

import numpy as np
from numba import njit

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
# Distinct odd constants so that (seed, epoch, index, draw) = (a, b, c, d) and any
# permutation of the same numbers land on different keys.
_K_EPOCH = np.uint64(0xD1B54A32D192ED03)
_K_INDEX = np.uint64(0xAEF17502108EF2D9)
_K_DRAW = np.uint64(0x8CB92BA72F3D8DD7)
_INV_2_53 = 1.0 / 9007199254740992.0

SEED_MAX = 2**64 - 1


@njit(cache=True, nogil=True)
def mix64(z):
    """SplitMix64 finalizer: a bijection of uint64 with good avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True)
def stream_key(seed, epoch, index, draw):
    """The key of the stream for one sampled segmentation (all arguments uint64)."""
    k = mix64(seed + GAMMA)
    k = mix64(k ^ (epoch * _K_EPOCH + GAMMA))
    k = mix64(k ^ (index * _K_INDEX + GAMMA))
    return mix64(k ^ (draw * _K_DRAW + GAMMA))


@njit(cache=True, nogil=True)
def next_uniform(state):
    """Advance ``state`` and return ``(new_state, u)`` with u uniform in [0, 1).

    53 random bits scaled by 2**-53, so u < 1 always: a reservoir test ``u * Z < w``
    can never reject a candidate whose probability is one.
    """
    state = state + GAMMA
    return state, np.float64(mix64(state) >> _S11) * _INV_2_53


def fresh_seed() -> int:
    """A fresh seed (for ``seed=None``): from a generator seeded by the operating
    system's entropy source, and seeded anew in every forked child, so that data loader
    workers never share seeds.  (``os.urandom`` on every call costs a microsecond, as
    much as a short text's whole sample.)"""
    return _seeds.getrandbits(64)


def _reseed() -> None:
    _seeds.seed(int.from_bytes(os.urandom(32), "little"))


_seeds = random.Random()
_reseed()
if hasattr(os, "register_at_fork"):  # Windows has no fork
    os.register_at_fork(after_in_child=_reseed)
