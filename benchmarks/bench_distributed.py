"""A corpus encoded on a Dask cluster of this machine: throughput with 2 workers vs 1,
the cost over plain ``vsample encode``, and the same bytes as a single process.

    python benchmarks/bench_distributed.py [--corpus code_python_stdlib.txt] [--megabytes 200]
                                           [--alpha 0.1] [--format npy]

The corpus (the largest shared one by default) is repeated to at least ``--megabytes``
MB in a temporary folder.  Measured, each once, on the same file:

* ``vsample encode FILE --format F -o OUT`` in a fresh process, all cores (threads): the
  reference output and the time to beat;
* ``encode_corpus`` on a ``LocalCluster`` of 1, then 2 single-threaded worker processes,
  each task on one kernel thread (``num_threads=1``: a lone worker would otherwise take
  both cores, and the ratio would not measure workers), started before the clock (their
  start is reported apart), each with a fresh cluster so that the peak memory of every
  worker (``ru_maxrss``) belongs to that run;
* ``vsample encode ... --scheduler local:2`` in a fresh process: end to end, cluster
  start included.

Every output is compared with the reference (SHA-256).  The bar: 2 workers at least 1.6
times as fast as 1.  Sampled (``--alpha``) by default, since only sampled runs need the
document-counting pass; ``--alpha none`` measures Viterbi.

Writes benchmarks/results/distributed.json and .md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(REPO))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from bench_encode import CORPORA, cpu_model, load_average, markdown_table, version_of  # noqa: E402

from viterbisample import Tokenizer  # noqa: E402
from viterbisample.distributed import encode_corpus  # noqa: E402
from viterbisample.distributed.corpus import DEFAULT_BLOCKSIZE  # noqa: E402

SPEEDUP_BAR = 1.6


def machine_info() -> dict:
    """What ``bench_encode.machine_info`` records, with Dask's versions, and the commit
    read without running git."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": usable,
        "os": platform.platform(), "python": platform.python_version(),
        "numpy": version_of("numpy"), "numba": version_of("numba"), "dask": version_of("dask"),
        "distributed": version_of("distributed"), "viterbisample_commit": commit(),
        "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
        "NUMBA_CACHE_DIR": "set" if os.environ.get("NUMBA_CACHE_DIR") else None,
        "load_average_at_start": load_average(),
    }


