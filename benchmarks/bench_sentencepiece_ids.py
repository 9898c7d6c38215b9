"""SentencePiece models loaded as they are: the same ids as ``sentencepiece`` on every line
of every shared corpus, and the time of both, normalization included.

For each corpus, the SentencePiece model of ``bench_encode.py`` (trained once on the
corpus, cached in ``benchmarks/.cache``; default ``nmt_nfkc`` normalizer,
``byte_fallback``) and, with ``--vendored``, the two models in ``tests/data``:
``Tokenizer.load(path)`` against ``SentencePieceProcessor(model_file=path)``, both given
the raw corpus lines.  Every line's ids are compared; then ``encode_batch`` (one thread)
and ``sp.encode(lines, num_threads=1)`` are timed in interleaved rounds (best and median),
Viterbi and, at ``--alpha`` (default 0.1), exact sampling (ours keyed by seed and line,
sentencepiece's ``enable_sampling=True, nbest_size=-1``, both over SentencePiece's
lattice).

    python benchmarks/bench_sentencepiece_ids.py [--corpus NAME ...] [--vendored] [--alpha A]

Needs the shared corpora at ``../shared/data/corpora`` and sentencepiece (the ``bench``
extra).  Results: ``benchmarks/results/sentencepiece_ids.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from bench_encode import RESULTS, machine_info, markdown_table, model_arguments, publish, sentencepiece_models

CORPUS_NAMES = ["en_python_docs.txt", "code_python_stdlib.txt", "ja_wagahaiwa_nekodearu.txt", "zh_fortunes.txt",
                "zh_debian_reference.txt", "en_botchan.txt"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", nargs="*", default=CORPUS_NAMES)
    model_arguments(ap)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=0.1, help="alpha of the timed sampling")
    ap.add_argument("--vendored", action="store_true", help="also the models in tests/data/sp_test_models")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import sentencepiece as spm

    from viterbisample import Tokenizer

    info = machine_info()
    rows, results = [], []
    for name in args.corpus:
        corpus, raw, lines, models = sentencepiece_models(name, args, args.vendored)
        for label, path in models:
            tok, sp = Tokenizer.load(path), spm.SentencePieceProcessor(model_file=str(path))
            ours, theirs = tok.encode_batch(lines), sp.encode(lines)
            differ = sum(a != b for a, b in zip(ours, theirs))
            runs = {
                "ours": lambda: tok.encode_batch(lines, num_threads=1),
                "sp": lambda: sp.encode(lines, num_threads=1),
                "ours_sample": lambda: tok.encode_batch(lines, alpha=args.alpha, seed=1, num_threads=1),
                "sp_sample": lambda: sp.encode(lines, enable_sampling=True, alpha=args.alpha, nbest_size=-1,
                                               num_threads=1),
            }
            times = {k: [] for k in runs}
            for _ in range(args.rounds):
                for k, run in runs.items():
                    t = time.perf_counter()
                    run()
                    times[k].append(time.perf_counter() - t)
            mb = len(raw) / 1e6
            r = {"model": label, "lines": len(lines), "lines_differing": differ, "alpha": args.alpha}
            for k in runs:
                r[f"{k}_mb_s"] = mb / min(times[k])
                r[f"{k}_median_mb_s"] = mb / statistics.median(times[k])
            results.append(r)
            rows.append([label, f"{len(lines):,}", str(differ), f"{r['ours_mb_s']:.1f}", f"{r['sp_mb_s']:.1f}",
                         f"{r['ours_mb_s'] / r['sp_mb_s']:.2f}", f"{r['ours_sample_mb_s']:.1f}",
                         f"{r['sp_sample_mb_s']:.1f}", f"{r['ours_sample_mb_s'] / r['sp_sample_mb_s']:.2f}"])
            print(" | ".join(rows[-1]), flush=True)
    md = ["# SentencePiece models loaded as they are", "",
          f"Raw corpus lines to both (normalization included), one thread, best of {args.rounds} rounds: "
          f"Viterbi, and exact sampling at alpha {args.alpha} (sentencepiece: nbest_size=-1).", "",
          *markdown_table(["model", "lines", "lines with other ids", "viterbisample MB/s", "sentencepiece MB/s",
                           "ratio", "sampling, ours MB/s", "sampling, sentencepiece MB/s", "sampling ratio"],
                          ["l"] + ["r"] * 8, rows), "",
          f"Machine: {info['cpu']}, {info['usable_cpus']} usable CPUs; Python {info['python']}, numba "
          f"{info['numba']}, sentencepiece {info['sentencepiece']}; git {info['viterbisample_git']}.", ""]
    publish(args.out, "sentencepiece_ids", md, {"machine": info, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
