"""Run numbered jobs on several threads and get their results back in order.

The kernels release the GIL, so threads give real parallelism.  Two choices keep a short
batch from losing what it gains:

* the calling thread works too, on the same queue of jobs as the helper threads, so no
  job waits for a hand-off, and a call makes progress even if every helper is busy
  (with another call, say);
* helper threads live in one pool per process, made on first use, not per call
  (a child made by ``fork`` gets a fresh pool: the parent's threads are not in it).
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = -1
_pool_lock = threading.Lock()


def _helpers(count: int) -> ThreadPoolExecutor:
    """The process's pool, with room for at least ``count`` helper threads."""
    global _pool, _pool_size, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_size < count:
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="viterbisample")
            _pool_size, _pool_pid = count, os.getpid()
        return _pool


def ordered_results(job: Callable[[int], Any], count: int, threads: int) -> Iterator[Any]:
    """``job(0), ..., job(count - 1)`` on ``threads`` threads (the caller's among them);
    yields the results in that order, each as soon as it and all before it are done.

    Jobs are taken in order by whichever thread is free.  Between its own jobs the
    calling thread yields what is ready, so the caller's work on a result overlaps the
    jobs still running.  An exception in a job is raised when its result is reached;
    closing the iterator early cancels the jobs not yet started.
    """
    if threads <= 1 or count <= 1:
        for k in range(count):
            yield job(k)
        return
    results: list[Any] = [None] * count
    failed: list[BaseException | None] = [None] * count
    done = [threading.Event() for _ in range(count)]
    claim = itertools.count()  # next() on it is atomic under the GIL
    stop = False

    def run_one() -> bool:
        k = next(claim)
        if k >= count or stop:
            return False
        try:
            results[k] = job(k)
        except BaseException as exc:  # handed to the caller with the result
            failed[k] = exc
        finally:
            done[k].set()
        return True

    def helper() -> None:
        while run_one():
            pass

    pool = _helpers(threads - 1)
    for _ in range(min(threads, count) - 1):
        pool.submit(helper)
    ready = 0
    try:
        while ready < count:
            if not done[ready].is_set() and not run_one():
                done[ready].wait()
            while ready < count and done[ready].is_set():
                if failed[ready] is not None:
                    raise failed[ready]
                result, results[ready] = results[ready], None
                ready += 1
                yield result
    finally:
        stop = True
