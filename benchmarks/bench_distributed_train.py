"""Training on a Dask cluster of this machine gives the single-process model, byte for byte.

    python benchmarks/bench_distributed_train.py [--corpus code_python_stdlib.txt] [--vocab-size 8000]

Trains ``--vocab-size`` ids on the corpus with ``viterbisample.train`` (one process, all
cores) and with ``viterbisample.distributed.train`` on a ``LocalCluster`` of 2
single-threaded workers (its start is timed apart), compares the model files (SHA-256),
and reports both times and the workers' peak memory (``ru_maxrss``).

Needs the shared corpora at ``../shared/data/corpora`` (or ``--corpus PATH``) and the
``dask`` extra.  Results: ``benchmarks/results/distributed_train.{json,md}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench_encode import RESULTS, find_corpus, machine_info, markdown_table, write_atomic


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="code_python_stdlib.txt")
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import distributed

    import viterbisample
    from viterbisample.distributed import train as cluster_train

    corpus = find_corpus(args.corpus)
    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        viterbisample.train([corpus], args.vocab_size, progress=False).save(Path(tmp, "single.json"))
        single = time.perf_counter() - t
        t = time.perf_counter()
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster) as client:
            start = time.perf_counter() - t
            t = time.perf_counter()
            cluster_train([str(corpus)], args.vocab_size, client=client, progress=False).save(Path(tmp, "cluster.json"))
            on_cluster = time.perf_counter() - t
            peaks = sorted(client.run(peak_bytes).values())
        digests = {name: hashlib.sha256(Path(tmp, f"{name}.json").read_bytes()).hexdigest()
                   for name in ("single", "cluster")}
    same = digests["single"] == digests["cluster"]
    result = {"corpus": corpus.name, "megabytes": corpus.stat().st_size / 1e6, "vocab_size": args.vocab_size,
              "workers": args.workers, "single_process_seconds": single, "cluster_seconds": on_cluster,
              "cluster_start_seconds": start, "worker_peak_bytes": peaks, "same_model_file": same,
              "sha256": digests, "machine": info}
    md = [f"# Training on a Dask LocalCluster: {corpus.name} ({result['megabytes']:.0f} MB), "
          f"{args.vocab_size} ids", "",
          *markdown_table(["run", "seconds", "peak memory per worker (MB)", "model file"], ["l", "r", "r", "l"], [
              ["`viterbisample.train`, one process, all cores", f"{single:.1f}", "", "reference"],
              [f"`distributed.train`, {args.workers} single-threaded workers", f"{on_cluster:.1f}",
               ", ".join(f"{p / 1e6:.0f}" for p in peaks), "same bytes" if same else "DIFFERENT"],
          ]), "", f"Cluster start (not included): {start:.1f} s. Machine: {info['cpu']}, {info['usable_cpus']} "
          f"usable CPUs; Python {info['python']}, numba {info['numba']}, dask {distributed.__version__}; "
          f"git {info['viterbisample_git']}.", ""]
    print("\n".join(md))
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "distributed_train.json", json.dumps(result, indent=1))
    write_atomic(args.out / "distributed_train.md", "\n".join(md))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
