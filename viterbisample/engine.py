"""The engine: batches of texts through the lattice kernels, for one ``Model``.

Python enters a kernel once per chunk of a batch, never once per text or per token
(ALGORITHMS.md section 4, speed notes).  A batch is cut into chunks of about equal bytes
(``chunks``); each chunk is packed into one byte buffer (``text.pack``), run through
``lattice.encode_items`` and, for list output, turned into lists, all by the thread that
runs it, so the steps that hold the GIL overlap the other threads' kernels
(``parallel.ordered_results``).  The engine also chooses each alpha's number domain
(``logmath.linear_domain_weights``, cached per alpha) and runs the forward-backward
statistics that ``Tokenizer.stats_batch`` and the trainer's E-step share
(``lattice_stats``).

Arguments reach it checked by the caller (``tokenizer.py``), except where noted.
"""

from __future__ import annotations

import gc
import math
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from . import lattice
from .lattice import marginals
from .checks import INT64_MAX, check_alpha, check_count, check_num_threads, check_seed, check_texts, check_uint64
from .kernel_cache import direct_call
from .logmath import LinearWeights, linear_domain_weights
from .model import KernelArrays, Model
from .parallel import ordered_results
from .text import pack

# Below this many bytes a batch runs on the calling thread: a pool costs more than it saves.
MIN_PARALLEL_BYTES = 1 << 16
# Sums over a batch (expected piece counts) are reduced over chunks of this size, in
# order, so they are bit-identical for any number of threads.
SUM_CHUNK_BYTES = 1 << 16
# ... and those sums added in groups of this many chunks (``ordered_sum``).
SUM_GROUP_CHUNKS = 64

_encode_text = None  # lattice.encode_text of a text's bytes, called without Numba's dispatch
_encode_symbols = None  # ... of a text as int32 symbols (a lattice over characters)
# encode_one keeps its buffers per thread for texts up to this many bytes (about 9 MB).
ONE_TEXT_ROOM = 1 << 20


def _compiled_encode_text() -> Any:
    global _encode_text
    out, work = lattice.text_room(1, 1)
    _encode_text = direct_call(lattice.encode_text, out, work[:1], b"", 0, 0, 0, out, work)
    return _encode_text


def _compiled_encode_symbols() -> Any:
    global _encode_symbols
    out, work = lattice.text_room(1, 1)
    _encode_symbols = direct_call(lattice.encode_text, out, work[:1], out[:0], 0, 0, 0, out, work)
    return _encode_symbols


_VITERBI = lattice.VITERBI


def kernel_alpha(alpha: Any) -> float:
    """The alpha a kernel takes: ``lattice.VITERBI`` for None and for inf (the limit of
    q_alpha is the set of best paths, and Viterbi's tie rule picks one of them)."""
    if alpha is None:
        return lattice.VITERBI
    a = check_alpha(alpha)
    return lattice.VITERBI if a == math.inf else a


