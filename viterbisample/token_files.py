"""A whole corpus to one flat array of token ids on disk: ``.npy`` or Megatron's indexed pair.

``write_token_file`` streams documents (``lines.documents``: each non-blank line, or
blocks of lines between blank lines) through ``Tokenizer.encode_batch_arrays`` in batches
(constant memory; all cores), puts the model's ``<eos>`` after each document (and with
``prepend_bos`` its ``<bos>`` before it), and writes ids as uint16 when the vocabulary
has at most 65536 ids, else as uint32 (npy) or int32 (Megatron, whose dtype table has no
uint32; ids are < 2**31).  No document is only its markers: blank lines are no
documents, and a document that the model's normalizer turns into nothing is left out.
Sampled epochs (``alpha``, ``seed``, ``epoch``) are reproducible: the k-th document of
the input (k from 0) always uses the stream (seed, epoch, k, 0), whatever the batch size
or thread count.

A Megatron pair is named by its prefix: ``PREFIX.bin`` and ``PREFIX.idx``.  A path
ending in ``.bin`` or ``.idx`` names the pair too (``out.bin`` is the prefix ``out``,
never ``out.bin.bin``); one ending in ``.npy`` is refused, as an npy name given to the
wrong format (``megatron_prefix``).

``concatenate_token_files`` joins token files written apart (the shards of
``distributed``) into the one file ``write_token_file`` would have written for the whole
input, byte for byte, through the same staging.

Files are written atomically (see ``atomic``): everything goes to a temporary folder
``.NAME.vsample-tmp-XXXXXXXX`` beside the destination, and is renamed into place only on
success; a symlink's target is replaced, a FIFO or a device is written through.

A Megatron pair is two files, and no rename swaps two files at once, so the ``.idx`` is
the commit mark of the pair, and the old pair is kept until the new one is whole.  With
both new files staged, the old pair is hard-linked into ``.NAME.idx.vsample-previous``
beside it; then the old ``.idx`` is removed, the new ``.bin`` renamed into place and the
new ``.idx`` last (each step fsynced); then the kept links go.  Whenever an ``.idx``
exists, the ``.bin`` beside it is the one it was written with.  A write killed between
the steps leaves a ``.bin`` without ``.idx`` and the kept old pair:
``recover_megatron`` (run by ``read_megatron`` and by the next write) puts the old pair
back, so a reader finds the old pair or the new one, never a mix.  As a second line of
defence (pairs copied or written by
other tools), ``read_megatron`` checks that the ``.bin`` holds exactly the bytes that the
``.idx`` describes (last pointer + last size * item size) and that the document index
ends at the number of sequences, and raises ``ValueError`` otherwise.

Reading the output back:

* npy: ``np.load(path, mmap_mode="r")`` gives the flat array.
* megatron (``PREFIX.bin`` + ``PREFIX.idx``): ``read_megatron(PREFIX)`` below, or the
  Megatron-LM / NeMo ``IndexedDataset`` / ``MMapIndexedDataset`` loaders.  Here a
  sequence is a document including its markers, so sequence k is document k.

The ``.idx`` layout (all little-endian): the 9 bytes ``MMIDIDX\\x00\\x00``; uint64
version = 1; uint8 dtype code (8 = uint16, 4 = int32); uint64 number of sequences S;
uint64 number of document-index entries D + 1; int32 sizes[S] (tokens per sequence);
int64 pointers[S] (byte offset of each sequence in ``.bin``); int64 document index[D + 1]
(the sequence where each document starts, then S).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Sequence

import numpy as np

from .lines import batches, documents
from .io.atomic import Destination, check_output_folder, destination, fsync_folder, publish, temp_path
from .tokenizer import Tokenizer

MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}
_NPY_HEADER_BYTES = 128  # room for any shape: the header is rewritten at the end


def _npy_header(dtype: np.dtype, length: int) -> bytes:
    """A NumPy format 1.0 header of exactly ``_NPY_HEADER_BYTES`` bytes."""
    text = f"{{'descr': '{dtype.str}', 'fortran_order': False, 'shape': ({length},), }}"
    pad = _NPY_HEADER_BYTES - 10 - len(text) - 1
    return b"\x93NUMPY\x01\x00" + (_NPY_HEADER_BYTES - 10).to_bytes(2, "little") + text.encode() + b" " * pad + b"\n"


def write_token_file(
    tok: Tokenizer,
    lines: Iterable[bytes],
    path: str | os.PathLike,
    fmt: str,
    *,
    alpha: float | None = None,
    seed: int = 0,
    epoch: int = 0,
    num_threads: int | None = None,
    doc_sep: str = "line",
    append_eod: bool = True,
    prepend_bos: bool = False,
    progress: Callable[[int, int], None] | None = None,
    batch_bytes: int = 1 << 22,
    first_index: int = 0,
) -> dict:
    """Tokenize ``lines`` into ``path`` (npy) or ``PREFIX.bin`` + ``PREFIX.idx`` (megatron,
    ``PREFIX = megatron_prefix(path)``).

    Returns a summary: documents and tokens written, bytes of their text, dtype and the
    files written.  ``progress(bytes_done, tokens_done)`` is called after each batch.
    ``first_index`` is the stream of the first document: a part of a corpus whose
    earlier parts hold that many documents (``distributed``) samples as the whole would.
    Raises ``ValueError`` before anything is written when the model lacks a marker asked
    for (``document_markers``) or a Megatron path ends in ``.npy``.
    """
    if fmt not in ("npy", "megatron"):
        raise ValueError(f"fmt must be 'npy' or 'megatron', got {fmt!r}")
    bos, eos = document_markers(tok, prepend_bos, append_eod)
    markers = (bos is not None) + (eos is not None)  # ids added to each document
    dtype = token_dtype(tok, fmt)
    n_bytes = 0  # the text of the documents written

    def fill(data: BinaryIO, sizes: BinaryIO) -> tuple[int, int]:
        nonlocal n_bytes
        n_read = first_index  # documents of the input: the next one's sampling stream
        n_docs = n_tokens = 0
        for batch in batches(documents(lines, doc_sep), batch_bytes, None):
            ids, offsets = tok.encode_batch_arrays(
                batch, alpha=alpha, seed=seed, epoch=epoch, num_threads=num_threads,
                first_index=n_read,
            )
            n_read += len(batch)
            lengths = np.diff(offsets)
            if not lengths.all():  # the normalizer left nothing of these documents
                batch = [doc for doc, n in zip(batch, lengths) if n]
                lengths = lengths[lengths > 0]
            out = _with_markers(ids, lengths, bos, eos, dtype)
            data.write(out.tobytes())
            sizes.write((lengths + markers).astype(np.int32).tobytes())
            n_docs += len(lengths)
            n_tokens += len(out)
            n_bytes += sum(map(len, batch))
            if progress is not None:
                progress(n_bytes, n_tokens)
        return n_docs, n_tokens

    n_docs, n_tokens, finals = _write_staged(path, fmt, dtype, fill)
    return {"documents": n_docs, "tokens": n_tokens, "bytes": n_bytes, "dtype": dtype.name,
            "files": [str(f) for f in finals]}


def concatenate_token_files(parts: Sequence[str | os.PathLike], path: str | os.PathLike, fmt: str) -> dict:
    """One token file (npy) or Megatron pair at ``path`` holding ``parts`` back to back,
    in order: each an npy file or a Megatron prefix written by ``write_token_file`` in
    ``fmt`` with the same dtype.  The result is byte for byte what ``write_token_file``
    writes for the concatenated input, and is written as atomically.

    Returns a summary: documents (None for npy, which does not record them), tokens,
    dtype and the files written.  Raises ``ValueError`` when the parts do not share one
    dtype, or a part is not a token file.
    """
    if fmt not in ("npy", "megatron"):
        raise ValueError(f"fmt must be 'npy' or 'megatron', got {fmt!r}")
    if not parts:
        raise ValueError("no token files to concatenate")
    dtypes = {_part_dtype(part, fmt) for part in parts}
    if len(dtypes) != 1:
        raise ValueError(f"the token files to concatenate hold different dtypes: {sorted(d.name for d in dtypes)}")
    dtype = dtypes.pop()

    def fill(data: BinaryIO, sizes: BinaryIO) -> tuple[int, int]:
        n_docs = n_tokens = 0
        for part in parts:
            if fmt == "npy":
                with open(part, "rb") as f:
                    version = np.lib.format.read_magic(f)
                    header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _, _ = header(f)
                    shutil.copyfileobj(f, data, 1 << 22)
                n_tokens += shape[0]
            else:
                _, part_sizes, _, _ = read_megatron(part)
                with open(f"{megatron_prefix(part)}.bin", "rb") as f:
                    shutil.copyfileobj(f, data, 1 << 22)
                sizes.write(part_sizes.astype(np.int32).tobytes())
                n_docs += len(part_sizes)
                n_tokens += int(part_sizes.sum(dtype=np.int64))
        return n_docs, n_tokens

    n_docs, n_tokens, finals = _write_staged(path, fmt, dtype, fill)
    return {"documents": n_docs if fmt == "megatron" else None, "tokens": n_tokens,
            "dtype": dtype.name, "files": [str(f) for f in finals]}


def token_dtype(tok: Tokenizer, fmt: str) -> np.dtype:
    """The ids' dtype in a token file: uint16 when the vocabulary fits, else uint32 (npy)
    or int32 (Megatron, whose dtype table has no uint32)."""
    small = tok.vocab_size <= 65536
    return np.dtype(np.uint16 if small else (np.uint32 if fmt == "npy" else np.int32))


def _part_dtype(part: str | os.PathLike, fmt: str) -> np.dtype:
    if fmt == "npy":
        return np.load(part, mmap_mode="r").dtype
    return read_megatron(part)[0].dtype


def _write_staged(path: str | os.PathLike, fmt: str, dtype: np.dtype,
                  fill: Callable[[BinaryIO, BinaryIO], tuple[int, int]]) -> tuple[int, int, list[Path]]:
    """Write a token file (npy) or Megatron pair atomically (module docstring):
    ``fill(data, sizes)`` writes the ids and each document's size (int32) and returns
    (documents, tokens); the npy header and the .idx are made here.  Returns
    (documents, tokens, the files written)."""
    path = Path(path) if fmt == "npy" else megatron_prefix(path)
    finals = [path] if fmt == "npy" else [Path(f"{path}.bin"), Path(f"{path}.idx")]
    for final in finals:
        check_output_folder(final)
    data_dest = destination(finals[0])
    # Staged beside the data file's target, so the final renames stay on one file system;
    # for a FIFO or a device (no such folder: /dev is not ours), in the temporary folder.
    beside = Path(tempfile.gettempdir(), path.name) if data_dest.write_through else data_dest.path
    stage = temp_path(beside)  # created inside the try below, so a signal cannot orphan it
    kept = None
    if fmt == "megatron":
        recover_megatron(path)  # an earlier write killed half way
    try:
        os.mkdir(stage, 0o700)
        direct = _open_direct(data_dest, fmt == "npy")
        data = direct if direct is not None else open(stage / "data", "wb")
        with data, open(stage / "sizes", "wb") as sizes:
            if fmt == "npy":
                data.write(_npy_header(dtype, 0))
            n_docs, n_tokens = fill(data, sizes)
            if fmt == "npy":
                data.seek(0)
                data.write(_npy_header(dtype, n_tokens))
            data.flush()
            if direct is None:
                os.fsync(data.fileno())
        if fmt == "megatron":
            _write_megatron_index(stage / "idx", stage / "sizes", dtype, n_docs)
            idx_dest = destination(finals[1])
            if not idx_dest.write_through:
                # Keep the old pair, then withdraw its commit mark before its .bin changes.
                kept = _keep_previous_pair(data_dest, idx_dest)
                try:
                    os.unlink(idx_dest.path)
                except FileNotFoundError:
                    pass
        if direct is None:
            publish(stage / "data", data_dest)
        if fmt == "megatron":
            publish(stage / "idx", idx_dest)  # last: an .idx marks a complete pair
            if kept is not None:
                shutil.rmtree(kept, ignore_errors=True)
    except BaseException:
        if kept is not None:
            recover_megatron(path)  # the old pair back at once
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return n_docs, n_tokens, finals


def document_markers(tok: Tokenizer, prepend_bos: bool, append_eod: bool) -> tuple[int | None, int | None]:
    """(bos id or None, eos id or None): the ids put around each document.  Raises
    ``ValueError`` when the model has no such special token, naming the ones it has."""
    def missing(names: str, role: str) -> ValueError:
        has = ", ".join(tok.special_tokens) or "none"
        return ValueError(f"the model has no {names} special token to {role} each document "
                          f"with (its special tokens: {has})")

    bos = tok.bos_id if prepend_bos else None
    if prepend_bos and bos is None:
        raise missing("<bos> or <s>", "start")
    eos = tok.eos_id if append_eod else None
    if append_eod and eos is None:
        raise missing("<eos> or </s>", "end")
    return bos, eos


def megatron_prefix(path: str | os.PathLike) -> Path:
    """The prefix of a Megatron pair named by ``path``: the path itself, or without its
    ``.bin`` or ``.idx``, the name of one file of the pair.  A ``.npy`` path is refused:
    it is an npy file's name, and ``.npy.bin`` would surprise.

    >>> str(megatron_prefix("data/train.bin")), str(megatron_prefix("data/train"))
    ('data/train', 'data/train')
    """
    path = Path(path)
    if path.suffix in (".bin", ".idx"):
        return path.with_suffix("")
    if path.suffix == ".npy":
        raise ValueError(f"the Megatron prefix {path} ends in .npy, an npy file's name: give the "
                         f"prefix {path.with_suffix('')} (for {path.with_suffix('.bin')} and "
                         f"{path.with_suffix('.idx')}), or write npy")
    return path


def _with_markers(ids: np.ndarray, lengths: np.ndarray, bos: int | None, eos: int | None,
                  dtype: np.dtype) -> np.ndarray:
    """The ids of documents of these ``lengths``, back to back, each between ``bos`` and
    ``eos`` (either None for none), as ``dtype``.

    >>> _with_markers(np.array([7, 8, 9]), np.array([2, 1]), 1, 2, np.dtype(np.uint16)).tolist()
    [1, 7, 8, 2, 1, 9, 2]
    """
    markers = (bos is not None) + (eos is not None)
    if not markers:
        return ids.astype(dtype)
    ends = np.cumsum(lengths + markers)  # one past each document, its markers included
    out = np.empty(len(ids) + markers * len(lengths), dtype)
    text = np.ones(len(out), bool)
    if bos is not None:
        starts = ends - lengths - markers
        out[starts] = bos
        text[starts] = False
    if eos is not None:
        out[ends - 1] = eos
        text[ends - 1] = False
    out[text] = ids
    return out


def _previous_pair(idx_path: Path) -> Path:
    """The folder that holds hard links to the pair a write is replacing."""
    return idx_path.parent / f".{idx_path.name}.vsample-previous"


def _keep_previous_pair(bin_dest: Destination, idx_dest: Destination) -> Path | None:
    """Hard-link the existing pair (both regular files, one folder) into
    ``_previous_pair``; returns that folder, or None when there is no pair to keep or the
    file system has no hard links (then a kill can leave a .bin without .idx)."""
    if bin_dest.write_through or bin_dest.path.parent != idx_dest.path.parent:
        return None
    if not (bin_dest.path.is_file() and idx_dest.path.is_file()):
        return None
    kept = _previous_pair(idx_dest.path)
    shutil.rmtree(kept, ignore_errors=True)
    try:
        os.mkdir(kept, 0o700)
        os.link(bin_dest.path, kept / "bin")
        os.link(idx_dest.path, kept / "idx")
    except OSError:
        shutil.rmtree(kept, ignore_errors=True)
        return None
    fsync_folder(kept)
    fsync_folder(kept.parent)
    return kept


def recover_megatron(prefix: str | os.PathLike) -> None:
    """Finish a Megatron write that was killed half way (module docstring): if the new
    ``.idx`` never arrived, the kept old pair is put back (``.bin`` first); either way
    the kept links are removed.  Does nothing when no write was interrupted."""
    prefix = megatron_prefix(prefix)
    idx_dest = destination(Path(f"{prefix}.idx"))
    kept = _previous_pair(idx_dest.path)
    if not kept.is_dir():
        return
    if not idx_dest.path.exists():
        bin_dest = destination(Path(f"{prefix}.bin"))
        for name, dest in (("bin", bin_dest), ("idx", idx_dest)):
            if (kept / name).exists():
                os.replace(kept / name, dest.path)
                fsync_folder(dest.path.parent)
    shutil.rmtree(kept, ignore_errors=True)


def _open_direct(dest: Destination, needs_seek: bool) -> BinaryIO | None:
    """The FIFO or device to write the data to as it comes, or None to stage it first:
    for a regular file, and for npy through a FIFO or a terminal (its header is rewritten
    at the end, which needs a seekable file; /dev/null is one)."""
    if not dest.write_through:
        return None
    if needs_seek and stat.S_ISFIFO(os.stat(dest.path).st_mode):
        return None  # opening and closing a FIFO again would show its reader an early EOF
    f = open(dest.path, "wb")
    if needs_seek and not f.seekable():
        f.close()
        return None
    return f


def _write_megatron_index(idx_path: Path, sizes_path: Path, dtype: np.dtype, n_docs: int) -> None:
    """Assemble the .idx from the streamed sizes, a block at a time (constant memory)."""
    block = 1 << 20
    with open(idx_path, "wb") as idx:
        idx.write(MEGATRON_MAGIC)
        idx.write(np.uint64(1).tobytes())
        idx.write(np.uint8(MEGATRON_DTYPE_CODES[dtype]).tobytes())
        idx.write(np.uint64(n_docs).tobytes())
        idx.write(np.uint64(n_docs + 1).tobytes())
        with open(sizes_path, "rb") as sizes:
            shutil.copyfileobj(sizes, idx)
            sizes.seek(0)
            offset = 0
            while chunk := sizes.read(4 * block):
                counts = np.frombuffer(chunk, np.int32).astype(np.int64)
                pointers = offset + np.concatenate([[0], np.cumsum(counts)[:-1]]) * dtype.itemsize
                offset = int(pointers[-1] + counts[-1] * dtype.itemsize)
                idx.write(pointers.astype("<i8").tobytes())
        for start in range(0, n_docs + 1, block):
            idx.write(np.arange(start, min(n_docs + 1, start + block), dtype="<i8").tobytes())
        idx.flush()
        os.fsync(idx.fileno())


def read_megatron(prefix: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read a Megatron indexed pair: (tokens memmap, sizes, pointers, document index).

    ``prefix`` may also name the ``.bin`` or the ``.idx`` (``megatron_prefix``).  Raises
    ``ValueError`` when the ``.idx`` is malformed or the ``.bin`` is not the one it
    describes, and ``FileNotFoundError`` when a file of the pair is missing.
    """
    prefix = megatron_prefix(prefix)
    idx_path, bin_path = Path(f"{prefix}.idx"), Path(f"{prefix}.bin")
    recover_megatron(prefix)
    try:
        idx = idx_path.read_bytes()
    except FileNotFoundError:
        hint = " (the .bin exists: its write was interrupted)" if bin_path.exists() else ""
        raise FileNotFoundError(f"{idx_path}: no Megatron index{hint}") from None
    if idx[:9] != MEGATRON_MAGIC:
        raise ValueError(f"{prefix}.idx: not a Megatron index (bad magic {idx[:9]!r})")
    if len(idx) < 34:
        raise ValueError(f"{prefix}.idx: truncated header ({len(idx)} bytes)")
    version = int(np.frombuffer(idx, "<u8", 1, 9)[0])
    if version != 1:
        raise ValueError(f"{prefix}.idx: index version {version}, expected 1")
    code = idx[17]
    dtypes = {code: dt for dt, code in MEGATRON_DTYPE_CODES.items()}
    if code not in dtypes:
        raise ValueError(f"{prefix}.idx: unsupported dtype code {code}")
    dtype = dtypes[code]
    n_seq = int(np.frombuffer(idx, "<u8", 1, 18)[0])
    n_doc_index = int(np.frombuffer(idx, "<u8", 1, 26)[0])
    at = 34
    length = at + 12 * n_seq + 8 * n_doc_index
    if len(idx) < length:
        raise ValueError(f"{prefix}.idx: truncated ({len(idx)} bytes, its header implies {length})")
    if len(idx) > length:
        raise ValueError(f"{prefix}.idx: {len(idx) - length} unexpected trailing bytes")
    sizes = np.frombuffer(idx, "<i4", n_seq, at)
    at += 4 * n_seq
    pointers = np.frombuffer(idx, "<i8", n_seq, at)
    at += 8 * n_seq
    doc_index = np.frombuffer(idx, "<i8", n_doc_index, at)
    if n_doc_index == 0 or doc_index[-1] != n_seq:
        raise ValueError(f"{prefix}.idx: the document index does not end at the {n_seq} sequences")
    # The pair check: an .idx binds its .bin through the byte size it implies.
    described = int(pointers[-1]) + int(sizes[-1]) * dtype.itemsize if n_seq else 0
    with open(bin_path, "rb") as f:
        held = os.fstat(f.fileno()).st_size
        if held != described:
            raise ValueError(
                f"{prefix}.bin holds {held} bytes but {prefix}.idx describes {described}: "
                "the two files are not one pair (an interrupted write, or files of different runs)"
            )
        tokens = np.memmap(f, dtype=dtype, mode="r") if held else np.zeros(0, dtype)
    return tokens, sizes, pointers, doc_index
