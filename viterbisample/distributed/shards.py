"""One shard per block: a complete token file of that block's documents, written by the
single-process writer, and a record that lets a later run trust it.

A shard is what ``token_files.write_token_file`` writes for the lines of one block with
``first_index`` set to the block's first document number, so shard k holds exactly the
ids that the whole-corpus file holds for block k's documents: an npy file, or a Megatron
pair.  ``token_files.concatenate_token_files`` then joins the shards in order into the
very file a single process writes.

Resuming: beside each shard, ``NAME.json`` records the shard's key and the SHA-256 of
its files; the key hashes everything the shard's bytes depend on (the model, format,
alpha, seed, epoch, markers, the block's file, its size and modification time, the
byte range and the first document number).  A shard is reused when its record has the
same key and its files still hash to the recorded sum; otherwise it is written again.
The shard is written atomically before its record, and the record atomically after, so a
failure at any point leaves either a trusted pair or something a later run redoes,
never a partial file taken for a whole one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

from ..io import model_file
from ..io.atomic import atomic_write
from ..token_files import write_token_file
from ..tokenizer import Tokenizer
from .blocks import Block, block_lines

HASH_CHUNK = 1 << 22


class Job(NamedTuple):
    """What every shard of one run shares."""

    folder: str  # where the shards go
    fmt: str  # "npy" or "megatron"
    model_hash: str
    alpha: float | None
    seed: int
    epoch: int
    add_bos: bool
    add_eos: bool


class Shard(NamedTuple):
    """What a finished shard reports to the driver."""

    path: str  # the npy file, or the Megatron prefix
    documents: int
    tokens: int
    checksum: str  # SHA-256 of its files, in order
    reused: bool  # found finished by an earlier run
    bytes: int  # of the block's input


def model_hash(tok: Tokenizer) -> str:
    """SHA-256 of the model file text of ``tok`` (pieces, scores, special tokens,
    normalizer): what a shard's ids depend on in the model."""
    return hashlib.sha256(model_file.dumps(tok.model).encode()).hexdigest()


def shard_path(job: Job, index: int) -> Path:
    """Shard ``index``'s npy file, or its Megatron prefix."""
    name = f"shard-{index:06d}"
    return Path(job.folder, name + ".npy" if job.fmt == "npy" else name)


def shard_files(job: Job, index: int) -> list[Path]:
    path = shard_path(job, index)
    return [path] if job.fmt == "npy" else [Path(f"{path}.bin"), Path(f"{path}.idx")]


def shard_key(job: Job, block: Block, first_index: int) -> str:
    """The hash of everything shard ``block`` holds depends on."""
    st = os.stat(block.path)
    fields = {
        "format": job.fmt, "model": job.model_hash, "alpha": job.alpha, "seed": job.seed,
        "epoch": job.epoch, "add_bos": job.add_bos, "add_eos": job.add_eos,
        "file": os.path.abspath(block.path), "file_size": st.st_size, "file_mtime_ns": st.st_mtime_ns,
        "start": block.start, "end": block.end, "first_index": first_index,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def files_checksum(files: list[Path]) -> str:
    """SHA-256 of the files' bytes, one after the other."""
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def encode_shard(tok: Tokenizer, job: Job, index: int, block: Block, first_index: int,
                 num_threads: int | None) -> Shard:
    """Shard ``index`` of ``job``: reused when an earlier run left it whole and current,
    else written (atomically) from ``block``'s lines with the documents numbered from
    ``first_index``.  Runs on a worker."""
    key = shard_key(job, block, first_index)
    record_path = Path(job.folder, f"shard-{index:06d}.json")
    files = shard_files(job, index)
    found = _trusted(record_path, key, files)
    if found is not None:
        return Shard(str(shard_path(job, index)), found["documents"], found["tokens"],
                     found["checksum"], True, block.size)
    try:
        os.unlink(record_path)  # a stale record must never outlive the shard it describes
    except FileNotFoundError:
        pass
    summary = write_token_file(
        tok, block_lines(block), shard_path(job, index), job.fmt, alpha=job.alpha,
        seed=job.seed, epoch=job.epoch, num_threads=num_threads, append_eod=job.add_eos,
        prepend_bos=job.add_bos, first_index=first_index,
    )
    checksum = files_checksum(files)
    record = {"key": key, "documents": summary["documents"], "tokens": summary["tokens"],
              "checksum": checksum}
    atomic_write(record_path, lambda f: f.write(json.dumps(record).encode()))
    return Shard(str(shard_path(job, index)), summary["documents"], summary["tokens"],
                 checksum, False, block.size)


def _trusted(record_path: Path, key: str, files: list[Path]) -> dict | None:
    """The record of a finished shard whose key matches and whose files hash to the
    recorded sum, else None."""
    try:
        record = json.loads(record_path.read_text())
        if record.get("key") != key:
            return None
        if files_checksum(files) != record.get("checksum"):
            return None
        return record
    except (OSError, ValueError, AttributeError):
        return None
