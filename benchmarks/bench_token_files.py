"""Corpus-to-token-file throughput, and the other speed bars that need no peer.

    python benchmarks/bench_token_files.py [--corpus code_python_stdlib.txt]

With the shipped default model, on all cores unless said otherwise:

* ``write_token_file`` (what ``vsample encode --format npy|megatron`` runs) on the whole
  corpus, Viterbi and a sampled epoch (alpha 0.1): MB/s of text and tokens/s;
* Viterbi time over the bare lattice enumeration (``count_edges_batch``: the trie walk
  that every pass makes, the floor Viterbi cannot beat), one thread, best of 5;
* model load time (``Tokenizer.load`` of the shipped file, trie included) and the wall
  time of ``vsample encode`` on a one-line input with a warm Numba cache, best and median
  of 10 fresh processes.

Writes benchmarks/results/token_files-<corpus>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from viterbisample import Tokenizer  # noqa: E402
from viterbisample.tokenizer import DEFAULT_MODEL_RESOURCE  # noqa: E402
from viterbisample.token_files import write_token_file  # noqa: E402

CORPORA = ROOT.parent / "shared" / "data" / "corpora"


def best_of(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="code_python_stdlib.txt")
    args = ap.parse_args()
    corpus = CORPORA / args.corpus
    raw = corpus.read_bytes()
    lines = raw.split(b"\n")
    tok = Tokenizer.default()
    tok.encode_batch_arrays(lines[:100])
    tok.encode_batch_arrays(lines[:100], alpha=0.1)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        for fmt in ("npy", "megatron"):
            for alpha in (None, 0.1):
                out = Path(tmp) / ("t.npy" if fmt == "npy" else "t")
                t = time.perf_counter()
                summary = write_token_file(tok, iter(lines), out, fmt, alpha=alpha, seed=1)
                dt = time.perf_counter() - t
                rows[f"{fmt}, {'Viterbi' if alpha is None else 'alpha 0.1'}"] = {
                    "seconds": dt, "mb_per_s": len(raw) / dt / 1e6,
                    "tokens_per_s": summary["tokens"] / dt, "tokens": summary["tokens"],
                }
    sub = lines[:60000]
    n_bytes = sum(map(len, sub))
    walk = best_of(lambda: tok.count_edges_batch(sub, num_threads=1), 5)
    viterbi = best_of(lambda: tok.encode_batch_arrays(sub, num_threads=1), 5)
    model_file = ROOT / "viterbisample" / "data" / DEFAULT_MODEL_RESOURCE

    def load() -> None:
        Tokenizer.load(model_file).model.suffix_trie

    load_time = best_of(load, 5)
    one = Path(tempfile.mkstemp(suffix=".txt", dir=HERE)[1])
    one.write_text("hello world\n", "utf-8")
    walls = []
    try:
        for _ in range(10):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "viterbisample.cli", "encode", str(one)], check=True,
                           capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            walls.append(time.perf_counter() - t)
    finally:
        one.unlink()
    result = {
        "corpus": corpus.name, "bytes": len(raw), "cpus": os.cpu_count(), "token_files": rows,
        "bare_walk_mb_per_s": n_bytes / walk / 1e6, "viterbi_mb_per_s": n_bytes / viterbi / 1e6,
        "viterbi_over_walk_time": viterbi / walk, "model_load_seconds": load_time,
        "cli_one_line_seconds_best": min(walls), "cli_one_line_seconds_median": statistics.median(walls),
        "load_average": os.getloadavg(),
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"token_files-{corpus.stem}.json").write_text(json.dumps(result, indent=1))
    md = [f"# Token files and start-up, {corpus.name} ({len(raw) / 1e6:.1f} MB), default model, "
          f"{os.cpu_count()} cores", "", "| output | seconds | MB/s | M tokens/s |", "| --- | ---: | ---: | ---: |"]
    for name, r in rows.items():
        md.append(f"| {name} | {r['seconds']:.2f} | {r['mb_per_s']:.1f} | {r['tokens_per_s'] / 1e6:.2f} |")
    md += ["", "| measure | value |", "| --- | ---: |",
           f"| bare lattice enumeration, 1 thread (MB/s) | {result['bare_walk_mb_per_s']:.1f} |",
           f"| Viterbi, 1 thread (MB/s) | {result['viterbi_mb_per_s']:.1f} |",
           f"| Viterbi time / enumeration time | {result['viterbi_over_walk_time']:.2f} |",
           f"| model load incl. trie (s) | {load_time:.3f} |",
           f"| `vsample encode` of one line, warm cache (s), best / median of 10 | "
           f"{min(walls):.2f} / {statistics.median(walls):.2f} |", "",
           f"Load average at the end: {os.getloadavg()}"]
    (out / f"token_files-{corpus.stem}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
