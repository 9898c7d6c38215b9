"""Getting Dask workers ready to encode, and the task each of them runs.

* The model goes to each worker once: the driver scatters the tokenizer with
  ``broadcast=True`` (it pickles as pieces, scores, special tokens and normalizer,
  ``Tokenizer.__reduce__``), and every task receives the worker's one copy, not a pickle
  of its own.
* Compiled kernels: Numba caches machine code on disk (``kernel_cache``), so the driver
  encodes one small text first (compiling and caching the kernels for the run's alpha),
  then each worker does the same (loading them), before any block is handed out: no
  worker compiles in the middle of the run, and none races another to write the cache.
  Workers on other machines need a writable ``NUMBA_CACHE_DIR`` (or package folder) to
  keep the cache; without one they compile once per process.
* Threads: the batch calls use ``num_threads`` helper threads, all cores by default.  A
  worker process shares its machine with the others there, so each task gets the
  machine's cores divided by the Dask threads of all workers on it (at least 1): with
  one single-threaded worker per core, each task encodes on one thread.
"""

from __future__ import annotations

import os
import time

from ..tokenizer import Tokenizer
from .blocks import Block
from .shards import Job, Shard, encode_shard

WARM_TEXT = b"Warming up the kernels: ascii, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e, and \xff bytes.\n"


def warm(tok: Tokenizer, alpha: float | None) -> float:
    """Encode one small text the way the run will (compiling or loading the kernels for
    ``alpha``); returns the seconds it took."""
    start = time.perf_counter()
    tok.encode_batch_arrays([WARM_TEXT], alpha=alpha, seed=0, num_threads=1)
    return time.perf_counter() - start


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def prepare_worker(tok: Tokenizer, alpha: float | None) -> dict:
    """Run once on each worker before the fan-out: warm its kernels; report its cores."""
    return {"warm_seconds": warm(tok, alpha), "cores": usable_cores(), "pid": os.getpid()}


def thread_shares(workers: dict[str, dict], cores: dict[str, int]) -> dict[str, int]:
    """Threads per task for each worker address: its machine's cores divided by the
    Dask threads of all workers on that machine, at least 1.  ``workers`` is the
    scheduler's view (``host`` and ``nthreads`` per address); ``cores`` what each worker
    reported.

    >>> thread_shares({"a": {"host": "h", "nthreads": 1}, "b": {"host": "h", "nthreads": 1}},
    ...               {"a": 8, "b": 8})
    {'a': 4, 'b': 4}
    """
    per_host: dict[str, int] = {}
    for info in workers.values():
        per_host[info["host"]] = per_host.get(info["host"], 0) + info["nthreads"]
    return {address: max(1, cores.get(address, 1) // max(1, per_host[info["host"]]))
            for address, info in workers.items()}


def encode_task(tok: Tokenizer, job: Job, index: int, block: Block, first_index: int,
                shares: dict[str, int], num_threads: int | None) -> Shard:
    """The task of one block: its shard, on this worker's share of threads (or
    ``num_threads`` when the caller fixed it)."""
    if num_threads is None:
        from distributed import get_worker

        num_threads = shares.get(get_worker().address, 1)
    return encode_shard(tok, job, index, block, first_index, num_threads)
