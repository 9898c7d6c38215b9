"""SentencePiece models loaded as they are: the same ids as ``sentencepiece`` on every line
of every shared corpus, and the time of both, normalization included.

For each corpus, the SentencePiece model of ``bench_encode.py`` (trained once on the
corpus, cached in ``benchmarks/.cache``; default ``nmt_nfkc`` normalizer,
``byte_fallback``) and, with ``--vendored``, the two models in ``tests/data``:
``Tokenizer.load(path)`` against ``SentencePieceProcessor(model_file=path)``, both given
the raw corpus lines.  Every line's ids are compared; then ``encode_batch`` (one thread)
and ``sp.encode(lines, num_threads=1)`` are timed in interleaved rounds (best and median).

    python benchmarks/bench_sentencepiece_ids.py [--corpus NAME ...] [--vendored]

Needs the shared corpora at ``../shared/data/corpora`` and sentencepiece (the ``bench``
extra).  Results: ``benchmarks/results/sentencepiece_ids.{json,md}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

from bench_encode import RESULTS, REPO, find_corpus, machine_info, markdown_table, model_arguments, trained_model, write_atomic

CORPUS_NAMES = ["en_python_docs.txt", "code_python_stdlib.txt", "ja_wagahaiwa_nekodearu.txt", "zh_fortunes.txt",
                "zh_debian_reference.txt", "en_botchan.txt"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", nargs="*", default=CORPUS_NAMES)
    model_arguments(ap)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vendored", action="store_true", help="also the models in tests/data/sp_test_models")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import sentencepiece as spm

    from viterbisample import Tokenizer

    info = machine_info()
    rows, results = [], []
    for name in args.corpus:
        corpus = find_corpus(name)
        raw = corpus.read_bytes()
        sha = hashlib.sha256(raw).hexdigest()
        lines = raw.decode("utf-8").split("\n")
        vocab = 4000 if corpus.stem == "en_botchan" else args.vocab_size
        args.vocab_size, saved = vocab, args.vocab_size
        model, _ = trained_model(corpus, sha, [x for x in lines if x], args)
        args.vocab_size = saved
        models = [(f"{corpus.stem} ({vocab})", model)]
        if args.vendored:
            models += [(f"{corpus.stem}, {m.stem}", m) for m in sorted((REPO / "tests/data/sp_test_models").glob("*.model"))]
        for label, path in models:
            tok, sp = Tokenizer.load(path), spm.SentencePieceProcessor(model_file=str(path))
            ours, theirs = tok.encode_batch(lines), sp.encode(lines)
            differ = sum(a != b for a, b in zip(ours, theirs))
            times = {"ours": [], "sp": []}
            for _ in range(args.rounds):
                t = time.perf_counter()
                tok.encode_batch(lines, num_threads=1)
                times["ours"].append(time.perf_counter() - t)
                t = time.perf_counter()
                sp.encode(lines, num_threads=1)
                times["sp"].append(time.perf_counter() - t)
            mb = len(raw) / 1e6
            r = {"model": label, "lines": len(lines), "lines_differing": differ,
                 "ours_mb_s": mb / min(times["ours"]), "sp_mb_s": mb / min(times["sp"]),
                 "ours_median_mb_s": mb / statistics.median(times["ours"]),
                 "sp_median_mb_s": mb / statistics.median(times["sp"])}
            results.append(r)
            rows.append([label, f"{len(lines):,}", str(differ), f"{r['ours_mb_s']:.1f}", f"{r['sp_mb_s']:.1f}",
                         f"{r['ours_mb_s'] / r['sp_mb_s']:.2f}"])
            print(" | ".join(rows[-1]), flush=True)
    md = ["# SentencePiece models loaded as they are", "",
          f"Raw corpus lines to both (normalization included); Viterbi, one thread, best of {args.rounds} rounds.", "",
          *markdown_table(["model", "lines", "lines with other ids", "viterbisample MB/s", "sentencepiece MB/s",
                           "ratio"], ["l", "r", "r", "r", "r", "r"], rows), "",
          f"Machine: {info['cpu']}, {info['usable_cpus']} usable CPUs; Python {info['python']}, numba "
          f"{info['numba']}, sentencepiece {info['sentencepiece']}; git {info['viterbisample_git']}.", ""]
    print("\n".join(md))
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "sentencepiece_ids.json", json.dumps({"machine": info, "results": results}, indent=1))
    write_atomic(args.out / "sentencepiece_ids.md", "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
