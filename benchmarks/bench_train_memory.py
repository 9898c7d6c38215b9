"""Peak memory and time of ``viterbisample.train`` on a 10 MB and a 100 MB corpus.

    python benchmarks/bench_train_memory.py [--vocab-size 32000]

The 10 MB corpus is ``en_python_docs.txt``; the 100 MB one is the six shared corpora
concatenated, three times over (written once to ``benchmarks/.cache/``), so its distinct
lines are a third of it.  Each training runs in a fresh process, 2 threads, and reports
its wall time and its peak resident memory (VmHWM, see ``bench_train.peak_rss_mb``),
also as bytes per input byte above the process's size after its imports.  Results:
``benchmarks/results/train_memory.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_encode as harness  # noqa: E402
import bench_train  # noqa: E402

WORKER = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {here!r})
from bench_train import peak_rss_mb
from viterbisample import train
base = peak_rss_mb()
t0 = time.perf_counter()
tok = train([Path({path!r})], {size}, num_threads=2, progress=False)
seconds = time.perf_counter() - t0
print(json.dumps({{"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_after_imports_mb": base,
                   "vocab_size": tok.vocab_size}}))
"""


def hundred_mb_corpus() -> Path:
    path = harness.CACHE / "corpora_x3.txt"
    if not path.exists():
        names = sorted(p for p in harness.CORPORA.glob("*.txt"))
        data = b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in names)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data * 3)
        tmp.replace(path)
    return path


def measure(path: Path, size: int) -> dict:
    code = WORKER.format(here=str(HERE), path=str(path), size=size)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    n_bytes = path.stat().st_size
    out.update(corpus=path.name, megabytes=n_bytes / 1e6,
               bytes_per_input_byte=(out["peak_rss_mb"] - out["rss_after_imports_mb"]) * 1e6 / n_bytes)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab-size", type=int, default=32000)
    args = ap.parse_args()
    measure(harness.find_corpus("en_botchan.txt"), 1000)  # fills the Numba cache
    runs = [measure(harness.find_corpus("en_python_docs.txt"), args.vocab_size),
            measure(hundred_mb_corpus(), args.vocab_size)]
    result = {"machine": harness.machine_info(), "vocab_size": args.vocab_size, "runs": runs}
    lines = [f"# Training memory, {args.vocab_size} ids, 2 threads", "",
             "| corpus | MB | train s | peak RSS MB | after imports MB | peak above imports, bytes per input byte |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        lines.append(f"| {r['corpus']} | {r['megabytes']:.1f} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
                     f"{r['rss_after_imports_mb']:.0f} | {r['bytes_per_input_byte']:.2f} |")
    info = result["machine"]
    lines += ["", f"Machine: {info.get('cpu')}, {info.get('usable_cpus')} usable CPUs."]
    harness.write_atomic(harness.RESULTS / "train_memory.json", json.dumps(result, indent=1))
    harness.write_atomic(harness.RESULTS / "train_memory.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
