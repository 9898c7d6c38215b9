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


class Reading:
    """What ``read_lines`` has read so far: ``bytes``, LFs included (so that a progress
    share ends at exactly the input's size), and ``newline``, whether the input ended
    with LF (False once the last line read from the last file had none; set when
    ``read_lines`` is exhausted)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.newline = True


def read_lines(paths: Sequence[str], reading: Reading | None = None) -> Iterator[bytes]:
    """Lines of the files (or stdin), without their LF; a final line without LF counts.
    ``reading`` keeps count of the bytes read and records whether the input's very last
    line had an LF."""
    reading = reading or Reading()
    streams: Iterable[BinaryIO]
    if not paths:
        streams = [sys.stdin.buffer]
    else:
        streams = (open(p, "rb") for p in paths)
    for f in streams:
        line = None
        try:
            for line in f:
                reading.bytes += len(line)
                yield line[:-1] if line.endswith(b"\n") else line
        finally:
            if f is not sys.stdin.buffer:
                f.close()
        if line is not None:  # an empty file changes nothing
            reading.newline = line.endswith(b"\n")


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

    def finish(self, reading: Reading) -> None:
        if reading.newline:
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


def is_blank(line: bytes) -> bool:
    """Whether a line holds no text: empty, or only CRs (an empty line of a CRLF file)."""
    return line.strip(b"\r") == b""


def documents(lines: Iterable[bytes], doc_sep: str = "line") -> Iterator[bytes]:
    """Documents from lines: each line (``"line"``), or runs of lines joined with LF and
    separated by blank lines (``"blank"``).  Blank lines (``is_blank``) are never
    documents, so a token file holds no document that is only its markers.

    >>> list(documents([b"a", b"", b"b", b"\\r", b"c"]))
    [b'a', b'b', b'c']
    >>> list(documents([b"a", b"b", b"", b"", b"c"], "blank"))
    [b'a\\nb', b'c']
    """
    if doc_sep == "line":
        yield from (line for line in lines if not is_blank(line))
        return
    if doc_sep != "blank":
        raise ValueError(f"doc_sep must be 'line' or 'blank', got {doc_sep!r}")
    current: list[bytes] = []
    for line in lines:
        if is_blank(line):
            if current:
                yield b"\n".join(current)
                current = []
        else:
            current.append(line)
    if current:
        yield b"\n".join(current)
