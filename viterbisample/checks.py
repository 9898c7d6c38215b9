"""Argument checks at the Python boundary, shared by the API and the CLI.

Kernels trust their inputs (Numba does not check bounds), so every value a user gives is
checked here first.  Each error names the parameter, the value received and what is
allowed.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .rng import fresh_seed

UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
# More worker threads than this is a typo, not a machine: refused, not silently capped.
MAX_THREADS = 1024


def check_real(value: Any, name: str, *, allow_inf: bool = False) -> float:
    """A real number >= 0 as a float; NaN, negatives and (unless ``allow_inf``) infinity
    are refused, and so is an int too large for a float (``10**400``).

    >>> check_real(1, "x"), check_real(float("inf"), "x", allow_inf=True)
    (1.0, inf)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {_short(value)} ({type(value).__name__})")
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(
            f"{name} must be at most {sys.float_info.max!r} (the largest float)"
            + (" or inf" if allow_inf else "") + f", got {_short(value)}"
        ) from None
    if math.isnan(v) or v < 0 or (math.isinf(v) and not allow_inf):
        raise ValueError(
            f"{name} must be finite and >= 0{', or inf' if allow_inf else ''}, got {_short(value)}"
        )
    return v + 0.0  # -0.0 becomes 0.0


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """alpha as a float in [0, inf]: 0 is uniform over segmentations, ``math.inf`` the
    Viterbi path (the limit of q_alpha as alpha grows), anything between exact sampling.
    NaN, negatives and ints too large for a float are refused with ``ValueError``,
    non-numbers (bool included) with ``TypeError``."""
    return check_real(alpha, name, allow_inf=True)


def check_count(value: Any, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    """An int in [minimum, maximum] (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_short(value)} ({type(value).__name__})")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {_short(v)}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {_short(v)}")
    return v


def check_uint64(value: Any, name: str) -> int:
    v = check_count(value, name)
    if v > UINT64_MAX:
        raise ValueError(f"{name} must be < 2**64, got {_short(v)}")
    return v


def check_seed(seed: Any) -> int:
    """``None`` draws a fresh seed from the OS; otherwise an int in [0, 2**64)."""
    if seed is None:
        return fresh_seed()
    return check_uint64(seed, "seed")


def check_num_threads(num_threads: Any, name: str = "num_threads") -> int:
    """``None`` is all cores; else an int from 1 to ``MAX_THREADS`` (1024)."""
    if num_threads is None:
        return os.cpu_count() or 1
    return check_count(num_threads, name, 1, MAX_THREADS)


@functools.lru_cache(maxsize=None)
def _machine_memory() -> int | None:
    total = None
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX
        pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and (total is None or int(text) < total):
            total = int(text)
    return total if total and total > 0 else None


def memory_limit() -> int | None:
    """Bytes of memory this process can have: the machine's physical memory, or a smaller
    cgroup (container) limit; None where neither is known."""
    return _machine_memory()


def check_memory(estimate: int, what: str, hint: str = "ask for less at a time") -> None:
    """Refuse (``ValueError``) work whose allocations, ``estimate`` bytes, exceed
    ``memory_limit()``: it would fail with ``MemoryError`` or be killed, perhaps only
    after minutes.  ``what`` names the request, e.g. ``"n = 10**9 samples of 1 text"``."""
    limit = memory_limit()
    if limit is not None and estimate > limit:
        raise ValueError(
            f"{what} would need about {_gigabytes(estimate)} of memory, more than the "
            f"{_gigabytes(limit)} of this machine; {hint}"
        )


def _short(value: Any) -> str:
    """``repr(value)`` cut to a readable length; a huge int by its number of digits
    (``str`` of an int over 4300 digits raises)."""
    if isinstance(value, numbers.Integral) and abs(int(value)).bit_length() > 128:
        digits = int(abs(int(value)).bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}an int of about {digits} digits"
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _gigabytes(n: int) -> str:
    return f"{n / 1e9:.3g} GB"


def check_ids(ids: Any, vocab_size: int) -> np.ndarray:
    """A 1-D int64 array of ids, each in ``0 .. vocab_size-1``.

    Any sequence or array of ints is accepted, except str, bytes, bytearray and
    memoryview: their items are characters or bytes, not ids (``TypeError``).
    """
    if isinstance(ids, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"ids must be a sequence of ints, got {type(ids).__name__}")
    try:
        arr = np.asarray(ids)
    except (TypeError, ValueError, OverflowError) as exc:  # ragged input
        raise TypeError(f"ids must be a flat sequence of ints: {exc}") from None
    if arr.ndim == 0:  # an int, a set, a generator...
        raise TypeError(f"ids must be a sequence of ints, got {type(ids).__name__}")
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
            f"token id {_short(bad)} is out of range for a vocabulary of {vocab_size} ids "
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
