"""Everything else the lattice of a text knows, exactly (ALGORITHMS.md section 5): log Z,
the statistics of q_alpha (entropy, expected length and score, marginals), the
log-probability of a segmentation, the k best segmentations and samples without
replacement.

Functions over an ``engine.Engine`` (a model and its batch drivers); ``Tokenizer``
exposes each as a method with the same name.  Arguments are checked here.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from . import lattice
from .lattice import topk
from .checks import (
    INT32_MAX,
    INT64_MAX,
    UINT64_MAX,
    check_alpha,
    check_count,
    check_ids,
    check_memory,
    check_num_threads,
    check_seed,
    check_texts,
    check_uint64,
)
from .engine import Engine, as_array, in_chunks, joined, kernel_alpha, lattice_stats
from .logmath import inclusion_probability, scaled_gap
from .lattice.marginals import edge_marginals
from .rng import stream_key
from .text import Text, pack, to_bytes


def log_partition_parts(engine: Engine, texts: Iterable[Text], alpha: float, num_threads=None):
    """(log Z, Viterbi score, log Z relative to the best path) of each text, as float64
    arrays (log Z = alpha * best + rel; ``lattice.tempered_pass``)."""
    a = check_alpha(alpha)
    threads = check_num_threads(num_threads)
    buf, starts, ends = pack(check_texts(texts))
    m = engine.model
    out, best, rel = (np.zeros(len(starts), np.float64) for _ in range(3))
    args = (m.suffix_trie, m.scores, a, buf, starts, ends, out, best, rel)
    in_chunks(ends - starts, threads, lambda f, l: lattice.log_partition_items(*args, f, l))
    return out, best, rel


def count_edges_batch(engine: Engine, texts: Iterable[Text], num_threads: int | None = None) -> np.ndarray:
    """Number of lattice edges (pieces occurring at each position) of each text."""
    threads = check_num_threads(num_threads)
    buf, starts, ends = pack(check_texts(texts))
    out = np.zeros(len(starts), np.int64)
    args = (engine.model.suffix_trie, buf, starts, ends, out)
    in_chunks(ends - starts, threads, lambda f, l: lattice.count_edges_items(*args, f, l))
    return out


def stats_batch(engine: Engine, texts: Iterable[Text], alpha: float, num_threads: int | None,
                text_weights: Sequence[float] | np.ndarray | None = None, piece_counts: bool = False,
                viterbi_length: bool = False) -> dict[str, np.ndarray]:
    """``Tokenizer.stats_batch`` (whose defaults are the API's): log Z, entropy, expected length and score per text, and
    optionally the weighted expected uses of every piece and the Viterbi path's length."""
    a = check_alpha(alpha)
    threads = check_num_threads(num_threads)
    texts = check_texts(texts)
    buf, starts, ends = pack(texts)
    n = len(starts)
    if text_weights is None:
        weights = np.ones(n, np.float64)
    else:
        weights = np.asarray(text_weights, np.float64)
        if weights.shape != (n,) or not np.all(np.isfinite(weights)):
            raise ValueError(f"text_weights must be {n} finite numbers, one per text")
    out = lattice_stats(engine.model.kernel_arrays, buf, starts, ends, a, threads, weights, piece_counts)
    if viterbi_length:
        _, offsets = joined(engine.encoded_chunks(texts, None, 0, 0, threads, 0))
        out["viterbi_length"] = np.diff(offsets)
    return out


def marginals(engine: Engine, text: Text, alpha: float = 1.0, by: str = "piece") -> Any:
    """``Tokenizer.marginals``: per piece (a dict id -> expected uses) or per edge (a list
    of (start, end, id, probability), ordered by end, then longest first)."""
    a = check_alpha(alpha)
    if by == "piece":
        counts = stats_batch(engine, [text], a, None, piece_counts=True)["counts"]
        nz = np.flatnonzero(counts)
        return dict(zip(nz.tolist(), counts[nz].tolist()))
    if by != "edge":
        raise ValueError(f"by must be 'piece' or 'edge', got {by!r}")
    m = engine.model
    s, e, i, p = edge_marginals(m.suffix_trie, m.scores, a, as_array(to_bytes(text)))
    return list(zip(s.tolist(), e.tolist(), i.tolist(), p.tolist()))


def log_prob(engine: Engine, text: Text, ids: Sequence[int], alpha: float = 1.0) -> float:
    """log q_alpha(ids | text), computed relative to the best path (alpha * S - log Z
    would lose every digit at large alpha); ``ValueError`` if ``ids`` does not spell the
    text or holds a special token."""
    a = check_alpha(alpha)
    data = to_bytes(text)
    m = engine.model
    arr = check_ids(ids, len(m.scores))
    if arr.size and arr.min() < m.num_special:
        raise ValueError(
            f"ids contain the special token {int(arr[arr < m.num_special][0])}, which no "
            "segmentation of a text contains"
        )
    if b"".join(m.decode_table[i] for i in arr.tolist()) != data:
        raise ValueError("ids do not spell the text: decode_bytes(ids) differs from the text's bytes")
    total = 0.0
    for i in arr.tolist():  # summed in path order, as the passes sum best scores
        total += float(m.scores[i])
    _, best, rel = log_partition_parts(engine, [data], a)
    return scaled_gap(a, min(total - float(best[0]), 0.0)) - float(rel[0])


def most_paths(n_bytes: int, k: int) -> int:
    """At most how many of k paths a search returns for a text of n_bytes bytes: a text
    has at most 2**(n_bytes - 1) segmentations (one for the empty text)."""
    return k if n_bytes > 64 else min(k, 2 ** max(0, n_bytes - 1))


def nbest_batch(
    engine: Engine, texts: Iterable[Text], k: int, num_threads: int | None = None
) -> list[list[tuple[list[int], float]]]:
    """``Tokenizer.nbest_batch``: the exact k best segmentations of each text, with their
    scores, best first (a k-best dynamic program, ``topk.nbest``)."""
    k = check_count(k, "k", 1)
    texts = [to_bytes(t) for t in check_texts(texts)]
    longest = max(map(len, texts), default=0)
    # Each position keeps k partial paths (a float64 score, an int32 rank and an int32
    # piece); the paths returned cost an int32 and a list slot per id, and a list each.
    found = [most_paths(len(t), k) for t in texts]
    check_memory(
        (longest + 1) * k * 16 + sum(f * (12 * len(t) + 200) for f, t in zip(found, texts)),
        f"nbest with k = {k} on a text of {longest} bytes (16 bytes per byte and path)",
        "split the text or lower k",
    )
    k = check_count(k, "k", 1, INT32_MAX)
    m = engine.model

    def one(data: bytes) -> list[tuple[list[int], float]]:
        ids, offsets, scores = topk.nbest(m.suffix_trie, m.scores, m.lengths, as_array(data), k)
        return [(seg, sc) for seg, sc in zip(engine.rows(ids, offsets), scores.tolist())]

    return engine.per_text(texts, num_threads, one)


def sample_distinct_batch(engine: Engine, texts: Iterable[Text], alpha: float, n: int, seed: int | None,
                          epoch: int, num_threads: int | None, first_index: int, include_best: bool,
                          ) -> list[list[tuple[list[int], float, float]]]:
    """``Tokenizer.sample_distinct_batch`` (whose defaults are the API's): n distinct
    segmentations of each text drawn without replacement (Gumbel-top-k,
    ``topk.sample_distinct``), as (ids, log q, inclusion estimate) triples; text k uses
    the stream (seed, epoch, first_index + k, 0)."""
    a = check_alpha(alpha)
    n = check_count(n, "n")
    s = check_seed(seed)
    e = check_uint64(epoch, "epoch")
    texts = [to_bytes(t) for t in check_texts(texts)]
    first = check_count(first_index, "first_index", 0, UINT64_MAX + 1 - max(1, len(texts)))
    # The search keeps n + 1 leaves (16 bytes each) whatever the text, and about one
    # node (44 bytes) per byte of each path it returns; the paths cost as in nbest.
    found = [most_paths(len(t), n) for t in texts]
    check_memory(
        16 * (n + 1) + max((f * 44 * (len(t) + 1) for f, t in zip(found, texts)), default=0)
        + sum(f * (12 * len(t) + 200) for f, t in zip(found, texts)),
        f"n = {n} distinct samples of {len(texts)} text(s) of up to "
        f"{max(map(len, texts), default=0)} bytes",
    )
    n = check_count(n, "n", 0, INT64_MAX - 1)
    m = engine.model
    keyed = list(zip(texts, range(first, first + len(texts))))

    def one(item: tuple[bytes, int]) -> list[tuple[list[int], float, float]]:
        data, index = item
        if n == 0:
            return []
        key = np.uint64(stream_key(np.uint64(s), np.uint64(e), np.uint64(index), np.uint64(0)))
        ids, offsets, logq, keys, kappa = topk.sample_distinct(
            m.suffix_trie, m.scores, a, m.lengths, as_array(data), n, key,
        )
        paths = engine.rows(ids, offsets)
        logq = logq.tolist()
        if logq and min(logq) == -math.inf:
            # Paths of probability 0 are never drawn: at alpha = inf all but the
            # Viterbi path, at a huge finite alpha those whose q underflows.
            drawn = [r for r, q in enumerate(logq) if q > -math.inf]
            paths, logq, keys = [paths[r] for r in drawn], [logq[r] for r in drawn], keys[drawn]
        if include_best:
            best = engine.encode_one(data, kernel_alpha(None))
            if best in paths:
                at = paths.index(best)
                paths.insert(0, paths.pop(at))
                logq.insert(0, logq.pop(at))
                kappa_rest = kappa
            else:
                kappa_rest = float(keys[-1]) if len(paths) == n else -math.inf
                paths = [best] + paths[: n - 1]
                logq = [log_prob(engine, data, best, a)] + logq[: n - 1]
            incl = [1.0] + [inclusion_probability(q, kappa_rest) for q in logq[1:]]
        else:
            incl = [inclusion_probability(q, kappa) for q in logq]
        return list(zip(paths, logq, incl))

    return engine.per_text(keyed, num_threads, one)
