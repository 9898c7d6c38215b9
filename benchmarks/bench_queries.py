"""What the lattice answers beyond one segmentation: n samples per text, n-best lists.

    python benchmarks/bench_queries.py [--corpus en_python_docs.txt] [--vocab-size 8000]
                                       [--lines 3000] [--samples 8] [--nbest 64]

On the same SentencePiece-trained vocabulary as bench_encode.py (imported with
``load_sentencepiece``), one thread each, interleaved rounds, best and median:

* n samples of each text from one forward pass (``sample_batch_arrays``) against n
  separate single-sample encodes and against one Viterbi encode (the issue's bar: n = 8
  samples cost at most 3x one Viterbi encode);
* ``nbest(64)`` against SentencePiece's ``nbest_encode`` (n-best by A*) and its sampling
  with ``nbest_size=64``;
* how often SentencePiece's n-best list differs from the exact one (its A* search is
  truncated on long inputs), by comparing the scores of the lists.

Writes benchmarks/results/queries-<corpus>.json and .md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_encode as harness  # noqa: E402  (machine info, corpus and model cache)
from viterbisample.io.sentencepiece import load_sentencepiece, sentencepiece_input  # noqa: E402


def rounds(tasks: dict, n_rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in tasks}
    for fn in tasks.values():
        fn()  # warm up (Numba compilation, caches)
    names = list(tasks)
    for r in range(n_rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            gc.disable()
            t = time.perf_counter()
            tasks[name]()
            times[name].append(time.perf_counter() - t)
            gc.enable()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="en_python_docs.txt")
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--train-mb", type=float, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lines", type=int, default=3000)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--nbest", type=int, default=64)
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    import sentencepiece as spm

    corpus = harness.find_corpus(args.corpus)
    raw = corpus.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    all_lines = raw.decode("utf-8").split("\n")
    model_path, _ = harness.trained_model(corpus, sha, all_lines, args)
    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    loaded = load_sentencepiece(model_path)
    tok = loaded[0] if isinstance(loaded, tuple) else loaded

    lines = [ln for ln in all_lines if ln][: args.lines]
    ours = [sentencepiece_input(ln).encode("utf-8") for ln in lines]
    n_bytes = sum(len(ln.encode("utf-8")) for ln in lines)
    k, a = args.samples, args.alpha

    tasks = {
        "viterbi": lambda: tok.encode_batch_arrays(ours, num_threads=1),
        "one sample": lambda: tok.encode_batch_arrays(ours, alpha=a, num_threads=1),
        f"{k} samples, one pass": lambda: tok.sample_batch_arrays(ours, a, k, num_threads=1),
        f"{k} single encodes": lambda: [
            tok.encode_batch_arrays(ours, alpha=a, seed=s, num_threads=1) for s in range(k)],
        f"nbest({args.nbest})": lambda: tok.nbest_batch(ours, args.nbest, num_threads=1),
        f"sentencepiece nbest_encode({args.nbest})": lambda: [
            sp.nbest_encode(ln, nbest_size=args.nbest) for ln in lines],
        f"sentencepiece sample nbest_size={args.nbest}": lambda: sp.encode(
            lines, enable_sampling=True, alpha=a, nbest_size=args.nbest, num_threads=1),
        "sentencepiece encode": lambda: sp.encode(lines, num_threads=1),
    }
    times = rounds(tasks, args.rounds)
    best = {name: min(t) for name, t in times.items()}
    median = {name: statistics.median(t) for name, t in times.items()}

    # Exactness of the peer's n-best: same total scores as our exact list?
    ours_best = tok.nbest_batch(ours, args.nbest, num_threads=1)
    differ = 0
    for line, exact in zip(lines, ours_best):
        theirs = sp.nbest_encode(line, nbest_size=args.nbest)
        their_scores = sorted((sum(sp.get_score(i) for i in ids) for ids in theirs), reverse=True)
        if len(their_scores) != len(exact) or any(
            abs(s - t) > 1e-3 for s, (_, t) in zip(their_scores, exact)
        ):
            differ += 1

    ratios = {
        f"{k} samples (one pass) / viterbi": best[f"{k} samples, one pass"] / best["viterbi"],
        f"{k} samples (one pass) / {k} single encodes": best[f"{k} samples, one pass"] / best[f"{k} single encodes"],
        "one sample / viterbi": best["one sample"] / best["viterbi"],
        f"nbest({args.nbest}) / sentencepiece nbest_encode": best[f"nbest({args.nbest})"]
        / best[f"sentencepiece nbest_encode({args.nbest})"],
    }
    result = {
        "machine": harness.machine_info(),
        "corpus": corpus.name, "sha256": sha, "vocab_size": args.vocab_size,
        "lines": len(lines), "bytes": n_bytes, "rounds": args.rounds,
        "seconds_best": best, "seconds_median": median, "time_ratios_best": ratios,
        "sentencepiece_nbest_lists_differing_from_exact": differ,
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stem = f"queries-{corpus.stem}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    md = [f"# Lattice queries on {corpus.name} ({len(lines)} lines, {n_bytes / 1e6:.2f} MB), "
          f"{args.vocab_size} pieces, 1 thread", "",
          "| task | best s | median s | MB/s (best) |", "| --- | ---: | ---: | ---: |"]
    for name in tasks:
        md.append(f"| {name} | {best[name]:.3f} | {median[name]:.3f} | {n_bytes / best[name] / 1e6:.2f} |")
    md += ["", "| time ratio (best) | value |", "| --- | ---: |"]
    md += [f"| {name} | {v:.2f} |" for name, v in ratios.items()]
    md += ["", f"SentencePiece n-best lists whose scores differ from the exact list: {differ} of {len(lines)}.",
           "", f"Machine: {json.dumps(result['machine'])}"]
    (out / f"{stem}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
