"""Linear scaling: one single line of 1 KB, 1 MB and 100 MB, Viterbi and sampled.

    python benchmarks/bench_scaling.py [--sizes 1e3,1e6,1e8] [--corpus en_python_docs.txt]

Each (size, mode) runs in a fresh subprocess so that its peak resident memory is its own;
the line is the corpus with newlines turned into spaces, repeated to the size.  Reports
seconds, ns per byte, and peak RSS above the baseline of an identical process that only
loaded the model and the text, in bytes per input byte.  Writes
benchmarks/results/scaling.json and .md.  Uses the shipped default model.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_encode as harness  # noqa: E402  (the results table)
ROOT = HERE.parent
CORPORA = ROOT.parent / "shared" / "data" / "corpora"

CHILD = r"""
import resource, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from viterbisample import Tokenizer
size, mode, corpus = int(float(sys.argv[1])), sys.argv[2], sys.argv[3]
raw = open(corpus, "rb").read().replace(b"\n", b" ")
line = (raw * (size // len(raw) + 1))[:size]
tok = Tokenizer.default()
tok.encode_batch_arrays([line[:1000]], alpha=None if mode == "viterbi" else 0.1)  # warm up
del raw
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if mode == "baseline":
    print(0.0, 0, base)
    sys.exit()
t = time.perf_counter()
ids, offsets = tok.encode_batch_arrays([line], alpha=None if mode == "viterbi" else 0.1, seed=1, num_threads=1)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
assert tok.decode_bytes(ids) == line
print(dt, len(ids), peak)
"""


def run(size: float, mode: str, corpus: Path) -> tuple[float, int, int]:
    code = CHILD.format(root=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code, str(size), mode, str(corpus)],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e3,1e6,1e8")
    ap.add_argument("--corpus", default="en_python_docs.txt")
    args = ap.parse_args()
    corpus = CORPORA / args.corpus
    rows = []
    for size in [float(s) for s in args.sizes.split(",")]:
        _, _, baseline = run(size, "baseline", corpus)
        for mode in ("viterbi", "sample"):
            dt, tokens, peak = run(size, mode, corpus)
            rows.append({
                "bytes": int(size), "mode": mode, "seconds": dt, "tokens": tokens,
                "ns_per_byte": dt / size * 1e9, "mb_per_s": size / dt / 1e6,
                "peak_rss_above_baseline_bytes_per_byte": max(0, peak - baseline) / size,
            })
            print(rows[-1], flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "corpus": args.corpus}
    (out / "scaling.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = harness.markdown_table(
        ["bytes", "mode", "seconds", "ns/byte", "MB/s", "peak RSS above baseline, bytes per input byte"],
        ["r", "l", "r", "r", "r", "r"],
        [[f"{r['bytes']:,}", r["mode"], f"{r['seconds']:.4f}", f"{r['ns_per_byte']:.1f}", f"{r['mb_per_s']:.1f}",
          f"{r['peak_rss_above_baseline_bytes_per_byte']:.1f}"] for r in rows],
    )
    (out / "scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
