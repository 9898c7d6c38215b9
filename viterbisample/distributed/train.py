"""Training a vocabulary on a Dask cluster: the single-process trainer, with the corpus
read and each EM E-step run by the workers.

The model file is the one ``viterbisample.train`` writes, byte for byte, for any number of
workers and any block size, because every number the trainer sees is computed the same
way:

* **Reading.** The files are cut into byte blocks at line ends (``blocks.plan_blocks``);
  each worker counts the units of its blocks (``train.units.count_units``), and the
  driver adds the counts and sorts the distinct units (``units_from_counts``): integers,
  so the order of addition does not matter.
* **E-steps.** The units are cut into the chunks every E-step sums over
  (``engine.sum_chunks``: by size alone) and those into groups of
  ``engine.SUM_GROUP_CHUNKS``; the groups are sent to the workers once and kept there.
  Each E-step sends the model's kernel arrays once to every worker; a worker computes its
  groups' chunk counts and adds them within each group in order (``engine.lattice_stats``
  with the group's chunks), and the driver adds the groups in order
  (``engine.group_sum``): the two-level order ``engine.ordered_sum`` fixes for one process
  too.  The log-likelihood is the units' counts times their log Z, all on the driver.
* **The rest** (seeds, M-steps, pruning, the final order) runs on the driver, as in one
  process: seeding needs every distinct unit (the suffix sort), so the distinct units
  must fit in the driver's memory, as they must for ``train``.

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
from ..train.units import Units, count_units, split_pattern, units_from_counts
from .blocks import Block, block_lines, input_files, plan_blocks
from .corpus import _client_for

DEFAULT_BLOCKSIZE = 16 << 20


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
        parts = c.gather(c.map(_count_block, blocks, [split] * len(blocks), pure=False))
        counts: Counter = Counter()
        n_lines = n_bytes = 0
        for part, lines, size in parts:
            counts.update(part)
            n_lines += lines
            n_bytes += size
        units = units_from_counts(counts, n_lines, n_bytes)
        del counts, parts
        show.done(f"read {units.lines:,} lines ({units.bytes / 1e6:,.1f} MB) on the cluster: "
                  f"{len(units):,} distinct units")
        return trainer.run(units, ClusterEStep(c))


def _count_block(block: Block, split: str | bytes | None) -> tuple[Counter, int, int]:
    counts: Counter = Counter()
    lines = list(block_lines(block))
    count_units(lines, split_pattern(split), counts)
    return counts, len(lines), sum(map(len, lines))


class ClusterEStep:
    """``train.em.e_step`` with the chunks' statistics computed by the workers (see the
    module docstring).  Each ``Units`` it is given is sent to the workers once."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._sent: dict[int, tuple[Units, list]] = {}  # id(units) -> (units, group futures)

    def __call__(self, arrays: KernelArrays, units: Units, threads: int) -> tuple[np.ndarray, float]:
        groups = self._groups(units)
        [model] = self.client.scatter([arrays], broadcast=True)  # a list: the tuple goes whole
        results = self.client.gather([self.client.submit(_group_stats, model, g, pure=False) for g in groups])
        total = group_sum([counts for counts, _ in results], len(arrays.scores))
        log_z = np.concatenate([z for _, z in results]) if results else np.zeros(0)
        return total[arrays.num_special :], float(units.counts @ log_z)

    def _groups(self, units: Units) -> list:
        found = self._sent.get(id(units))
        if found is not None and found[0] is units:
            return found[1]
        bounds = sum_chunks(units.ends - units.starts)
        groups = []
        size = engine.SUM_GROUP_CHUNKS  # read at each call: what ordered_sum uses now
        for k in range(0, len(bounds), size):
            part = bounds[k : k + size]
            first, last = part[0][0], part[-1][1]
            lo, hi = int(units.starts[first]), int(units.ends[last - 1])
            groups.append((units.buf[lo:hi].copy(), units.starts[first:last] - lo, units.ends[first:last] - lo,
                           units.counts[first:last].copy(), [(a - first, b - first) for a, b in part]))
        futures = self.client.scatter(groups)
        self._sent[id(units)] = (units, futures)
        return futures


def _group_stats(arrays: KernelArrays, group: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(the group's chunk counts added in order, its units' log Z), on a worker."""
    buf, starts, ends, weights, bounds = group
    stats = lattice_stats(arrays, buf, starts, ends, 1.0, 1, weights, True, bounds)
    return stats["counts"], stats["log_z"]
