"""``encode_corpus``: a corpus to one token file (npy) or Megatron pair on a Dask cluster,
byte for byte the file that ``vsample encode --format npy|megatron`` writes alone.

The driver (this process) plans byte blocks at line ends (``blocks``), warms the kernels
and ships the model to each worker once (``workers``), counts each block's documents on
the workers when sampling (so that document k of the input uses the stream (seed,
epoch, k), whatever the blocks; Viterbi needs no stream, so no count), then hands out one
task per block, each writing its shard atomically (``shards``).  With every shard done
it writes ``manifest.json`` in the shards folder (model hash, dtype, seed, epoch,
normalizer, the shards in order with their blocks, counts and SHA-256) and joins the
shards into the output with ``token_files.concatenate_token_files`` (atomic too).

The shards folder is ``OUT.shards`` beside the output (``OUT`` without ``.npy``, or the
Megatron prefix).  After a failure a new run with the same arguments reuses every shard
that is whole and current and writes the others; the shards are removed once the output
is written, unless ``keep_shards``.  Nothing here holds a block or a shard in memory on
the driver, which only reads the shards back in order while joining them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..checks import check_alpha, check_num_threads, check_uint64
from ..engine import kernel_alpha
from ..io.atomic import TEMP_MARK, atomic_write, check_output_folder
from ..lattice import VITERBI
from ..progress import Progress
from ..token_files import concatenate_token_files, document_markers, megatron_prefix, token_dtype
from ..tokenizer import Tokenizer
from .blocks import Block, count_documents, first_indices, input_files, plan_blocks
from .shards import Job, Shard, model_hash, shard_files
from .workers import encode_task, prepare_worker, thread_shares, warm

DEFAULT_BLOCKSIZE = 1 << 24  # 16 MiB of text per task: about a second of work at worst
MANIFEST_VERSION = 1
DEFAULT_NAME = "tokens"  # the output's name when a folder is given
MAX_LOCAL_WORKERS = 9999


def encode_corpus(
    tokenizer: Tokenizer,
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir_or_path: str | os.PathLike,
    format: str = "megatron",
    *,
    alpha: float | None = None,
    seed: int = 0,
    epoch: int = 0,
    add_bos: bool = False,
    add_eos: bool = True,
    blocksize: int = DEFAULT_BLOCKSIZE,
    client: Any = None,
    num_threads: int | None = None,
    keep_shards: bool = False,
    progress: bool | None = None,
) -> dict:
    """Tokenize the lines of ``inputs`` (files or glob patterns) into one npy file or
    Megatron pair, on a Dask cluster.

    The output is byte for byte what ``token_files.write_token_file`` writes for the
    same lines (``doc_sep="line"``: each non-blank line is a document), Viterbi or
    sampled (``alpha``, ``seed``, ``epoch``), for any ``blocksize`` and any number of
    workers.  ``out_dir_or_path`` is the npy file or the Megatron prefix (``NAME.bin`` /
    ``NAME.idx`` name it too), or an existing folder, which gets ``tokens.npy`` or the
    pair ``tokens.bin`` + ``tokens.idx``.  ``add_eos`` puts the model's ``<eos>`` after
    each document, ``add_bos`` its ``<bos>`` before.

    ``client``: a ``distributed.Client``; None uses the current one, or starts a
    ``LocalCluster`` of this machine's cores for the call.  ``num_threads`` fixes the
    helper threads per task (default: each worker's share of its machine's cores).
    ``progress``: a live line on stderr (default: when stderr is a terminal), with the
    dashboard's address when there is one.

    Returns a summary: documents, tokens, dtype, the files written, the manifest's
    path, the number of shards and how many were reused from an earlier run, the number
    of workers and the longest warm-up among them (seconds: it compiled the kernels), and
    the seconds of each step (prepare the workers, count, encode, merge).  Raises
    ``ValueError``, ``FileNotFoundError`` or ``IsADirectoryError`` for bad arguments
    before any work, ``ImportError`` when Dask is not installed.
    """
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a Tokenizer, got {type(tokenizer).__name__}")
    if format not in ("npy", "megatron"):
        raise ValueError(f"format must be 'npy' or 'megatron', got {format!r}")
    alpha = None if alpha is None else check_alpha(alpha)
    seed, epoch = check_uint64(seed, "seed"), check_uint64(epoch, "epoch")
    num_threads = None if num_threads is None else check_num_threads(num_threads)
    document_markers(tokenizer, add_bos, add_eos)  # a marker the model lacks: an error now
    output = _output_path(out_dir_or_path, format)
    # Absolute paths: a worker elsewhere runs in another folder (the file system is shared).
    files = [os.path.abspath(f) for f in input_files(inputs)]
    blocks = plan_blocks(files, blocksize) or [Block(files[0], 0, 0)]  # no text: one empty shard
    folder = Path(os.path.abspath(_shards_folder(output, format)))
    folder.mkdir(exist_ok=True)
    _remove_leftovers(folder)

    job = Job(str(folder), format, model_hash(tokenizer), alpha, seed, epoch, add_bos, add_eos)
    sampling = alpha is not None and kernel_alpha(alpha) != VITERBI
    show = Progress(progress)
    warm(tokenizer, alpha)  # compiled and cached here before any worker looks for it

    seconds = {}
    clock = time.perf_counter()
    with _client_for(client) as dask_client, closing(show):
        link = _dashboard_link(dask_client)
        if link:
            show.done(f"Dask dashboard: {link}")
        tok_future = dask_client.scatter(tokenizer, broadcast=True, hash=False)
        workers = _workers(dask_client)
        ready = {address: dask_client.submit(prepare_worker, tok_future, alpha, workers=[address],
                                             allow_other_workers=False, pure=False)
                 for address in workers}
        reports = {address: future.result() for address, future in ready.items()}
        shares = thread_shares(workers, {address: r["cores"] for address, r in reports.items()})
        seconds["prepare"], clock = time.perf_counter() - clock, time.perf_counter()
        if sampling:
            show.live(f"counting the documents of {len(blocks)} blocks")
            counts = dask_client.gather(dask_client.map(count_documents, blocks, pure=False))
            firsts = first_indices(counts)
        else:
            firsts = [0] * len(blocks)  # Viterbi draws nothing: the stream is never read
        seconds["count"], clock = time.perf_counter() - clock, time.perf_counter()
        run = os.urandom(4).hex()  # task names on the dashboard: vsample-shard-INDEX-RUN
        tasks = [dask_client.submit(encode_task, tok_future, job, i, block, firsts[i], shares,
                                    num_threads, pure=False, key=f"vsample-shard-{i:06d}-{run}")
                 for i, block in enumerate(blocks)]
        shards = _collect(dask_client, tasks, show)
        seconds["encode"], clock = time.perf_counter() - clock, time.perf_counter()

    manifest = _manifest(tokenizer, job, token_dtype(tokenizer, format).name, files, blocksize,
                         blocks, firsts, shards, keep_shards)
    manifest_path = folder / "manifest.json"
    atomic_write(manifest_path, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
    merged = concatenate_token_files([s.path for s in shards], output, format)
    seconds["merge"] = time.perf_counter() - clock
    if not keep_shards:
        for index in range(len(shards)):
            for path in [*shard_files(job, index), folder / f"shard-{index:06d}.json"]:
                path.unlink(missing_ok=True)
    return {"documents": manifest["documents"], "tokens": merged["tokens"], "dtype": merged["dtype"],
            "files": merged["files"], "manifest": str(manifest_path), "shards": len(shards),
            "shards_reused": sum(s.reused for s in shards), "workers": len(reports),
            # Seconds or more: that worker compiled the kernels (no Numba cache it could read).
            "worker_warm_seconds": max(r["warm_seconds"] for r in reports.values()),
            "seconds": seconds}


def _output_path(out: str | os.PathLike, fmt: str) -> Path:
    """The npy file or Megatron prefix to write; a folder gets ``tokens``."""
    path = Path(out)
    if path.is_dir():
        path = path / (DEFAULT_NAME + ".npy" if fmt == "npy" else DEFAULT_NAME)
    if fmt == "megatron":
        path = megatron_prefix(path)
        check_output_folder(Path(f"{path}.bin"))
    else:
        check_output_folder(path)
    return path


def _shards_folder(output: Path, fmt: str) -> Path:
    base = output.with_suffix("") if fmt == "npy" and output.suffix == ".npy" else output
    return base.parent / (base.name + ".shards")


def _remove_leftovers(folder: Path) -> None:
    """Temporary files of shards whose worker was killed mid-write (a clean failure
    removes its own)."""
    for entry in folder.iterdir():
        if TEMP_MARK in entry.name:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


@contextmanager
def _client_for(client: Any) -> Iterator[Any]:
    """The client to use: the one given, the current one, or a local cluster made for
    this call (and closed after it)."""
    try:
        import distributed
    except ImportError:
        raise ImportError('encode_corpus needs Dask: pip install "viterbisample[dask]"') from None
    if client is None:
        try:
            client = distributed.default_client()
        except ValueError:  # no client yet
            pass
    if client is not None:
        yield client
        return
    with local_cluster() as cluster, distributed.Client(cluster) as made:
        yield made


@contextmanager
def cluster_client(scheduler: str) -> Iterator[Any]:
    """A client of the scheduler at ``scheduler`` (an address such as
    ``tcp://host:8786``), or of a local cluster of N single-threaded worker processes
    made for the block (``local:N``), closed after it."""
    try:
        import distributed
    except ImportError:
        raise ImportError('a Dask scheduler needs Dask: pip install "viterbisample[dask]"') from None
    local = re.fullmatch(r"local:([0-9]+)", scheduler)
    if local is None and scheduler.startswith("local"):
        raise ValueError(f"a local cluster is local:N, N worker processes (N >= 1), got {scheduler!r}")
    if local is not None:
        n = int(local.group(1))
        if not 1 <= n <= MAX_LOCAL_WORKERS:
            raise ValueError(f"local:N needs N from 1 to {MAX_LOCAL_WORKERS} worker processes, got {n}")
        with local_cluster(n) as cluster, distributed.Client(cluster) as client:
            yield client
    else:
        with distributed.Client(scheduler) as client:
            yield client


def local_cluster(n_workers: int | None = None) -> Any:
    """A ``LocalCluster`` of ``n_workers`` single-threaded processes (default: one per
    core), its web server on a free port (the dashboard, when Bokeh is installed), quiet
    logs."""
    from distributed import LocalCluster

    from .workers import usable_cores

    return LocalCluster(n_workers=n_workers or usable_cores(), threads_per_worker=1, processes=True,
                        dashboard_address=":0", silence_logs=logging.ERROR)


def _workers(client: Any) -> dict[str, dict]:
    """Every worker's address and scheduler record (recent Dask lists only the first few
    unless asked for all)."""
    try:
        return client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # older Dask: all of them, always
        return client.scheduler_info()["workers"]


def _dashboard_link(client: Any) -> str | None:
    """The dashboard's address, when the scheduler serves one (Bokeh installed)."""
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return None
        if importlib.util.find_spec("bokeh") is None:
            return None  # the web server runs, but without the dashboard's pages
        return client.dashboard_link
    except Exception:  # no dashboard, or a client without one: nothing to show
        return None


