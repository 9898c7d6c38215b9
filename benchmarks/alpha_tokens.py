"""How many extra tokens a given alpha costs, per vocabulary: why alpha does not carry over.

For each alpha, the exact expected number of tokens of a sample of q_alpha (forward-
backward, ``stats_batch``) over a seeded sample of corpus lines, relative to the Viterbi
segmentation; and the alpha ``alpha_for_length`` calibrates for +10%.  Run on the model
shipped with the package and on the SentencePiece model ``bench_encode.py`` trains for the
corpus (imported), so the two vocabularies can be compared at the same alpha.

    python benchmarks/alpha_tokens.py [--corpus en_python_docs.txt]

Needs the shared corpora at ``../shared/data/corpora`` (or ``--corpus PATH``); the second
model needs sentencepiece (the ``bench`` extra) or a cached model.  Results:
``benchmarks/results/alpha_tokens-<corpus>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench_encode import RESULTS, corpus_model, machine_info, markdown_table, model_arguments, sample_lines, write_atomic

ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="en_python_docs.txt")
    model_arguments(ap)
    ap.add_argument("--sample-mb", type=float, default=1.0, help="size of the seeded sample of lines")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    from viterbisample import Tokenizer
    from viterbisample.io.sentencepiece import import_sentencepiece

    corpus, _, sha, lines, model_path = corpus_model(args.corpus, args)
    sample = sample_lines(lines, args.sample_mb, args.seed + 2)
    imp = import_sentencepiece(model_path)
    models = {
        "default model (32000 ids, byte-level)": (Tokenizer.default(), sample),
        f"SentencePiece {args.vocab_size}, imported": (imp.tokenizer, sample),
    }
    results = {}
    for name, (tok, texts) in models.items():
        viterbi = sum(map(len, tok.encode_batch(texts)))
        extra = {a: float(tok.stats_batch(texts, a)["expected_length"].sum()) / viterbi - 1 for a in ALPHAS}
        results[name] = {"viterbi_tokens": viterbi, "extra_tokens": extra,
                         "alpha_for_10_percent": tok.alpha_for_length(texts, 0.1)}
        print(name, {a: f"{100 * e:+.0f}%" for a, e in extra.items()},
              f"alpha for +10%: {results[name]['alpha_for_10_percent']:.3f}")
    rows = [[name] + [f"{100 * r['extra_tokens'][a]:+.0f}%" for a in ALPHAS] + [f"{r['alpha_for_10_percent']:.2f}"]
            for name, r in results.items()]
    info = machine_info()
    md = [f"# Extra tokens per alpha on {corpus.name}", "",
          f"Expected tokens of a sample of q_alpha over the Viterbi segmentation's, exact, on {len(sample):,} "
          f"lines (a seeded sample of about {args.sample_mb:g} MB).", "",
          *markdown_table(["model"] + [f"alpha {a:g}" for a in ALPHAS] + ["alpha for +10%"],
                          ["l"] + ["r"] * (len(ALPHAS) + 1), rows), "",
          f"viterbisample git {info['viterbisample_git']}, numba {info['numba']}.", ""]
    print("\n".join(md))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"alpha_tokens-{corpus.stem}"
    write_atomic(stem.with_suffix(".json"), json.dumps(
        {"corpus": corpus.name, "sha256": sha, "lines": len(sample), "results": results}, indent=1))
    write_atomic(stem.with_suffix(".md"), "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
