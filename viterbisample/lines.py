"""Lines in and out, for the command line and the token files: the lines of files (or
stdin) as bytes, batches of them, documents made of them, and output that ends with a
newline exactly when the input did, so that ``vsample encode --format ids | vsample
decode`` gives back the input byte for byte.
"""

from __future__ import annotations

import sys
from typing import BinaryIO, Iterable, Iterator, Sequence

BATCH_BYTES = 1 << 22
BATCH_LINES = 1 << 14


class Tail:
    """Whether the input ended with LF: ``newline`` is False once the last line read from
    the last file had none (set when ``read_lines`` is exhausted)."""

    def __init__(self) -> None:
        self.newline = True


def read_lines(paths: Sequence[str], tail: Tail | None = None) -> Iterator[bytes]:
    """Lines of the files (or stdin), without their LF; a final line without LF counts,
    and ``tail`` records whether the input's very last line had one."""
    streams: Iterable[BinaryIO]
    if not paths:
        streams = [sys.stdin.buffer]
    else:
        streams = (open(p, "rb") for p in paths)
    for f in streams:
        line = None
        try:
            for line in f:
                yield line[:-1] if line.endswith(b"\n") else line
        finally:
            if f is not sys.stdin.buffer:
                f.close()
        if tail is not None and line is not None:  # an empty file changes nothing
            tail.newline = line.endswith(b"\n")


class LineWriter:
    """Writes whole output lines, holding back the last LF until more output follows, so
    that ``finish`` can end the output like the input: with an LF or without."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.held = b""

    def write(self, lines: bytes) -> None:
        if lines:
            self.out.write(self.held)
            self.out.write(memoryview(lines)[:-1])
            self.held = lines[-1:]

    def finish(self, tail: Tail) -> None:
        if tail.newline:
            self.out.write(self.held)


def batches(items: Iterable[bytes], max_bytes: int = BATCH_BYTES, max_items: int | None = BATCH_LINES
            ) -> Iterator[list[bytes]]:
    """Consecutive lists of ``items``, each closed once it holds ``max_bytes`` bytes or
    ``max_items`` items (None: no limit on the count)."""
    batch: list[bytes] = []
    size = 0
    for item in items:
        batch.append(item)
        size += len(item)
        if size >= max_bytes or (max_items is not None and len(batch) >= max_items):
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def documents(lines: Iterable[bytes], doc_sep: str = "line") -> Iterator[bytes]:
    """Documents from lines: each line (``"line"``), or runs of non-empty lines joined
    with LF and separated by blank lines (``"blank"``)."""
    if doc_sep == "line":
        yield from lines
        return
    if doc_sep != "blank":
        raise ValueError(f"doc_sep must be 'line' or 'blank', got {doc_sep!r}")
    current: list[bytes] = []
    for line in lines:
        if line.strip(b"\r") == b"":
            if current:
                yield b"\n".join(current)
                current = []
        else:
            current.append(line)
    if current:
        yield b"\n".join(current)