class Engine:
    """The batch drivers of one model, with what they cache: per alpha the linear
    sampler's weights, and one Python int object per id for building lists."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._weights_cache: dict[float, np.ndarray] = {}
        self._weights_lock = threading.Lock()
        self._id_objects: np.ndarray | None = None
        self._text_models: dict[float, tuple] = {}
        self._rooms = threading.local()  # encode_one's buffers, one set per thread

    def weights(self, alpha: float) -> np.ndarray:
        """The linear sampler's weights at ``alpha``, or an empty array where only the log
        domain is exact (``logmath.linear_domain_weights``)."""
        with self._weights_lock:
            hit = self._weights_cache.get(alpha)
        if hit is not None:
            return hit
        m = self.model
        linear = linear_domain_weights(m.scores, m.lengths, alpha, m.num_special, m.suffix_trie.max_len,
                                       getattr(m, "steps", None))  # (a SentencePiece lattice has steps)
        result = linear.weights if linear is not None else np.zeros(0, np.float64)
        with self._weights_lock:
            if len(self._weights_cache) >= 16:
                self._weights_cache.clear()
            self._weights_cache[alpha] = result
        return result

    def encode_items(self, alpha, buf, starts, ends, draws, seed, epoch, first, out, offsets) -> None:
        """``lattice.encode_items`` (``alpha`` from ``kernel_alpha``), with its failure
        turned into an exception that names the text (it cannot happen for a valid model:
        every byte is a piece)."""
        m = self.model
        weights = self.weights(alpha) if alpha != lattice.VITERBI else m.scores[:0]
        status = lattice.encode_items(
            m.suffix_trie, m.scores, weights, m.lengths, alpha, buf, starts, ends, draws,
            np.uint64(seed), np.uint64(epoch), np.uint64(first), out, offsets,
        )
        if status < 0:
            t = -1 - status
            self._no_path(alpha, bytes(buf[starts[t] : ends[t]]), first + t)

    def text_model(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """``lattice.text_model`` of this model at ``alpha`` (from ``kernel_alpha``), made
        once per alpha."""
        found = self._text_models.get(alpha)
        if found is None:
            m = self.model
            weights = self.weights(alpha) if alpha != lattice.VITERBI else m.scores[:0]
            found = lattice.text_model(m.suffix_trie, m.scores, weights, m.lengths, alpha)
            if len(self._text_models) >= 16:
                self._text_models.clear()
            self._text_models[alpha] = found
        return found

    def encode_one(self, data: bytes | np.ndarray, alpha: float, seed: int = 0, epoch: int = 0,
                   index: int = 0) -> list[int]:
        """The ids of one text's bytes (or int32 symbols, for a lattice over characters),
        the text at ``index`` of a batch, in one kernel call (``lattice.encode_text``): the
        per-call path of data loaders.  ``seed``, ``epoch`` and ``index`` are checked ints
        in [0, 2**64)."""
        ints, reals = self._text_models.get(alpha) or self.text_model(alpha)
        room = getattr(self._rooms, "room", None)
        if room is None or room[2] < len(data):
            room = self._new_room(len(data))
        out, work, _, ids = room
        run = _encode_text if type(data) is bytes else _encode_symbols
        if run is None:
            run = _compiled_encode_text() if type(data) is bytes else _compiled_encode_symbols()
        try:
            if alpha == _VITERBI:  # no stream to key
                return ids[: run(ints, reals, data, 0, 0, 0, out, work)].tolist()
            # The stream key's parts pass as int64 with the same bits: one signature.
            if seed > INT64_MAX:
                seed -= 2**64
            if epoch > INT64_MAX:
                epoch -= 2**64
            if index > INT64_MAX:
                index -= 2**64
            return ids[: run(ints, reals, data, seed, epoch, index, out, work)].tolist()
        except RuntimeError:
            self._no_path(alpha, data, index % 2**64)

    def _new_room(self, size: int) -> tuple[np.ndarray, np.ndarray, int, memoryview]:
        """``lattice.text_room`` for texts of at least ``size`` bytes, with that size and a
        memoryview of the ids (sliced and listed faster than the array): kept as this
        thread's own up to ``ONE_TEXT_ROOM`` bytes, new for each text beyond."""
        size = max(size, 4096)
        out, work = lattice.text_room(self.model.suffix_trie.max_len, size)
        room = (out, work, size, memoryview(out))
        if size <= ONE_TEXT_ROOM:
            self._rooms.room = room
        return room

    def _no_path(self, alpha: float, text: bytes, index: int) -> None:
        what = "Viterbi" if alpha == lattice.VITERBI else f"sampling at alpha={alpha!r}"
        raise RuntimeError(
            f"{what} found no path through the lattice of text {index} "
            f"({text[:60]!r}{'...' if len(text) > 60 else ''}): the model does not cover it"
        )

    def run(self, packed, first, alpha, seed, epoch, draws=1):
        """``encode_items`` over one packed batch (``text.pack``) whose first text has
        index ``first``: (ids, offsets), ``draws`` outputs per text."""
        buf, starts, ends = packed
        total = int(ends[-1]) if len(ends) else 0  # packed: the texts fill the buffer
        out = np.empty(max(1, total * draws), np.int32)
        offsets = np.empty(len(starts) * draws + 1, np.int64)
        self.encode_items(alpha, buf, starts, ends, draws, seed, epoch, first, out, offsets)
        return out[: offsets[-1]].copy(), offsets

    def encoded_chunks(self, texts, alpha, seed, epoch, num_threads, first_index, draws=1, finish=None):
        """(ids, offsets) of consecutive chunks of the batch, in order (``run``), or
        ``finish(ids, offsets)`` of each.  Checks its arguments.

        Each chunk is packed, encoded and finished by one thread, so the parts that hold
        the GIL (packing, building lists) overlap the other threads' kernels; the
        caller's work on a chunk overlaps the later ones (``parallel.ordered_results``).
        """
        a = kernel_alpha(alpha)
        s = check_seed(seed)
        e = check_uint64(epoch, "epoch")
        threads = check_num_threads(num_threads)
        first = check_count(first_index, "first_index")
        texts = check_texts(texts)
        if first > 2**63 - 1 - len(texts):
            raise ValueError(f"first_index must be < 2**63 - len(texts), got {first}")
        bounds = sampled_chunks(texts, threads, draws)

        def job(k: int) -> Any:
            lo, hi = bounds[k]
            ids, offsets = self.run(pack(texts[lo:hi]), first + lo, a, s, e, draws)
            return (ids, offsets) if finish is None else finish(ids, offsets)

        return ordered_results(job, len(bounds), threads)

    def rows(self, ids: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
        """One list of ids per output, from flat ids and offsets.

        Python ints are taken from an object array of all ids, made once, rather than
        made for every token: that halves the cost of the lists.
        """
        if self._id_objects is None:
            self._id_objects = np.array(range(len(self.model.scores)), dtype=object)
        return split(self._id_objects[ids], offsets)

    def per_text(self, items: list, num_threads: int | None, one: Callable[[Any], Any]) -> list:
        """``one(item)`` for each item (a text's bytes, or a tuple that starts with them),
        on threads; results in order."""
        threads = check_num_threads(num_threads)
        results: list = [None] * len(items)

        def work(first: int, last: int) -> None:
            for t in range(first, last):
                results[t] = one(items[t])

        sizes = np.array([len(i[0]) if isinstance(i, tuple) else len(i) for i in items], np.int64)
        in_chunks(sizes + 1, threads, work)
        return results


def lattice_stats(
    arrays: KernelArrays,
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    alpha: float,
    threads: int,
    weights: np.ndarray,
    piece_counts: bool,
    bounds: list[tuple[int, int]] | None = None,
) -> dict[str, np.ndarray]:
    """``Tokenizer.stats_batch`` over a packed, checked batch and any ``KernelArrays``
    (the trainer's E-step passes its own).  Piece counts are computed per chunk of about
    ``SUM_CHUNK_BYTES`` (``sum_chunks``, or the item ranges ``bounds``) and added in the
    fixed order of ``ordered_sum``, so they are the same bits for any number of threads,
    and on a cluster that splits the chunks between machines."""
    n = len(starts)
    scores = arrays.scores
    log_z, length, score, entropy = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    linear = linear_domain_weights(scores, arrays.lengths, alpha, arrays.num_special, arrays.max_len, arrays.steps)
    if linear is None:
        linear = LinearWeights(scores[:0], scores[:0], 0.0)  # empty: the log domain

    def work(first: int, last: int) -> np.ndarray:
        counts = np.zeros(len(scores) if piece_counts else 0, np.float64)
        marginals.stats_items(
            arrays.trie, arrays.suffix_trie, linear.weights, linear.log_weights, linear.shift, scores,
            alpha, buf, starts, ends, weights, counts, log_z, length, score, entropy, first, last,
        )
        return counts

    if bounds is None:
        bounds = sum_chunks(ends - starts)
    chunk_counts = list(ordered_results(lambda k: work(*bounds[k]), len(bounds), threads))
    out = {"log_z": log_z, "entropy": entropy, "expected_length": length, "expected_score": score}
    if piece_counts:
        out["counts"] = ordered_sum(chunk_counts, len(scores))
    return out


def sum_chunks(lengths: np.ndarray) -> list[tuple[int, int]]:
    """The item ranges whose statistics are summed as units: cut by size alone
    (``SUM_CHUNK_BYTES``), never by threads or machines."""
    return chunks(lengths, 1, SUM_CHUNK_BYTES)


def ordered_sum(vectors: list[np.ndarray], size: int) -> np.ndarray:
    """The sum of per-chunk vectors in a fixed two-level order: each group of
    ``SUM_GROUP_CHUNKS`` consecutive chunks added in order, then the groups in order.
    A cluster adds each group on a worker and the groups on the driver, and gets the same
    bits as one process (floating-point addition is not associative)."""
    groups = [group_sum(vectors[k : k + SUM_GROUP_CHUNKS], size) for k in range(0, len(vectors), SUM_GROUP_CHUNKS)]
    return group_sum(groups, size)


def group_sum(vectors: list[np.ndarray], size: int) -> np.ndarray:
    total = np.zeros(size, np.float64)
    for v in vectors:
        total += v
    return total


def joined(chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One (ids, offsets) from the (ids, offsets) of consecutive chunks; for no chunks
    (no texts) no ids and the offsets ``[0]``."""
    chunks = list(chunks)
    if not chunks:
        return np.zeros(0, np.int32), np.zeros(1, np.int64)
    if len(chunks) == 1:
        return chunks[0]
    ids = np.concatenate([c[0] for c in chunks])
    shifts = np.cumsum([0] + [len(c[0]) for c in chunks[:-1]])
    offsets = np.concatenate([[0]] + [c[1][1:] + shift for c, shift in zip(chunks, shifts)])
    return ids, offsets.astype(np.int64)


def as_array(data: bytes) -> np.ndarray:
    """A text's bytes as the read-only uint8 array every kernel takes."""
    return np.frombuffer(data, np.uint8) if data else np.frombuffer(b"\0", np.uint8)[:0]


def split(ids: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    """One list per text of the items of ``ids`` (any dtype), built with the cyclic
    garbage collector paused: the lists hold only ints, and its passes over millions of
    new lists cost four times the building itself."""
    flat = ids.tolist()
    bounds = offsets.tolist()
    with gc_paused():
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


# -- the process-wide pause of the garbage collector ---------------------------------------

_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False
_gc_forks = 0  # bumped in a forked child: pauses begun before the fork are not its own


def _gc_reset_in_child() -> None:
    """After fork: the threads that paused the collector did not come along and will never
    end their pauses here, so the child starts unpaused (and with a fresh lock, in case one
    of them held it at the fork)."""
    global _gc_lock, _gc_pausers, _gc_forks
    _gc_lock = threading.Lock()
    _gc_forks += 1
    if _gc_pausers:
        _gc_pausers = 0
        if _gc_was_enabled:
            gc.enable()


if hasattr(os, "register_at_fork"):  # Windows has no fork
    os.register_at_fork(after_in_child=_gc_reset_in_child)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector off while any thread is inside, then as it was before the first."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
        forks = _gc_forks
    try:
        yield
    finally:
        with _gc_lock:
            if forks == _gc_forks:  # else this pause was begun by the parent, before a fork
                _gc_pausers -= 1
                if _gc_pausers == 0 and _gc_was_enabled:
                    gc.enable()


# -- chunks -------------------------------------------------------------------------------------

def in_chunks(lengths: np.ndarray, threads: int, work: Any) -> list:
    """``work(first, last)`` over contiguous item chunks, on ``threads`` threads (the
    kernels release the GIL); results in chunk order."""
    bounds = chunks(lengths, threads)
    return list(ordered_results(lambda k: work(*bounds[k]), len(bounds), threads))


def sampled_chunks(texts: list, threads: int, draws: int = 1) -> list[tuple[int, int]]:
    """``chunks`` for a batch of texts, cut by the lengths of at most about 2048 evenly
    spaced ones: on a big batch, measuring every text would be a serial step as long as
    packing one chunk.  (``len`` of a str counts characters: near enough the bytes.)"""
    n = len(texts)
    stride = max(1, n // 1024)
    sample = np.fromiter(map(len, texts[::stride]), np.int64)
    # Sampled text k stands for texts [k * stride, (k + 1) * stride), the last for the rest.
    return [(a * stride, n if b == len(sample) else b * stride)
            for a, b in chunks(sample * (stride * draws), threads)]


def chunks(lengths: np.ndarray, threads: int, chunk_bytes: int | None = None) -> list[tuple[int, int]]:
    """Contiguous item ranges cut by bytes: with ``chunk_bytes``, as many as that size
    gives whatever the threads; else one if the batch is small, or 4 per thread plus one.

    Those 4 * threads + 1 are staggered: the first and the last are half the size of the
    others.  Two threads then start their kernels half a chunk apart and stay so, and
    each one's packing of its next chunk (which holds the GIL) overlaps the other's
    kernel instead of waiting for it; they still finish together.
    """
    n = len(lengths)
    if n == 0:
        return []
    total = int(lengths.sum())
    if chunk_bytes is not None:
        n_chunks = min(n, max(1, -(-total // chunk_bytes)))
        marks = np.arange(1, n_chunks) / n_chunks
    elif threads <= 1 or n == 1 or total < MIN_PARALLEL_BYTES:
        return [(0, n)]
    else:
        sizes = np.ones(4 * threads + 1)
        sizes[0] = sizes[-1] = 0.5
        marks = np.cumsum(sizes)[:-1] / sizes.sum()
    cuts = np.searchsorted(np.cumsum(lengths), marks * total, side="right")
    edges = np.unique(np.concatenate([[0], cuts, [n]]))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
