"""Argument checks at the Python boundary, shared by the API and the CLI.

Kernels trust their inputs (Numba does not check bounds), so every value a user gives is
checked here first.  Each error names the parameter, the value received and what is
allowed.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .rng import fresh_seed

UINT64_MAX = 2**64 - 1


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """A finite float >= 0."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {alpha!r} ({type(alpha).__name__})")
    a = float(alpha)
    if not math.isfinite(a) or a < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {alpha!r}")
    return a


def check_count(value: Any, name: str, minimum: int = 0) -> int:
    """An int >= minimum (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def check_uint64(value: Any, name: str) -> int:
    v = check_count(value, name)
    if v > UINT64_MAX:
        raise ValueError(f"{name} must be < 2**64, got {v}")
    return v


def check_seed(seed: Any) -> int:
    """``None`` draws a fresh seed from the OS; otherwise an int in [0, 2**64)."""
    if seed is None:
        return fresh_seed()
    return check_uint64(seed, "seed")


def check_num_threads(num_threads: Any) -> int:
    if num_threads is None:
        return os.cpu_count() or 1
    return check_count(num_threads, "num_threads", 1)


def check_ids(ids: Any, vocab_size: int) -> np.ndarray:
    """A 1-D int64 array of ids, each in ``0 .. vocab_size-1``."""
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"ids must be a sequence of ints, got {type(ids).__name__}")
    try:
        arr = np.asarray(ids)
    except (TypeError, ValueError) as exc:  # ragged input
        raise TypeError(f"ids must be a flat sequence of ints: {exc}") from None
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == object and all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in arr
        ):
            pass
        else:
            raise TypeError(f"ids must be ints, got an array of {arr.dtype}")
    lo, hi = min(arr.tolist()), max(arr.tolist())
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"token id {bad} is out of range for a vocabulary of {vocab_size} ids "
            f"(0..{vocab_size - 1})"
        )
    return arr.astype(np.int64)


def read_file(path: Any, what: str) -> bytes:
    """The bytes of a file, or an error that says which file ``what`` was missing."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{what} is a directory, not a file: {path}") from None


def check_texts(texts: Any) -> Sequence[Any]:
    if isinstance(texts, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            "texts must be a sequence of str or bytes, got a single "
            f"{type(texts).__name__}; use encode() for one text or wrap it in a list"
        )
    return texts if isinstance(texts, list) else list(texts)  # a list is not copied