def _collect(client: Any, tasks: list, show: Progress) -> list[Shard]:
    """The shards in block order, as tasks finish, with the live line; on the first
    failure the other tasks are cancelled and the error raised (shards already written
    stay for the next run)."""
    from distributed import as_completed

    order = {task.key: i for i, task in enumerate(tasks)}
    shards: list[Shard | None] = [None] * len(tasks)
    start = time.monotonic()
    encoded = tokens = reused = 0
    try:
        for task in as_completed(tasks):
            shard = task.result()
            shards[order[task.key]] = shard
            tokens += shard.tokens
            if shard.reused:
                reused += 1
            else:
                encoded += shard.bytes
            done = sum(s is not None for s in shards)
            rate = encoded / max(time.monotonic() - start, 1e-9) / 1e6
            show.live(f"shards {done}/{len(tasks)}{f' ({reused} reused)' if reused else ''}  "
                      f"{encoded / 1e6:10.1f} MB  {rate:7.1f} MB/s  {tokens:>14,} tokens",
                      force=done == len(tasks))
    except BaseException:
        client.cancel(tasks)
        raise
    return shards  # type: ignore[return-value]


def _manifest(tok: Tokenizer, job: Job, dtype: str, files: list[str], blocksize: int,
              blocks: list[Block], firsts: list[int], shards: list[Shard], kept: bool) -> dict:
    return {
        "manifest_version": MANIFEST_VERSION,
        "model_sha256": job.model_hash,
        "format": job.fmt,
        "dtype": dtype,
        "alpha": job.alpha,
        "seed": job.seed,
        "epoch": job.epoch,
        "add_bos": job.add_bos,
        "add_eos": job.add_eos,
        "normalizer": tok.model.normalizer.to_json(),
        "inputs": files,
        "blocksize": blocksize,
        "documents": sum(s.documents for s in shards),
        "tokens": sum(s.tokens for s in shards),
        "shards_kept": kept,
        "shards": [{"name": os.path.basename(s.path), "file": b.path, "start": b.start,
                    "end": b.end, "first_document": first, "documents": s.documents,
                    "tokens": s.tokens, "sha256": s.checksum}
                   for s, b, first in zip(shards, blocks, firsts)],
    }
