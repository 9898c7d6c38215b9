"""The thread runner and how batches are cut for it."""

from __future__ import annotations

import os
import threading
import time

import pytest

from viterbisample.parallel import ordered_results
from viterbisample.engine import sampled_chunks as _sampled_chunks


@pytest.mark.parametrize("threads", [1, 2, 5])
@pytest.mark.parametrize("count", [0, 1, 2, 37])
def test_results_come_in_order_whoever_runs_them(threads, count):
    seen = []

    def job(k):
        seen.append(threading.get_ident())
        return k * k

    assert list(ordered_results(job, count, threads)) == [k * k for k in range(count)]
    assert len(seen) == count


def test_a_failing_job_raises_at_its_place_and_stops_the_rest():
    started = []

    def job(k):
        started.append(k)
        if k == 3:
            raise KeyError("job 3")
        time.sleep(0.002)  # all 1000 would take a helper 2 s
        return k

    got = []
    with pytest.raises(KeyError, match="job 3"):
        for r in ordered_results(job, 1000, 2):
            got.append(r)
    assert got == [0, 1, 2]
    assert len(started) < 100  # the jobs not yet started were cancelled


def test_closing_early_cancels_the_jobs_not_started():
    started = []

    def job(k):
        started.append(k)
        time.sleep(0.001)  # all 10000 would take a helper 10 s
        return k

    it = ordered_results(job, 10_000, 2)
    assert next(it) == 0
    it.close()
    n = len(started)
    assert n < 100
    threading.Event().wait(0.05)
    assert len(started) <= n + 2  # at most the jobs the helpers had already taken


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_pool():
    list(ordered_results(lambda k: k, 8, 2))  # the parent's pool exists now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the parent's helper threads are not here
        try:
            ok = list(ordered_results(lambda k: k + 1, 8, 2)) == list(range(1, 9))
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1" and status == 0
    os.close(r)


@pytest.mark.parametrize("n", [1, 5, 4095, 4096, 4097, 50_000, 123_457])
def test_sampled_chunks_cover_every_text_once_in_order(n):
    texts = ["ab" * (1 + k % 7) for k in range(n)]
    bounds = _sampled_chunks(texts, 2)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a < b for a, b in bounds)
    assert all(b == c for (_, b), (c, _) in zip(bounds, bounds[1:]))
    if sum(map(len, texts)) >= 1 << 16:
        assert len(bounds) > 1
        sizes = [sum(map(len, texts[a:b])) for a, b in bounds]
        middle = sizes[1:-1]
        assert len(sizes) == 4 * 2 + 1 and max(middle) < 1.2 * min(middle)  # about equal bytes
        assert all(0.4 < end / middle[0] < 0.6 for end in (sizes[0], sizes[-1]))  # staggered
