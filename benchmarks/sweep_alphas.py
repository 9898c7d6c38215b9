"""Every line of the shared corpora, sampled at small and large alphas: how many samples are wrong.

    python benchmarks/sweep_alphas.py [--alphas 0.1,1,5,8,10,15,20,40,1e3,1e306] [--corpora ...]

Models: the shipped default model, and one trained here with 64-byte pieces on the code
corpus (``--max-piece-bytes 64``, cached in benchmarks/.cache): the two on which the old
linear-domain sampler returned wrong tokens or crashed.  For each (model, corpus, alpha)
every line is sampled once (``encode_batch_arrays``, seed 0, all cores); a sample is
wrong when its pieces do not spell the line.  At alpha >= 1e300 a sample must also score
exactly what the Viterbi path scores.  Also records which domain each alpha ran in.
Writes benchmarks/results/sweep_alphas.json and .md.

The corpora are read from ../shared/data/corpora next to the repository (put the
corpora there, or pass --corpora-dir).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_encode as harness  # noqa: E402  (machine info, corpus paths)
from viterbisample import Tokenizer  # noqa: E402
from viterbisample.train import train  # noqa: E402

CORPORA = ["en_botchan", "en_python_docs", "code_python_stdlib", "ja_wagahaiwa_nekodearu",
           "zh_fortunes", "zh_debian_reference"]
CODE64 = HERE / ".cache" / "code_python_stdlib-64byte-8000.json"


def code64_model(corpora: Path) -> Tokenizer:
    """An 8000-id model with pieces of up to 64 bytes, trained on 20,000 lines of code."""
    if not CODE64.is_file():
        CODE64.parent.mkdir(exist_ok=True)
        tok = train([corpora / "code_python_stdlib.txt"], 8000, max_piece_bytes=64, max_lines=20000,
                    seed=0, progress=False)
        tok.save(CODE64)
    return Tokenizer.load(CODE64)


def check(tok: Tokenizer, lines: list[bytes], alpha: float) -> tuple[int, int]:
    """(wrong samples, samples whose score is not Viterbi's where alpha >= 1e300)."""
    ids, offsets = tok.encode_batch_arrays(lines, alpha=alpha, seed=0)
    m = tok.model
    spelled = m.lengths[ids].astype(np.int64)
    per_line = np.add.reduceat(spelled, offsets[:-1]) if len(ids) else np.zeros(len(lines), np.int64)
    per_line[offsets[:-1] == offsets[1:]] = 0  # reduceat repeats a value for an empty row
    want = np.array([len(x) for x in lines], np.int64)
    wrong = set(np.flatnonzero(per_line != want).tolist())
    table = m.decode_table
    joined = b"".join(table[i] for i in ids.tolist())
    if joined != b"".join(lines):  # same lengths but other bytes: find the lines
        at = 0
        for k, line in enumerate(lines):
            if joined[at : at + len(line)] != line:
                wrong.add(k)
            at += len(line)
    off_best = 0
    if alpha >= 1e300:
        vids, voffsets = tok.encode_batch_arrays(lines)
        sample_scores = np.add.reduceat(m.scores[ids], offsets[:-1]) if len(ids) else np.zeros(len(lines))
        best_scores = np.add.reduceat(m.scores[vids], voffsets[:-1]) if len(vids) else np.zeros(len(lines))
        nonempty = offsets[:-1] < offsets[1:]
        off_best = int(np.count_nonzero(nonempty & (np.abs(sample_scores - best_scores) > 1e-9 * np.abs(best_scores))))
    return len(wrong), off_best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alphas", default="0.1,1,5,8,10,15,20,40,1e3,1e306")
    ap.add_argument("--corpora", default=",".join(CORPORA))
    ap.add_argument("--corpora-dir", type=Path, default=harness.CORPORA)
    args = ap.parse_args()
    if not args.corpora_dir.is_dir():
        sys.exit(f"no corpora at {args.corpora_dir}: put the shared corpora there or pass --corpora-dir")
    alphas = [float(a) for a in args.alphas.split(",")]
    models = {"default": Tokenizer.default(), "code64": code64_model(args.corpora_dir)}
    rows = []
    for model_name, tok in models.items():
        for corpus in args.corpora.split(","):
            lines = (args.corpora_dir / f"{corpus}.txt").read_bytes().splitlines()
            for alpha in alphas:
                t = time.perf_counter()
                wrong, off_best = check(tok, lines, alpha)
                rows.append({
                    "model": model_name, "corpus": corpus, "lines": len(lines), "alpha": alpha,
                    "domain": "linear" if len(tok._weights(alpha)) else "log",
                    "wrong": wrong, "not_best_at_huge_alpha": off_best,
                    "seconds": round(time.perf_counter() - t, 2),
                })
                print(json.dumps(rows[-1]), flush=True)
    total_lines = sum(r["lines"] for r in rows)
    total_wrong = sum(r["wrong"] + r["not_best_at_huge_alpha"] for r in rows)
    result = {"machine": harness.machine_info(), "rows": rows,
              "samples": total_lines, "wrong": total_wrong}
    out = HERE / "results" / "sweep_alphas"
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    md = ["| model | corpus | lines | alpha | domain | wrong | not best (alpha >= 1e300) | s |",
          "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    md += [f"| {r['model']} | {r['corpus']} | {r['lines']} | {r['alpha']:g} | {r['domain']} | {r['wrong']} "
           f"| {r['not_best_at_huge_alpha']} | {r['seconds']} |" for r in rows]
    md.append(f"\n{total_lines} samples, {total_wrong} wrong.")
    m = result["machine"]
    md.append(f"\nMachine: {m['cpu']}, {m['usable_cpus']} cpus; Python {m['python']}, numpy {m['numpy']}, "
              f"numba {m['numba']}; viterbisample {m['viterbisample_git']}.")
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"{total_lines} samples, {total_wrong} wrong")
    sys.exit(1 if total_wrong else 0)


if __name__ == "__main__":
    main()
