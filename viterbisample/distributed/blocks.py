"""A corpus cut into byte blocks that end at line ends, so that one huge file is read in
parallel too, and the documents each block holds.

``input_files`` expands the inputs (files, or glob patterns, each pattern's matches in
sorted order) in the order given.  ``plan_blocks`` cuts each file at about every
``blocksize`` bytes, moving every cut forward to just after the next LF, so a line (and
so a document, with ``doc_sep="line"``) never spans two blocks; a line longer than a
block makes that block longer, and cuts that fall inside it vanish.  The lines of a
block (``block_lines``) are the lines ``lines.read_lines`` gives for that part of the
file: LF removed, a last line without LF counted.

The sampling stream of a document is its number in the whole input (``token_files``),
so a block's first document number is the count of documents in every block before it:
``count_documents`` gives one block's count, through ``lines.documents`` itself, and
``first_indices`` adds them up.  Blocks never span files, as ``read_lines`` never joins
lines of two files.

Left out: ``doc_sep="blank"`` (a document of several lines can span a cut, and
``read_lines`` joins the last lines of one file with the first lines of the next into
one document).
"""

from __future__ import annotations

import glob
import os
from typing import Iterable, Iterator, NamedTuple, Sequence

from ..lines import documents

SCAN_BYTES = 1 << 16  # read this much at a time when looking for the next LF


class Block(NamedTuple):
    """Bytes [start, end) of the file at ``path``: whole lines, the first at ``start``."""

    path: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


def input_files(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """The files of ``inputs``, in order: a path names a file, a string with glob
    characters (``*?[``) that is no file names its matches, sorted.  Raises
    ``FileNotFoundError`` for a path or pattern that names nothing, and
    ``IsADirectoryError`` for a folder."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files: list[str] = []
    for item in inputs:
        name = os.fspath(item)
        if not os.path.exists(name) and glob.has_magic(name):
            matches = sorted(glob.glob(name))
            if not matches:
                raise FileNotFoundError(f"no input file matches {name}")
        else:
            matches = [name]
        for match in matches:
            if os.path.isdir(match):
                raise IsADirectoryError(f"input is a directory, not a file: {match}")
            if not os.path.exists(match):
                raise FileNotFoundError(f"input file not found: {match}")
            files.append(match)
    if not files:
        raise ValueError("no input files given")
    return files


def plan_blocks(files: Sequence[str], blocksize: int) -> list[Block]:
    """The blocks of ``files`` in input order, each about ``blocksize`` bytes and ending
    just after an LF (or at the end of its file); empty files give no block.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp(), "t.txt"); _ = p.write_bytes(b"ab\\ncdef\\ng")
    >>> [(b.start, b.end) for b in plan_blocks([str(p)], 2)]
    [(0, 3), (3, 8), (8, 9)]
    """
    if isinstance(blocksize, bool) or not isinstance(blocksize, int) or blocksize < 1:
        raise ValueError(f"blocksize must be a positive number of bytes, got {blocksize!r}")
    blocks: list[Block] = []
    for path in files:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            start = 0
            while start < size:
                end = _line_end_after(f, start + blocksize, size)
                blocks.append(Block(str(path), start, end))
                start = end
    return blocks


def _line_end_after(f, offset: int, size: int) -> int:
    """The position just after the first LF at or after ``offset - 1`` (so ``offset``
    itself when a line ends there), or ``size``."""
    if offset >= size:
        return size
    f.seek(offset - 1)
    at = offset - 1
    while chunk := f.read(SCAN_BYTES):
        lf = chunk.find(b"\n")
        if lf >= 0:
            return at + lf + 1
        at += len(chunk)
    return size


def block_lines(block: Block) -> Iterator[bytes]:
    """The lines of ``block`` without their LF, read lazily (a block may be large).
    Raises ``ValueError`` if the file no longer ends a line where the plan said."""
    if block.size <= 0:
        return
    with open(block.path, "rb") as f:
        f.seek(block.start)
        left = block.size
        for line in f:
            left -= len(line)
            if left < 0:
                break
            yield line[:-1] if line.endswith(b"\n") else line
            if left == 0:
                return
    raise ValueError(f"{block.path} changed while it was read: bytes {block.start}..{block.end} "
                     "no longer end a line (or the file is shorter)")


def count_documents(block: Block) -> int:
    """The documents of ``block``: its non-blank lines, as ``lines.documents`` counts them."""
    return sum(1 for _ in documents(block_lines(block)))


def first_indices(counts: Sequence[int]) -> list[int]:
    """The number of each block's first document in the whole input.

    >>> first_indices([3, 0, 2])
    [0, 3, 3]
    """
    out, total = [], 0
    for n in counts:
        out.append(total)
        total += n
    return out
