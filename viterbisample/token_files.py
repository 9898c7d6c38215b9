"""A whole corpus to one flat array of token ids on disk: ``.npy`` or Megatron's indexed pair.

``write_token_file`` streams documents through ``Tokenizer.encode_batch_arrays`` in
batches (constant memory; all cores), appends an end-of-document id after each document,
and writes ids as uint16 when the vocabulary has at most 65536 ids, else as uint32 (npy)
or int32 (Megatron, whose dtype table has no uint32; ids are < 2**31).  Sampled epochs
(``alpha``, ``seed``, ``epoch``) are reproducible: document k always uses the stream
(seed, epoch, k, 0), whatever the batch size or thread count.

Files are written atomically: everything goes to temporary files in the destination
folder, renamed into place only on success.  For Megatron the ``.bin`` is renamed first
and the ``.idx`` last, so a complete ``.idx`` marks a complete pair.

Reading the output back:

* npy: ``np.load(path, mmap_mode="r")`` gives the flat array.
* megatron (``PREFIX.bin`` + ``PREFIX.idx``): ``read_megatron(PREFIX)`` below, or the
  Megatron-LM / NeMo ``IndexedDataset`` / ``MMapIndexedDataset`` loaders.  Here a
  sequence is a document including its end-of-document id, so sequence k is document k.

The ``.idx`` layout (all little-endian): the 9 bytes ``MMIDIDX\\x00\\x00``; uint64
version = 1; uint8 dtype code (8 = uint16, 4 = int32); uint64 number of sequences S;
uint64 number of document-index entries D + 1; int32 sizes[S] (tokens per sequence);
int64 pointers[S] (byte offset of each sequence in ``.bin``); int64 document index[D + 1]
(the sequence where each document starts, then S).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .tokenizer import Tokenizer

MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}
_NPY_HEADER_BYTES = 128  # room for any shape: the header is rewritten at the end


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


def _batches(docs: Iterator[bytes], batch_bytes: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    size = 0
    for doc in docs:
        batch.append(doc)
        size += len(doc)
        if size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


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
    progress: Callable[[int, int], None] | None = None,
    batch_bytes: int = 1 << 22,
) -> dict:
    """Tokenize ``lines`` into ``path`` (npy) or ``path.bin`` + ``path.idx`` (megatron).

    Returns a summary: documents, tokens, bytes of text, dtype and the files written.
    ``progress(bytes_done, tokens_done)`` is called after each batch.
    """
    if fmt not in ("npy", "megatron"):
        raise ValueError(f"fmt must be 'npy' or 'megatron', got {fmt!r}")
    eod = tok.eos_id
    if append_eod and eod is None:
        raise ValueError("the model has no <eos> special token to mark the end of documents")
    small = tok.vocab_size <= 65536
    dtype = np.dtype(np.uint16 if small else (np.uint32 if fmt == "npy" else np.int32))
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=folder))
    data_path = tmp / "data"
    sizes_path = tmp / "sizes"
    n_docs = n_tokens = n_bytes = 0
    try:
        with open(data_path, "wb") as data, open(sizes_path, "wb") as sizes:
            if fmt == "npy":
                data.write(_npy_header(dtype, 0))
            for batch in _batches(documents(lines, doc_sep), batch_bytes):
                ids, offsets = tok.encode_batch_arrays(
                    batch, alpha=alpha, seed=seed, epoch=epoch, num_threads=num_threads,
                    first_index=n_docs,
                )
                lengths = np.diff(offsets)
                if append_eod:
                    out = np.empty(len(ids) + len(batch), dtype)
                    ends = offsets[1:] + np.arange(len(batch))  # where each EOD goes
                    mask = np.ones(len(out), bool)
                    mask[ends] = False
                    out[mask] = ids
                    out[ends] = eod
                    lengths = lengths + 1
                else:
                    out = ids.astype(dtype)
                data.write(out.tobytes())
                sizes.write(lengths.astype(np.int32).tobytes())
                n_docs += len(batch)
                n_tokens += len(out)
                n_bytes += sum(map(len, batch))
                if progress is not None:
                    progress(n_bytes, n_tokens)
            if fmt == "npy":
                data.seek(0)
                data.write(_npy_header(dtype, n_tokens))
            data.flush()
            os.fsync(data.fileno())
        if fmt == "npy":
            os.chmod(data_path, 0o644)
            os.replace(data_path, path)
            written = [str(path)]
        else:
            idx_path = tmp / "idx"
            _write_megatron_index(idx_path, sizes_path, dtype, n_docs)
            bin_final = Path(f"{path}.bin")
            idx_final = Path(f"{path}.idx")
            for p in (data_path, idx_path):
                os.chmod(p, 0o644)
            os.replace(data_path, bin_final)
            os.replace(idx_path, idx_final)  # last: a complete .idx marks a complete pair
            written = [str(bin_final), str(idx_final)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"documents": n_docs, "tokens": n_tokens, "bytes": n_bytes, "dtype": dtype.name, "files": written}


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
    """Read a Megatron indexed pair: (tokens memmap, sizes, pointers, document index)."""
    idx = Path(f"{prefix}.idx").read_bytes()
    if idx[:9] != MEGATRON_MAGIC:
        raise ValueError(f"{prefix}.idx: not a Megatron index (bad magic {idx[:9]!r})")
    version = int(np.frombuffer(idx, "<u8", 1, 9)[0])
    if version != 1:
        raise ValueError(f"{prefix}.idx: index version {version}, expected 1")
    code = idx[17]
    dtypes = {code: dt for dt, code in MEGATRON_DTYPE_CODES.items()}
    if code not in dtypes:
        raise ValueError(f"{prefix}.idx: unsupported dtype code {code}")
    n_seq = int(np.frombuffer(idx, "<u8", 1, 18)[0])
    n_doc_index = int(np.frombuffer(idx, "<u8", 1, 26)[0])
    at = 34
    sizes = np.frombuffer(idx, "<i4", n_seq, at)
    at += 4 * n_seq
    pointers = np.frombuffer(idx, "<i8", n_seq, at)
    at += 8 * n_seq
    doc_index = np.frombuffer(idx, "<i8", n_doc_index, at)
    if at + 8 * n_doc_index != len(idx):
        raise ValueError(f"{prefix}.idx: {len(idx) - at - 8 * n_doc_index} unexpected trailing bytes")
    tokens = np.memmap(f"{prefix}.bin", dtype=dtypes[code], mode="r") if Path(f"{prefix}.bin").stat().st_size else np.zeros(0, dtypes[code])
    return tokens, sizes, pointers, doc_index
