"""Training a vocabulary on a Dask cluster: the single-process trainer, with the corpus
read and each EM E-step run by the workers.

The model file is the one ``viterbisample.train`` writes, byte for byte, for any number of
workers and any block size, because every number the trainer sees is computed the same
way:

* **Reading.** The files are cut into byte blocks at line ends (``blocks.plan_blocks``);
  each worker counts the units of its blocks (``train.units.count_units``) by first byte,
  and 256 tasks each add up the counts of one first byte and sort those units
  (``units_from_counts``): integers, so the order of addition does not matter, and the
  ranges in order are ``read_units``'s order.  The ranges stay on the workers
  (``ClusterUnits``); the driver keeps each unit's length and count, 16 bytes per
  distinct unit, which is all the trainer reads of the whole corpus.
* **E-steps.** The units are cut into the chunks every E-step sums over
  (``engine.sum_chunks``: by size alone) and those into groups of
  ``engine.SUM_GROUP_CHUNKS``; the groups are sent to the workers once and kept there.
  Each E-step sends the model's kernel arrays once to every worker; a worker computes its
  groups' chunk counts and adds them within each group in order (``engine.lattice_stats``
  with the group's chunks), and the driver adds the groups in order
  (``engine.group_sum``): the two-level order ``engine.ordered_sum`` fixes for one process
  too.  The log-likelihood is the units' counts times their log Z, all on the driver.
* **Samples.** The trainer seeds from, and runs its first rounds on, seeded samples of
  at most a few MB of units (``Units.sample``, which reads only the lengths); their
  bytes are fetched from the workers (``ClusterUnits.subset``), so the seeds are those of
  one process.
* **The rest** (seeding on the sample, M-steps, pruning, the final order) runs on the
  driver, as in one process.

Not supported here: texts given in Python (files or glob patterns only) and
``max_lines`` (its reservoir sample follows the order of the lines).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Iterable

import numpy as np

from .. import engine
from ..engine import group_sum, lattice_stats, sum_chunks
from ..model import KernelArrays
from ..tokenizer import Tokenizer
from ..train import make_trainer
from ..text import pack
from ..train.units import Units, count_units, split_pattern, units_from_counts
from .blocks import Block, block_lines, input_files, plan_blocks
from .corpus import _client_for

DEFAULT_BLOCKSIZE = 16 << 20

try:  # so that Dask weighs the ranges kept on the workers by their arrays
    from dask.sizeof import sizeof

    @sizeof.register(Units)
    def _sizeof_units(units: Units) -> int:
        return int(units.buf.nbytes + units.starts.nbytes + units.ends.nbytes + units.counts.nbytes)
except ImportError:  # without Dask this module is never used
    pass


def train(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    vocab_size: int,
    *,
    client: Any = None,
    blocksize: int = DEFAULT_BLOCKSIZE,
    split: str | bytes | None = None,
    **options: Any,
) -> Tokenizer:
    """``viterbisample.train`` on a Dask cluster: the same options (but ``max_lines``),
    the same model.  ``inputs``: files or glob patterns; ``client``: a
    ``distributed.Client`` (None: the current one, else a local cluster for the call);
    ``blocksize``: bytes of file per reading task."""
    if options.get("max_lines") is not None:
        raise ValueError("max_lines is not supported on a cluster: its sample follows the order of the lines")
    options.pop("max_lines", None)
    trainer = make_trainer(vocab_size, split=split, **options)
    files = input_files(inputs)
    blocks = plan_blocks(files, blocksize)
    show = trainer.progress
    with _client_for(client) as c:
        units = ClusterUnits.count(c, blocks, split)
        show.done(f"read {units.lines:,} lines ({units.bytes / 1e6:,.1f} MB) on the cluster: "
                  f"{len(units):,} distinct units")
        return trainer.run(units, ClusterEStep(c))


def _count_block(block: Block, split: str | bytes | None) -> tuple[dict[int, Counter], int, int]:
    """The units of a block, counted, by first byte (the range each belongs to)."""
    counts: Counter = Counter()
    lines = list(block_lines(block))
    count_units(lines, split_pattern(split), counts)
    by_first: dict[int, Counter] = {}
    for unit, n in counts.items():
        if unit:
            by_first.setdefault(unit[0], Counter())[unit] = n
    return by_first, len(lines), sum(map(len, lines))


def _merge_range(first_byte: int, *blocks: tuple) -> Units:
    """The distinct units starting with ``first_byte``, counted over every block, sorted."""
    counts: Counter = Counter()
    for by_first, _, _ in blocks:
        counts.update(by_first.get(first_byte, {}))
    return units_from_counts(counts, 0, 0)


def _lengths_and_counts(part: Units) -> tuple[np.ndarray, np.ndarray]:
    return part.ends - part.starts, part.counts


def _take(part: Units, local: np.ndarray) -> list[bytes]:
    return [part.unit(int(i)) for i in local]


class ClusterUnits:
    """The ``Units`` of a corpus whose bytes stay on the workers, in 256 ranges by first
    byte: sorted within each and the ranges in order, so their concatenation is the order
    of ``train.units.read_units``.  The driver keeps each unit's length and count (16
    bytes per distinct unit), which is all the trainer reads of the whole; what it reads
    of a sample (``subset``) is fetched, and the E-steps run where the bytes are
    (``ClusterEStep``)."""

    def __init__(self, client: Any, parts: list, part_sizes: list[int], lengths: np.ndarray, counts: np.ndarray,
                 lines: int, size: int) -> None:
        self.client, self.parts = client, parts
        self.ends = np.cumsum(lengths)
        self.starts = self.ends - lengths
        self.counts, self.lines, self.bytes = counts, lines, size
        self._part_first = np.concatenate([[0], np.cumsum(part_sizes)]).astype(np.int64)  # global index of each

    @classmethod
    def count(cls, client: Any, blocks: list[Block], split: str | bytes | None) -> "ClusterUnits":
        counted = client.map(_count_block, blocks, [split] * len(blocks), pure=False)
        parts = [client.submit(_merge_range, b, *counted, pure=False) for b in range(256)]
        summaries = client.gather([client.submit(_lengths_and_counts, p, pure=False) for p in parts])
        totals = client.gather(client.map(lambda r: (r[1], r[2]), counted, pure=False))
        del counted  # the ranges hold what is needed; the block counts can go
        lengths = np.concatenate([x for x, _ in summaries]).astype(np.int64)
        counts = np.concatenate([x for _, x in summaries]).astype(np.float64)
        return cls(client, parts, [len(x) for x, _ in summaries], lengths, counts,
                   sum(t[0] for t in totals), sum(t[1] for t in totals))

    def __len__(self) -> int:
        return len(self.starts)

    def sample(self, budget: int, seed: int = 0) -> np.ndarray:
        return Units.sample(self, budget, seed)  # the lengths are all it reads

    def _locate(self, take: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(range, local indices) of the global indices ``take`` (sorted), range by range."""
        owner = np.searchsorted(self._part_first, take, side="right") - 1
        return [(int(p), take[owner == p] - self._part_first[p]) for p in np.unique(owner)]

    def subset(self, take: np.ndarray) -> Units:
        """The units at sorted indices ``take``, fetched from the workers, as ``Units``."""
        located = self._locate(np.asarray(take, np.int64))
        fetched = self.client.gather([self.client.submit(_take, self.parts[p], local, pure=False)
                                      for p, local in located])
        items = [u for part in fetched for u in part]
        buf, starts, ends = pack(items)
        return Units(buf, starts, ends, self.counts[take], self.lines, self.bytes)

    @property
    def buf(self) -> np.ndarray:
        """Every unit's bytes (the trainer reads them whole only of a corpus smaller than
        its seed sample)."""
        return self.subset(np.arange(len(self))).buf

    def groups(self, bounds: list[tuple[int, int]], size: int) -> list:
        """Futures of the E-step's chunk groups (see ``ClusterEStep``), each assembled on a
        worker from the ranges it spans."""
        out = []
        for k in range(0, len(bounds), size):
            part = bounds[k : k + size]
            first, last = part[0][0], part[-1][1]
            pieces = self._locate(np.arange(first, last))
            out.append(self.client.submit(_assemble, [(self.parts[p], int(local[0]), int(local[-1]) + 1)
                                                      for p, local in pieces],
                                          [(a - first, b - first) for a, b in part], pure=False))
        return out