def commit() -> str | None:
    head = REPO / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (REPO / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return None


def sha256_of(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def output_files(out: Path, fmt: str) -> list[Path]:
    return [out] if fmt == "npy" else [Path(f"{out}.bin"), Path(f"{out}.idx")]


def make_corpus(source: Path, megabytes: float, folder: Path) -> Path:
    """``source`` repeated (whole copies) to at least ``megabytes`` MB."""
    data = source.read_bytes()
    if not data.endswith(b"\n"):
        data += b"\n"
    copies = max(1, -(-int(megabytes * 1e6) // len(data)))
    path = folder / f"{source.stem}-x{copies}.txt"
    with open(path, "wb") as f:
        for _ in range(copies):
            f.write(data)
    return path


def run_cli(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "viterbisample.cli", *args], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - start


def worker_peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def on_cluster(n_workers: int, tok: Tokenizer, corpus: Path, out: Path, fmt: str, alpha: float | None,
               blocksize: int) -> dict:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        started = time.perf_counter() - start
        start = time.perf_counter()
        summary = encode_corpus(tok, [corpus], out, fmt, alpha=alpha, seed=1, blocksize=blocksize,
                                client=client, num_threads=1, progress=False)
        seconds = time.perf_counter() - start
        peaks = sorted(client.run(worker_peak_bytes).values())
    return {"workers": n_workers, "cluster_start_seconds": started, "seconds": seconds,
            "mb_per_s": corpus.stat().st_size / seconds / 1e6, "tokens": summary["tokens"],
            "shards": summary["shards"], "steps_seconds": summary["seconds"], "worker_peak_rss_mb": [p / 1e6 for p in peaks],
            "sha256": sha256_of(output_files(out, fmt))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="code_python_stdlib.txt")
    ap.add_argument("--megabytes", type=float, default=200)
    ap.add_argument("--alpha", default="0.1", help="a number, or none for Viterbi")
    ap.add_argument("--format", choices=("npy", "megatron"), default="npy")
    ap.add_argument("--blocksize", type=int, default=DEFAULT_BLOCKSIZE)
    args = ap.parse_args()
    alpha = None if args.alpha.lower() == "none" else float(args.alpha)
    source = Path(args.corpus) if Path(args.corpus).is_file() else CORPORA / args.corpus
    if not source.is_file():
        sys.exit(f"corpus {args.corpus!r} not found (looked in {CORPORA})")
    info = machine_info()
    tok = Tokenizer.default()
    tok.encode_batch_arrays([b"warm"], alpha=alpha, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = make_corpus(source, args.megabytes, folder)
        size = corpus.stat().st_size
        name = "out.npy" if args.format == "npy" else "out"
        sampled = [] if alpha is None else ["--alpha", repr(alpha), "--seed", "1"]
        ref = folder / ("ref.npy" if args.format == "npy" else "ref")
        single = run_cli(["encode", str(corpus), "--format", args.format, "-o", str(ref), "-q", *sampled])
        reference = sha256_of(output_files(ref, args.format))
        runs = [on_cluster(n, tok, corpus, folder / name, args.format, alpha, args.blocksize) for n in (1, 2)]
        cli = run_cli(["encode", str(corpus), "--format", args.format, "-o", str(folder / name), "-q",
                       *sampled, "--scheduler", "local:2"])
        cli_same = sha256_of(output_files(folder / name, args.format)) == reference
    one, two = runs
    result = {
        "machine": info, "corpus": source.name, "repeated_bytes": size, "format": args.format,
        "alpha": alpha, "blocksize": args.blocksize,
        "single_process_cli": {"seconds": single, "mb_per_s": size / single / 1e6, "sha256": reference},
        "cluster": runs,
        "cli_scheduler_local_2": {"seconds": cli, "mb_per_s": size / cli / 1e6, "identical": cli_same},
        "identical": all(r["sha256"] == reference for r in runs) and cli_same,
        "speedup_2_over_1_worker": one["seconds"] / two["seconds"],
        "bar": SPEEDUP_BAR,
        "two_workers_over_single_process_time": two["seconds"] / single,
        "load_average_at_end": load_average(),
    }
    result["passes_bar"] = result["speedup_2_over_1_worker"] >= SPEEDUP_BAR
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "distributed.json").write_text(json.dumps(result, indent=1) + "\n")
    mode = "Viterbi" if alpha is None else f"alpha {alpha:g}"
    rows = [["`vsample encode` (threads, all cores), fresh process", f"{single:.2f}",
             f"{size / single / 1e6:.1f}", "", "reference"]]
    for r in runs:
        rows.append([f"`encode_corpus`, LocalCluster of {r['workers']} single-threaded worker(s), 1 kernel thread each",
                     f"{r['seconds']:.2f}", f"{r['mb_per_s']:.1f}",
                     " / ".join(f"{p:.0f}" for p in r["worker_peak_rss_mb"]),
                     "yes" if r["sha256"] == reference else "NO"])
    rows.append(["`vsample encode --scheduler local:2`, fresh process, cluster start included",
                 f"{cli:.2f}", f"{size / cli / 1e6:.1f}", "", "yes" if cli_same else "NO"])
    md = [f"# Encoding on a Dask LocalCluster: {source.name} repeated to {size / 1e6:.0f} MB, "
          f"{args.format}, {mode}, default model", "",
          f"{info['cpu']}, {info['usable_cpus']} usable cores; Python {info['python']}, numba "
          f"{info['numba']}, dask {info['dask']}, distributed {info['distributed']}; blocks of "
          f"{args.blocksize / 2**20:.0f} MiB ({one['shards']} shards).  Reproduce: "
          f"`python benchmarks/bench_distributed.py --megabytes {args.megabytes:g}"
          f"{'' if alpha == 0.1 else ' --alpha ' + args.alpha}`.", ""]
    md += markdown_table(["run", "seconds", "MB/s", "worker peak RSS (MB)", "same bytes"],
                         ["l", "r", "r", "r", "l"], rows)
    md += ["", f"2 workers over 1: {result['speedup_2_over_1_worker']:.2f}x (bar {SPEEDUP_BAR}x: "
           f"{'met' if result['passes_bar'] else 'NOT met'}); 2 workers take "
           f"{result['two_workers_over_single_process_time']:.2f}x the time of the threaded single "
           f"process (cluster start, {two['cluster_start_seconds']:.1f} s, not included).",
           f"Load average at start {info['load_average_at_start']}, at end {result['load_average_at_end']}."]
    (RESULTS / "distributed.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
