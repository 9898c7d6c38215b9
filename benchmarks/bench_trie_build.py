"""Trie build time at scale, and model load time.

    python benchmarks/bench_trie_build.py [--rounds 3] [--random-pieces 1000000]

Times ``build_trie`` (forward and reversed, the two tries every model builds) on:

* 200k numbered pieces, b"zq1" ... b"zq200000", plus the 256 single bytes: the case that
  took 148 s (its reversed trie) before the placement was reworked;
* 1M random pieces of random bytes, lengths 1..16 (``build_trie_packed``, as the trainer
  calls it);
* the shipped model's pieces.

and the load of model files: the shipped model, and the 200k-numbered model saved to a
temporary file, each read with ``model_file.load`` and its two tries built (what the first
encode of a freshly loaded model pays).  Reports the best and the median of ``--rounds``
runs after a warm-up (Numba compilation is timed apart), the trie size in cells per
state (1.0 is perfect packing), and checks every build by walking a sample of its pieces.
Writes benchmarks/results/trie_build.json and .md with the machine and versions.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(REPO))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_encode as harness  # noqa: E402  (machine info)
from viterbisample import Tokenizer  # noqa: E402
from viterbisample.io import model_file  # noqa: E402
from viterbisample.model import Model  # noqa: E402
from viterbisample.trie import Trie, build_trie, build_trie_packed, prefix_matches  # noqa: E402


def timed(fn, rounds: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def check_walks(trie: Trie, pieces_at, n: int, reverse: bool, sample: int = 5000) -> None:
    """Each sampled piece, walked alone, ends on its own id (``pieces_at(i)``: piece i)."""
    rng = np.random.default_rng(1)
    ids = np.zeros(max(1, trie.max_len), np.int32)
    ends = np.zeros(max(1, trie.max_len), np.int64)
    for i in rng.choice(n, min(n, sample), replace=False):
        p = pieces_at(int(i))
        arr = np.frombuffer(p, np.uint8)
        if reverse:
            k = prefix_matches(trie.base, trie.check, trie.value, arr, len(p) - 1, -1, -1, ids, 0, ends)
            last = (int(ids[k - 1]), int(ends[k - 1])) if k else None
            assert last == (int(i), 0), (p, last)
        else:
            k = prefix_matches(trie.base, trie.check, trie.value, arr, 0, len(p), 1, ids, 0, ends)
            last = (int(ids[k - 1]), int(ends[k - 1])) if k else None
            assert last == (int(i), len(p)), (p, last)


def random_pieces(n: int, max_len: int) -> list[bytes]:
    """``n`` distinct pieces of random bytes, lengths uniform in 1..max_len (short ones
    repeat, so more are drawn until ``n`` are distinct)."""
    rng = np.random.default_rng(0)
    seen: dict[bytes, None] = {}
    while len(seen) < n:
        lengths = rng.integers(1, max_len + 1, n)
        data = rng.integers(0, 256, int(lengths.sum()), dtype=np.uint8).tobytes()
        at = 0
        for k in lengths.tolist():
            seen[data[at : at + k]] = None
            at += k
    return list(seen)[:n]


def packing(trie: Trie) -> float:
    """Cells per state: the array length over the used cells (plus the root)."""
    return len(trie.base) / (int((trie.check >= 0).sum()) + 1)


def row(name: str, times: list[float], **extra) -> dict:
    r = {"case": name, "best_s": min(times), "median_s": statistics.median(times), "runs_s": times, **extra}
    shown = ", ".join(f"{k} {v}" for k, v in extra.items())
    print(f"{name:52s} best {r['best_s']:7.3f} s  median {r['median_s']:7.3f} s  {shown}", flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--numbered", type=int, default=200_000)
    ap.add_argument("--random-pieces", type=int, default=1_000_000)
    ap.add_argument("--max-random-len", type=int, default=16)
    args = ap.parse_args()
    meta = harness.machine_info()
    rows = []

    t = time.perf_counter()
    build_trie([b"a", b"ab"], [0, 1])
    build_trie([b"a", b"ab"], [0, 1], reverse=True)
    compile_s = time.perf_counter() - t
    print(f"warm-up (Numba compile or cache load): {compile_s:.2f} s", flush=True)

    numbered = [bytes([b]) for b in range(256)] + [b"zq%d" % i for i in range(1, args.numbered + 1)]
    shipped = list(Tokenizer.default().model.pieces)
    for name, pieces in [(f"{args.numbered // 1000}k numbered pieces", numbered), ("shipped model pieces", shipped)]:
        for reverse in (False, True):
            times, trie = timed(lambda: build_trie(pieces, range(len(pieces)), reverse=reverse), args.rounds)
            check_walks(trie, pieces.__getitem__, len(pieces), reverse)
            rows.append(row(f"{name}, {'reversed' if reverse else 'forward'}", times,
                            pieces=len(pieces), cells=len(trie.base), cells_per_state=round(packing(trie), 4)))

    pieces = random_pieces(args.random_pieces, args.max_random_len)
    packed = np.frombuffer(b"".join(pieces), np.uint8)
    plens = np.fromiter(map(len, pieces), np.int64, len(pieces))
    for reverse in (False, True):
        times, trie = timed(lambda: build_trie_packed(packed, plens, np.arange(len(pieces)), reverse), args.rounds)
        check_walks(trie, pieces.__getitem__, len(pieces), reverse)
        rows.append(row(f"{len(pieces) / 1e6:g}M random pieces (1..{args.max_random_len} bytes), "
                        f"{'reversed' if reverse else 'forward'}", times, pieces=len(pieces),
                        bytes=int(plens.sum()), cells=len(trie.base), cells_per_state=round(packing(trie), 4)))
    del trie, pieces, packed

    def load_and_build(path: Path) -> Model:
        model = model_file.load(path)
        model.kernel_arrays  # both tries: what the first encode builds
        return model

    shipped_path = REPO / "viterbisample" / "data" / "default_model.json"
    times, _ = timed(lambda: load_and_build(shipped_path), args.rounds)
    rows.append(row("load shipped model file + both tries", times, pieces=len(shipped),
                    file_bytes=shipped_path.stat().st_size))
    scores = np.linspace(-5.0, -20.0, len(numbered))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "numbered.json"
        model_file.save(Model(numbered, scores), path)
        times, _ = timed(lambda: load_and_build(path), args.rounds)
        rows.append(row(f"load {args.numbered // 1000}k-numbered model file + both tries", times,
                        pieces=len(numbered), file_bytes=path.stat().st_size))

    meta["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    meta["warmup_s"] = compile_s
    meta["rounds"] = args.rounds
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trie_build.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "# Trie build and model load (`benchmarks/bench_trie_build.py`)", "",
        f"{meta['cpu']} ({meta['logical_cpus']} logical CPUs, load average at start "
        f"{', '.join(f'{x:.1f}' for x in meta['load_average_at_start'])}), {meta['os']}, Python "
        f"{meta['python']}, NumPy {meta['numpy']}, Numba {meta['numba']}, git {meta['viterbisample_git']}. "
        f"Best and median of {args.rounds} runs after a warm-up of {compile_s:.2f} s; peak RSS "
        f"{meta['peak_rss_mb']} MB.", "",
    ]
    lines += harness.markdown_table(
        ["case", "pieces", "best s", "median s", "cells per state"], ["l", "r", "r", "r", "r"],
        [[r["case"], str(r["pieces"]), f"{r['best_s']:.3f}", f"{r['median_s']:.3f}",
          str(r.get("cells_per_state", ""))] for r in rows],
    )
    (RESULTS / "trie_build.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