def _assemble(pieces: list[tuple[Units, int, int]], bounds: list) -> tuple:
    """One E-step group from slices of ranges: packed bytes, offsets, counts, chunks."""
    units = [part.unit(i) for part, lo, hi in pieces for i in range(lo, hi)]
    counts = np.concatenate([part.counts[lo:hi] for part, lo, hi in pieces])
    buf, starts, ends = pack(units)
    return buf, starts, ends, counts, bounds


class ClusterEStep:
    """``train.em.e_step`` with the chunks' statistics computed by the workers (see the
    module docstring).  The groups of each ``Units`` are made once and stay on the
    workers: assembled there from a ``ClusterUnits``, sent from the driver for a sample."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._sent: dict[int, tuple[Any, list]] = {}  # id(units) -> (units, group futures)

    def __call__(self, arrays: KernelArrays, units: Any, threads: int) -> tuple[np.ndarray, float]:
        groups = self._groups(units)
        [model] = self.client.scatter([arrays], broadcast=True)  # a list: the tuple goes whole
        results = self.client.gather([self.client.submit(_group_stats, model, g, pure=False) for g in groups])
        total = group_sum([counts for counts, _ in results], len(arrays.scores))
        log_z = np.concatenate([z for _, z in results]) if results else np.zeros(0)
        return total[arrays.num_special :], float(units.counts @ log_z)

    def _groups(self, units: Any) -> list:
        found = self._sent.get(id(units))
        if found is not None and found[0] is units:
            return found[1]
        bounds = sum_chunks(units.ends - units.starts)
        size = engine.SUM_GROUP_CHUNKS  # read at each call: what ordered_sum uses now
        if isinstance(units, ClusterUnits):
            futures = units.groups(bounds, size)
        else:
            groups = []
            for k in range(0, len(bounds), size):
                part = bounds[k : k + size]
                first, last = part[0][0], part[-1][1]
                lo, hi = int(units.starts[first]), int(units.ends[last - 1])
                groups.append((units.buf[lo:hi].copy(), units.starts[first:last] - lo,
                               units.ends[first:last] - lo, units.counts[first:last].copy(),
                               [(a - first, b - first) for a, b in part]))
            futures = self.client.scatter(groups)
        self._sent[id(units)] = (units, futures)
        return futures


def _group_stats(arrays: KernelArrays, group: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(the group's chunk counts added in order, its units' log Z), on a worker."""
    buf, starts, ends, weights, bounds = group
    stats = lattice_stats(arrays, buf, starts, ends, 1.0, 1, weights, True, bounds)
    return stats["counts"], stats["log_z"]
