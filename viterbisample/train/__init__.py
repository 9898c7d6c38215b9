"""Unigram vocabulary training (ALGORITHMS.md section 7): ``train`` and its building blocks.

``train(inputs, vocab_size, ...)`` reads the corpus once, streaming, into units (lines, or
pre-tokens with a split pattern) with counts, then runs ``trainer.Trainer``: frequent
byte-substring seeds (``substrings``), EM on the same lattice kernels as encoding, and
pruning to exactly ``vocab_size`` ids (special tokens included).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Callable, Iterable, Sequence

import numpy as np
import regex

from ..checks import check_count, read_file
from ..model import DEFAULT_SPECIAL_TOKENS
from ..text import to_bytes
from ..tokenizer import Tokenizer
from .trainer import Trainer

# Pre-tokenization presets; None (the default) trains on whole lines, so pieces may span
# spaces.  "whitespace": words with at most one leading space, and runs of spaces.
# "gpt": letters, digits and other symbols apart, each with at most one leading space.
SPLIT_PRESETS = {
    "whitespace": rb" ?[^\s]+|\s+",
    "gpt": rb" ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+",
}


def read_units(
    inputs: Iterable,
    split: str | bytes | None = None,
    max_lines: int | None = None,
    seed: int = 0,
) -> tuple[list[bytes], np.ndarray]:
    """Units and their counts from files (``os.PathLike``) or texts (``str``/``bytes``
    lines), read once.  ``max_lines`` keeps a uniform random sample of that many lines
    (reservoir sampling with ``seed``), so memory holds at most the sample."""
    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]
    pattern = None
    if split is not None:
        raw = SPLIT_PRESETS.get(split, split) if isinstance(split, str) else split
        pattern = regex.compile(raw.encode() if isinstance(raw, str) else raw)

    def lines() -> Iterable[bytes]:
        for item in inputs:
            if isinstance(item, os.PathLike):
                yield from read_file(item, "training file").split(b"\n")
            else:
                yield to_bytes(item)

    if max_lines is not None:
        check_count(max_lines, "max_lines", 1)
        rng = random.Random(seed)
        sample: list[bytes] = []
        for n, line in enumerate(lines()):
            if n < max_lines:
                sample.append(line)
            else:
                k = rng.randrange(n + 1)
                if k < max_lines:
                    sample[k] = line
        source: Iterable[bytes] = sample
    else:
        source = lines()
    counts: Counter[bytes] = Counter()
    for line in source:
        if pattern is None:
            if line:
                counts[line] += 1
        else:
            counts.update(pattern.findall(line))
    units = sorted(counts)  # a fixed order: the model does not depend on input order quirks
    return units, np.array([counts[u] for u in units], np.float64)


def train(
    inputs: Iterable,
    vocab_size: int,
    *,
    max_piece_bytes: int = 16,
    split: str | bytes | None = None,
    whole_characters: bool = True,
    split_digits: bool = False,
    user_pieces: Sequence[bytes | str] = (),
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    max_lines: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
) -> Tokenizer:
    """Train a Unigram vocabulary of exactly ``vocab_size`` ids (special tokens included).

    ``inputs``: ``pathlib.Path`` files and/or ``str``/``bytes`` lines (any iterable, read
    once).  ``split``: None (whole lines), ``"whitespace"``, ``"gpt"`` or a regex pattern.
    ``whole_characters`` keeps multi-byte pieces on UTF-8 character boundaries;
    ``split_digits`` keeps digits as single bytes; ``user_pieces`` are always kept.
    Raises ``ValueError`` for an empty corpus or a ``vocab_size`` below the 256 bytes plus
    special tokens and user pieces.  A corpus too small to support ``vocab_size`` pieces
    gives a smaller model and a ``UserWarning`` saying how many ids it reached.  Deterministic for given inputs and options, whatever
    ``threads``.
    """
    check_count(vocab_size, "vocab_size", 1)
    check_count(max_piece_bytes, "max_piece_bytes", 1)
    if max_piece_bytes > 64:
        raise ValueError(f"max_piece_bytes must be <= 64, got {max_piece_bytes}")
    units, counts = read_units(inputs, split, max_lines, seed)
    trainer = Trainer(
        vocab_size,
        max_piece_bytes=max_piece_bytes,
        whole_characters=whole_characters,
        split_digits=split_digits,
        user_pieces=[to_bytes(p) for p in user_pieces],
        special_tokens=special_tokens,
        threads=threads,
        log=log,
    )
    return trainer.run(units, counts)


__all__ = ["train", "read_units", "Trainer", "SPLIT_PRESETS"]
