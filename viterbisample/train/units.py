"""A training corpus, read once and streaming, as distinct units with counts.

A unit is a line (no pre-tokenization, the default, so pieces may span spaces) or a
pre-token cut from a line by a ``regex`` pattern (``findall``: bytes that no match covers
are not trained on; the presets cover every byte).  Training needs each distinct unit once
with its count, so memory holds the distinct units, never the corpus; ``max_lines``
keeps a seeded uniform sample of the lines (reservoir sampling) for corpora whose distinct
lines would not fit.

Not here: what is learnt from the units (``train/trainer.py``).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np
import regex

from ..checks import check_count
from ..text import pack, to_bytes

# Pre-tokenization presets.  "whitespace": words with at most one leading space, and runs
# of white space.  "gpt": letters, digits and other symbols apart, each with at most one
# leading space (the pattern of GPT-2's tokenizer, without its contraction rules).
READ_BLOCK_BYTES = 1 << 24  # files are read in blocks of this size
READ_BATCH_LINES = 1 << 14  # texts given in Python are counted in batches of this many

SPLIT_PRESETS = {
    "whitespace": rb" ?[^\s]+|\s+",
    "gpt": rb" ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+",
}


class Units(NamedTuple):
    """Distinct units in sorted byte order, packed (``text.pack``), with their counts."""

    buf: np.ndarray  # uint8, the units back to back
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    counts: np.ndarray  # float64, occurrences of each unit
    lines: int  # lines read (after sampling)
    bytes: int  # bytes of those lines

    def __len__(self) -> int:
        return len(self.starts)

    def unit(self, i: int) -> bytes:
        return self.buf[self.starts[i] : self.ends[i]].tobytes()

    def sample(self, budget: int, seed: int = 0) -> np.ndarray:
        """Sorted indices of a seeded random sample of units of about ``budget`` bytes."""
        order = np.random.default_rng(seed).permutation(len(self))
        sizes = (self.ends - self.starts)[order]
        return np.sort(order[: int(np.searchsorted(np.cumsum(sizes), budget)) + 1])

    def subset(self, take: np.ndarray) -> "Units":
        """The units at sorted indices ``take`` (counts kept)."""
        parts = [self.buf[s:e] for s, e in zip(self.starts[take].tolist(), self.ends[take].tolist())]
        lengths = self.ends[take] - self.starts[take]
        ends = np.cumsum(lengths)
        buf = np.concatenate(parts) if parts else np.zeros(1, np.uint8)
        return Units(buf, ends - lengths, ends, self.counts[take], self.lines, self.bytes)


def split_pattern(split: str | bytes | None) -> "regex.Pattern[bytes] | None":
    """The compiled pre-tokenization pattern: None, a preset name, or a regex."""
    if split is None:
        return None
    if not isinstance(split, (str, bytes)):
        raise TypeError(f"split must be None, a preset name or a regex, got {type(split).__name__}")
    raw = SPLIT_PRESETS.get(split, split) if isinstance(split, str) else split
    try:
        pattern = regex.compile(raw.encode("utf-8") if isinstance(raw, str) else raw)
    except regex.error as exc:
        names = ", ".join(SPLIT_PRESETS)
        raise ValueError(f"split {split!r} is neither a preset ({names}) nor a valid regex: {exc}") from None
    return pattern


def corpus_lines(inputs: Iterable, progress: Callable[[int], None] | None = None) -> Iterator[list[bytes]]:
    """The lines of the corpus as bytes, in batches: each ``os.PathLike`` item is a file
    read in large blocks (LF ends a line; a CR before it stays in the text, as
    ``vsample encode`` does), each ``str``/``bytes`` item is one text.
    ``progress(bytes_read)`` follows the reading."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [Path(inputs)]
    elif isinstance(inputs, (bytes, bytearray, memoryview)):
        raise TypeError("inputs must be file paths or an iterable of texts, got a single bytes object; wrap it in a list")
    done = 0
    texts: list[bytes] = []
    for n, item in enumerate(inputs):
        if not isinstance(item, os.PathLike):
            if n < 8 and isinstance(item, str) and "\n" not in item and len(item) < 4096 and os.path.isfile(item):
                raise ValueError(
                    f"the text {item!r} is the name of an existing file; pass pathlib.Path({item!r}) "
                    "to train on the file, or bytes to train on that text"
                )
            texts.append(to_bytes(item))
            done += len(texts[-1])
            if len(texts) >= READ_BATCH_LINES:
                yield texts
                texts = []
                if progress is not None:
                    progress(done)
            continue
        if texts:
            yield texts
            texts = []
        try:
            f = open(item, "rb")
        except FileNotFoundError:
            raise FileNotFoundError(f"training file not found: {item}") from None
        except IsADirectoryError:
            raise IsADirectoryError(f"training file is a directory: {item}") from None
        with f:
            rest = b""
            while block := f.read(READ_BLOCK_BYTES):
                done += len(block)
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                yield lines
                if progress is not None:
                    progress(done)
            if rest:
                yield [rest]
    if texts:
        yield texts


def read_units(
    inputs: Iterable,
    split: str | bytes | None = None,
    max_lines: int | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Units:
    """Read the corpus once into ``Units``.  ``max_lines`` keeps a uniform random sample of
    that many lines (reservoir sampling with ``seed``); empty units are dropped."""
    pattern = split_pattern(split)
    batches: Iterable[list[bytes]] = corpus_lines(inputs, progress)
    if max_lines is not None:
        batches = [_reservoir(batches, check_count(max_lines, "max_lines", 1), seed)]
    counts: Counter[bytes] = Counter()
    n_lines = n_bytes = 0
    for lines in batches:
        n_lines += len(lines)
        n_bytes += sum(map(len, lines))
        count_units(lines, pattern, counts)
    return units_from_counts(counts, n_lines, n_bytes)


def count_units(lines: Iterable[bytes], pattern: "regex.Pattern[bytes] | None", counts: Counter) -> None:
    """Add the units of ``lines`` (whole lines, or the matches of ``pattern``) to ``counts``."""
    if pattern is None:
        counts.update(lines)
    else:
        for line in lines:
            counts.update(pattern.findall(line))


def units_from_counts(counts: Counter, n_lines: int, n_bytes: int) -> Units:
    """``Units`` of the distinct units counted (empty units dropped), in sorted byte
    order: the same whatever order, or machine, they were counted in."""
    counts.pop(b"", None)
    units = sorted(counts)
    weights = np.fromiter((counts[u] for u in units), np.float64, len(units))
    buf, starts, ends = pack(units)
    return Units(buf, starts, ends, weights, n_lines, n_bytes)


def _reservoir(batches: Iterable[list[bytes]], size: int, seed: int) -> list[bytes]:
    """A uniform sample of ``size`` lines (all of them if fewer), by reservoir sampling."""
    rng = random.Random(seed)
    sample: list[bytes] = []
    n = 0
    for lines in batches:
        for line in lines:
            if n < size:
                sample.append(line)
            else:
                k = rng.randrange(n + 1)
                if k < size:
                    sample[k] = line
            n += 1
    return sample
