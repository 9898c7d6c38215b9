"""Per-call speed: one text at a time, as a data loader's ``__getitem__`` calls it.

Uses the SentencePiece model of ``bench_encode.py`` (trained once on the corpus, cached
in ``benchmarks/.cache``) and its import, so both tokenizers search the same lattice.
Texts are corpus lines as they are (a seeded sample), and runs of corpus lines cut to
16, 128 and 1024 bytes; all kept where SentencePiece's
normalization is only its whitespace handling; viterbisample gets them as SentencePiece
sees them after normalizing (``sentencepiece_input``, prepared before the clock, as in
``bench_encode.py``), SentencePiece gets the raw text and normalizes it itself.

Each task calls one tokenizer on every text, one call per text, in rounds that interleave
the tasks; the table gives microseconds per call, best of the rounds (and the median in
the JSON).  Rows:

* ``encode(x)``: Viterbi; SentencePiece's ``encode(x)``;
* ``encode(x, alpha)``: one sample, fresh seed per call; SentencePiece's
  ``encode(x, enable_sampling=True, alpha=..., nbest_size=-1)`` (its exact sampler);
* ``encode(x, alpha, seed, epoch=, index=)``: the keyed sample a data loader uses;
* ``kernel``: ``lattice.encode_text`` alone (called as the engine calls it, without
  Numba's dispatch), with every argument prepared: the rest of a call is the overhead
  of the Python face.

    python benchmarks/bench_per_call.py [--corpus en_python_docs.txt] [--alpha 0.1]

Needs the shared corpora at ``../shared/data/corpora`` (or ``--corpus PATH``) and the
``bench`` extra (sentencepiece).  Results: ``benchmarks/results/per_call-<corpus>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from bench_encode import RESULTS, corpus_model, machine_info, markdown_table, model_arguments, sample_lines, write_atomic

LENGTHS = (16, 128, 1024)


def texts_of_length(lines: list[str], size: int, count: int, keep) -> list[str]:
    """Up to ``count`` texts of ``size`` UTF-8 bytes (cut at a character boundary), each
    consecutive corpus lines joined by spaces, for which ``keep(text)`` holds."""
    found: list[str] = []
    run = ""
    for line in lines:
        run = f"{run} {line}" if run else line
        data = run.encode("utf-8")
        if len(data) < size:
            continue
        text = data[:size].decode("utf-8", "ignore").strip()
        run = ""
        if text and keep(text):
            found.append(text)
            if len(found) == count:
                break
    return found


def per_call(fn, items: list, rounds_out: list) -> None:
    """Time one pass of ``fn`` over ``items``; append microseconds per call."""
    t = time.perf_counter()
    for x in items:
        fn(x)
    rounds_out.append((time.perf_counter() - t) / len(items) * 1e6)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="en_python_docs.txt")
    model_arguments(ap)
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--texts", type=int, default=2000, help="texts per length (a quarter for 1024 bytes)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import sentencepiece as spm

    from viterbisample import Tokenizer, lattice
    from viterbisample.io.sentencepiece import import_sentencepiece
    from viterbisample.kernel_cache import direct_call
    from viterbisample.model import Model

    corpus, _, sha, lines, model_path = corpus_model(args.corpus, args)
    imp = import_sentencepiece(model_path)
    m = imp.tokenizer.model
    # The same pieces and scores with no normalizer of our own: inputs come normalized,
    # so this times the per-call path alone (the normalizer has its own benchmark).
    tok = Tokenizer(Model(m.pieces, m.piece_scores, m.special_tokens))
    sp = spm.SentencePieceProcessor(model_file=str(model_path))

    def same_input(text: str) -> bool:
        return sp.normalize(text) == imp.input_for(text).replace(" ", "\u2581")

    info = machine_info()
    print(f"{corpus.name}: {info['cpu']}, Python {info['python']}, numba {info['numba']}, "
          f"sentencepiece {info['sentencepiece']}")
    a = args.alpha
    engine = tok._engine
    viterbi_model = engine.text_model(lattice.VITERBI)
    sample_model = engine.text_model(a)
    room = lattice.text_room(tok.model.suffix_trie.max_len, 1 << 16)
    encode_text = direct_call(lattice.encode_text, *viterbi_model, b"", 0, 0, 0, *room)
    results = {}
    sentences = [x for x in sample_lines(lines, 0.5, args.seed + 3) if same_input(x)][: args.texts]
    for size in ("lines", *LENGTHS):
        if size == "lines":  # corpus lines as they are
            texts = sentences
        else:
            count = args.texts if size < 1024 else max(1, args.texts // 4)
            texts = texts_of_length(lines, size, count, same_input)
        ours = [imp.input_for(x) for x in texts]
        datas = [x.encode() for x in ours]
        # Same Viterbi ids, before any timing.
        agree = sum(imp.to_spm_ids(tok.encode(x)) == y for x, y in zip(ours, sp.encode(texts)))
        keyed = list(enumerate(ours))
        tasks = {
            "vs_viterbi": (lambda x: tok.encode(x), ours),
            "vs_sample": (lambda x: tok.encode(x, a), ours),
            "vs_sample_keyed": (lambda kx: tok.encode(kx[1], a, 1234, epoch=3, index=kx[0]), keyed),
            "kernel_viterbi": (lambda d: encode_text(*viterbi_model, d, 0, 0, 0, *room), datas),
            "kernel_sample": (lambda d: encode_text(*sample_model, d, 1234, 3, 0, *room), datas),
            "sp_viterbi": (lambda x: sp.encode(x), texts),
            "sp_sample": (lambda x: sp.encode(x, enable_sampling=True, alpha=a, nbest_size=-1), texts),
        }
        for fn, items in tasks.values():  # warm-up: compile or load the kernels
            for x in items[:50]:
                fn(x)
        times: dict[str, list[float]] = {k: [] for k in tasks}
        for _ in range(args.rounds):
            for key, (fn, items) in tasks.items():
                per_call(fn, items, times[key])
        best = {k: min(v) for k, v in times.items()}
        results[size] = {
            "texts": len(texts), "viterbi_agreement": agree,
            "best_us": best, "median_us": {k: statistics.median(v) for k, v in times.items()},
        }
        if size == "lines":
            r = results[size]
            r["mean_bytes"] = sum(len(x.encode()) for x in texts) / len(texts)
        print(f"{size} bytes, {len(texts)} texts ({agree} with SentencePiece's Viterbi ids): "
              + ", ".join(f"{k} {v:.2f}" for k, v in best.items()))

    rows = []
    for size, r in results.items():
        b = r["best_us"]
        rows.append([
            f"lines (mean {r['mean_bytes']:.0f})" if size == "lines" else str(size), f"{b['vs_viterbi']:.2f}", f"{b['sp_viterbi']:.2f}", f"{b['sp_viterbi'] / b['vs_viterbi']:.2f}",
            f"{b['vs_sample']:.2f}", f"{b['vs_sample_keyed']:.2f}", f"{b['sp_sample']:.2f}",
            f"{b['sp_sample'] / b['vs_sample_keyed']:.2f}", f"{b['vs_sample_keyed'] / b['vs_viterbi']:.2f}",
            f"{b['vs_viterbi'] - b['kernel_viterbi']:.2f}", f"{b['vs_sample_keyed'] - b['kernel_sample']:.2f}",
        ])
    table = markdown_table(
        ["bytes", "ours Viterbi", "SP Viterbi", "SP/ours (>= 1.5)", "ours sample", "ours keyed",
         "SP sample", "SP/ours keyed (>= 5)", "keyed/Viterbi (<= 1.3)", "overhead Viterbi",
         "overhead keyed"],
        ["r"] * 11, rows)
    md = [f"# Per-call speed on {corpus.name}", "",
          f"Microseconds per call, best of {args.rounds} rounds; alpha = {a:g}; model: SentencePiece "
          f"Unigram, {args.vocab_size} pieces, imported. Overhead: our call minus `lattice.encode_text` "
          "alone with its arguments prepared.", "", *table, "",
          f"Machine: {info['cpu']}, {info['usable_cpus']} usable CPUs; Python {info['python']}, "
          f"numpy {info['numpy']}, numba {info['numba']}, sentencepiece {info['sentencepiece']}; "
          f"git {info['viterbisample_git']}; load average at start {info['load_average_at_start']}.", ""]
    print("\n".join(md))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"per_call-{corpus.stem}"
    write_atomic(stem.with_suffix(".json"), json.dumps(
        {"corpus": corpus.name, "sha256": sha, "alpha": a, "machine": info, "results": results}, indent=1))
    write_atomic(stem.with_suffix(".md"), "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
