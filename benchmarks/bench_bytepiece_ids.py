"""BytePiece models loaded as they are: the same ids as ``bytepiece`` on every line of
every shared corpus, and the Viterbi time of both.

For each corpus, a BytePiece model trained by bytepiece itself on a seeded sample of the
corpus (``bench_encode.bytepiece_model``: ``Trainer(order=6, min_count=2)``, cached in
``benchmarks/.cache``; 8000 pieces, 4000 for Botchan; ``--train-mb`` 1 by default, since
bytepiece's trainer is pure Python), and the small model vendored in
``tests/data/bytepiece``: ``load_bytepiece(path)`` against ``bytepiece.Tokenizer(path)``,
both given the raw corpus lines.  Every line's ids are compared (the bar is 0 lines
differing); then ``encode_batch(lines, num_threads=1)`` and bytepiece's ``encode`` of
each line are timed in interleaved rounds (best and median), and bytepiece's ``encode``
of the whole corpus as one string (it cuts the lines itself: one call) once a round too.

    python benchmarks/bench_bytepiece_ids.py [--corpus NAME ...] [--rounds 3]

Needs the shared corpora at ``../shared/data/corpora`` (put the corpus files there when
missing) and bytepiece 0.6.3 with a bytes-mode pyahocorasick (see
``make_bytepiece_fixtures.py``).  Results: ``benchmarks/results/bytepiece_ids.{json,md}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

from bench_encode import RESULTS, REPO, bytepiece_model, find_corpus, machine_info, markdown_table, publish

CORPUS_NAMES = ["en_python_docs.txt", "code_python_stdlib.txt", "ja_wagahaiwa_nekodearu.txt", "zh_fortunes.txt",
                "zh_debian_reference.txt", "en_botchan.txt"]
VENDORED = REPO / "tests" / "data" / "bytepiece" / "model.json"
SAMPLE_CASES = [("the school", 0.0), ("there was no", 0.0), ("that they were", 0.2), ("and then the", 0.5),
                ("I was the teacher", 1.0)]
SAMPLES = 20000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", nargs="*", default=CORPUS_NAMES)
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--train-mb", type=float, default=1.0, help="size of bytepiece's training sample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import bytepiece
    from bytepiece import Tokenizer as BPTokenizer

    from viterbisample.io.bytepiece import load_bytepiece

    info = machine_info()
    info["pyahocorasick"] = _version("pyahocorasick")
    rows, results = [], []
    for name in args.corpus:
        corpus = find_corpus(name)
        raw = corpus.read_bytes()
        sha = hashlib.sha256(raw).hexdigest()
        text = raw.decode("utf-8")
        lines = text.split("\n")
        vocab = 4000 if corpus.stem == "en_botchan" else args.vocab_size
        args.vocab_size, saved = vocab, args.vocab_size
        got, why = bytepiece_model(corpus, sha, lines, args)
        args.vocab_size = saved
        if got is None:
            sys.exit(why)
        (_, train_seconds) = got
        key = f"{corpus.stem}-{sha[:16]}-v{vocab}-t{args.train_mb:g}mb-s{args.seed}"
        models = [(f"{corpus.stem} ({vocab})", REPO / "benchmarks" / ".cache" / f"{key}.bytepiece.json"),
                  (f"{corpus.stem}, vendored test model", VENDORED)]
        for label, path in models:
            ours, bp = load_bytepiece(path), BPTokenizer(str(path))
            mine = ours.encode_batch(lines)
            theirs = [bp.encode(x) for x in lines]
            differ = [i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
            whole_same = ours.encode(text) == bp.encode(text)
            times: dict[str, list[float]] = {"ours": [], "bp_lines": [], "bp_text": []}
            for _ in range(args.rounds):
                t = time.perf_counter()
                ours.encode_batch(lines, num_threads=1)
                times["ours"].append(time.perf_counter() - t)
                t = time.perf_counter()
                for x in lines:
                    bp.encode(x)
                times["bp_lines"].append(time.perf_counter() - t)
                t = time.perf_counter()
                bp.encode(text)
                times["bp_text"].append(time.perf_counter() - t)
            mb = len(raw) / 1e6
            speed = {k: mb / min(v) for k, v in times.items()}
            r = {"model": label, "model_file": path.name, "corpus_sha256": sha, "vocab_size": ours.vocab_size,
                 "bytepiece_train_seconds": train_seconds if path != VENDORED else None,
                 "lines": len(lines), "lines_differing": len(differ), "first_differing": differ[:10],
                 "whole_text_same_ids": whole_same, "mb": mb,
                 "ours_mb_s": speed["ours"], "bp_lines_mb_s": speed["bp_lines"], "bp_text_mb_s": speed["bp_text"],
                 "ours_median_mb_s": mb / statistics.median(times["ours"]),
                 "bp_lines_median_mb_s": mb / statistics.median(times["bp_lines"]),
                 "bp_text_median_mb_s": mb / statistics.median(times["bp_text"]), "times": times}
            results.append(r)
            rows.append([label, f"{len(lines):,}", str(len(differ)), "yes" if whole_same else "NO",
                         f"{r['ours_mb_s']:.1f}", f"{r['bp_lines_mb_s']:.2f}", f"{r['bp_text_mb_s']:.2f}",
                         f"{r['ours_mb_s'] / max(r['bp_lines_mb_s'], r['bp_text_mb_s']):.1f}"])
            print(" | ".join(rows[-1]), flush=True)
    fits = sampler_fits(BPTokenizer, load_bytepiece)
    fit_rows = [[repr(f["text"]), f"{f['alpha']:g}", str(f["segmentations"]), f"{f['bytepiece_p']:.3f}",
                 f"{f['ours_p']:.3f}"] for f in fits]
    md = ["# BytePiece models loaded as they are", "",
          "Raw corpus lines to both (BytePiece's NFC included); Viterbi ids compared on every line "
          f"(the bar is 0 differing); one thread, best of {args.rounds} rounds. *bytepiece, lines*: its "
          "`encode` called per line; *bytepiece, text*: one `encode` of the whole corpus (it cuts lines "
          "itself); *ratio*: ours over the faster of the two. Models: trained by bytepiece "
          f"(`Trainer(order=6, min_count=2)`, {args.train_mb:g} MB seeded sample), and the 844-id test model "
          "of `tests/data/bytepiece`.", "",
          *markdown_table(["model", "lines", "lines with other ids", "whole text same ids", "viterbisample MB/s",
                           "bytepiece, lines MB/s", "bytepiece, text MB/s", "ratio"],
                          ["l", "r", "r", "l", "r", "r", "r", "r"], rows), "",
          f"Samplers against q_alpha enumerated from the test model's file ({SAMPLES:,} draws each, "
          "chi-square p-value; both fit: the same alpha means the same distribution):", "",
          *markdown_table(["text", "alpha", "segmentations", "bytepiece p", "viterbisample p"],
                          ["l", "r", "r", "r", "r"], fit_rows), "",
          f"Machine: {info['cpu']}, {info['usable_cpus']} usable CPUs; Python {info['python']}, numpy "
          f"{info['numpy']}, numba {info['numba']}, bytepiece {bytepiece.__version__}, pyahocorasick "
          f"{info['pyahocorasick']}; git {info['viterbisample_git']}; load average at the start "
          f"{info['load_average_at_start']}.", ""]
    publish(args.out, "bytepiece_ids", md, {"machine": info, "results": results, "sampler_fits": fits})
    return 0


def sampler_fits(BPTokenizer, load_bytepiece) -> list[dict]:
    """Chi-square p-values of bytepiece's sampler and ours against enumerated q_alpha."""
    import base64
    import math
    from collections import Counter

    from scipy.stats import chi2

    obj = json.loads(VENDORED.read_text("utf-8"))
    total = sum(v[-1] for v in obj.values())
    pieces = {base64.b64decode(k): (v[0], math.log(v[-1]) - math.log(total)) for k, v in obj.items()}
    bp, ours = BPTokenizer(str(VENDORED), seed=1), load_bytepiece(VENDORED)
    fits = []
    for text, alpha in SAMPLE_CASES:
        data = text.encode()
        paths: list[list] = [[((), 0.0)]] + [[] for _ in data]
        for j in range(1, len(data) + 1):
            for i in range(j):
                hit = pieces.get(data[i:j])
                if hit:
                    paths[j] += [(ids + (hit[0],), sc + hit[1]) for ids, sc in paths[i]]
        top = max(alpha * sc for _, sc in paths[-1])
        w = {ids: math.exp(alpha * sc - top) for ids, sc in paths[-1]}
        z = math.fsum(w.values())
        q = {ids: x / z for ids, x in w.items()}
        theirs = Counter(tuple(bp.encode(text, alpha=alpha)) for _ in range(SAMPLES))
        mine = Counter(map(tuple, ours.sample(text, alpha, SAMPLES, seed=1)))
        fits.append({"text": text, "alpha": alpha, "segmentations": len(q),
                     "bytepiece_p": _chi_square_p(theirs, q, chi2), "ours_p": _chi_square_p(mine, q, chi2)})
        print(fits[-1], flush=True)
    return fits


def _chi_square_p(observed, probs, chi2) -> float:
    """Pearson's test, cells of expected count below 5 pooled; 0 if a draw is no path."""
    n = sum(observed.values())
    if any(k not in probs for k in observed):
        return 0.0
    cells = sorted((n * q, observed.get(k, 0)) for k, q in probs.items())
    big = [c for c in cells if c[0] >= 5]
    small = [c for c in cells if c[0] < 5]
    if small:
        big.append((sum(e for e, _ in small), sum(o for _, o in small)))
    stat = sum((o - e) ** 2 / e for e, o in big)
    return float(chi2.sf(stat, len(big) - 1))


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
