"""Hugging Face tokenizer.json files of SentencePiece models: the same ids as ``tokenizers``
on every line of every shared corpus, and the time of both.

For each corpus, the SentencePiece model of ``bench_encode.py`` (trained once on the
corpus, cached in ``benchmarks/.cache``; ``nmt_nfkc``, ``byte_fallback``) and, with
``--vendored``, the two models in ``tests/data``, converted by transformers' converters:
``spm`` (``SpmConverter.build_tokenizer_from_spm_proto``: SentencePiece's pipeline, one word
per text), ``t5`` (Metaspace splitting words, ``always``) and ``t5-first`` (the same with
``legacy=False``: ``prepend_scheme: first``).  ``Tokenizer.load(path)`` against
``tokenizers.Tokenizer.from_file(path)``, both given the raw corpus lines: every line's ids
are compared (the bar is 0 lines differing); then both are timed on one thread
(``RAYON_NUM_THREADS=1``; ``tokenizers`` reloaded each round, so that its word cache starts
empty as ours has none), in interleaved rounds, normalization and pre-tokenization included.

    python benchmarks/bench_huggingface_ids.py [--corpus NAME ...] [--vendored]

Needs the shared corpora at ``../shared/data/corpora`` (put the corpus files there, or
pass paths), sentencepiece, tokenizers, transformers and protobuf.  Results:
``benchmarks/results/huggingface_ids.{json,md}``.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # before tokenizers starts its thread pool

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

from bench_encode import RESULTS, machine_info, markdown_table, model_arguments, publish, sentencepiece_models  # noqa: E402

CORPUS_NAMES = ["en_python_docs.txt", "code_python_stdlib.txt", "ja_wagahaiwa_nekodearu.txt", "zh_fortunes.txt",
                "zh_debian_reference.txt", "en_botchan.txt"]
CONVERSIONS = ["spm", "t5", "t5-first"]


def converted(model: Path, how: str, out: Path) -> Path:
    """transformers' conversion of a .model file, written to ``out``."""
    import transformers.convert_slow_tokenizer as cst

    proto = cst.import_protobuf().ModelProto()
    proto.ParseFromString(model.read_bytes())
    if how == "spm":
        hf = cst.SpmConverter.build_tokenizer_from_spm_proto(proto, [(p.piece, p.score) for p in proto.pieces])
    else:
        names = [p.piece for p in proto.pieces]
        stub = types.SimpleNamespace(vocab_file=str(model), add_prefix_space=True, legacy=how == "t5", _extra_ids=0,
                                     convert_tokens_to_ids=lambda t: names.index(t) if t in names else 0)
        hf = cst.T5Converter(stub).converted()
    hf.save(str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", nargs="*", default=CORPUS_NAMES)
    model_arguments(ap)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vendored", action="store_true", help="also the models in tests/data/sp_test_models")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import tokenizers
    import transformers

    from viterbisample import Tokenizer

    info = machine_info()
    info["tokenizers"], info["transformers"] = tokenizers.__version__, transformers.__version__
    rows, results = [], []
    folder = Path(tempfile.mkdtemp(prefix="bench_hf_"))
    for name in args.corpus:
        corpus, raw, lines, models = sentencepiece_models(name, args, args.vendored)
        for label, path in models:
            for how in CONVERSIONS:
                file = converted(path, how, folder / f"{how}.json")
                tok = Tokenizer.load(file)
                hf = tokenizers.Tokenizer.from_file(str(file))
                ours = tok.encode_batch(lines)
                theirs = [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)]
                differ = sum(a != b for a, b in zip(ours, theirs))
                times = {"ours": [], "hf": []}
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    tok.encode_batch(lines, num_threads=1)
                    times["ours"].append(time.perf_counter() - t)
                    hf = tokenizers.Tokenizer.from_file(str(file))  # an empty cache
                    t = time.perf_counter()
                    hf.encode_batch(lines, add_special_tokens=False)
                    times["hf"].append(time.perf_counter() - t)
                mb = len(raw) / 1e6
                r = {"model": label, "conversion": how, "lines": len(lines), "lines_differing": differ,
                     "ours_mb_s": mb / min(times["ours"]), "hf_mb_s": mb / min(times["hf"]),
                     "ours_median_mb_s": mb / statistics.median(times["ours"]),
                     "hf_median_mb_s": mb / statistics.median(times["hf"])}
                results.append(r)
                rows.append([label, how, f"{len(lines):,}", str(differ), f"{r['ours_mb_s']:.2f}", f"{r['hf_mb_s']:.2f}",
                             f"{r['ours_mb_s'] / r['hf_mb_s']:.2f}"])
                print(" | ".join(rows[-1]), flush=True)
    md = ["# Hugging Face tokenizer.json of SentencePiece models: ids against tokenizers", "",
          "Raw corpus lines to both (normalization and pre-tokenization included); Viterbi, one thread "
          f"(RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS')}), best of {args.rounds} rounds; tokenizers "
          "reloaded each round (empty word cache).  Conversions: spm = SpmConverter.build_tokenizer_from_spm_proto, "
          "t5 = T5Converter (Metaspace split, always), t5-first = T5Converter with legacy=False.", "",
          *markdown_table(["model", "conversion", "lines", "lines with other ids", "viterbisample MB/s",
                           "tokenizers MB/s", "ratio"], ["l", "l", "r", "r", "r", "r", "r"], rows), "",
          f"Machine: {info['cpu']}, {info['usable_cpus']} usable CPUs; Python {info['python']}, numba "
          f"{info['numba']}, tokenizers {info['tokenizers']}, transformers {info['transformers']}, sentencepiece "
          f"{info.get('sentencepiece')}; git {info.get('viterbisample_git')}.", ""]
    publish(args.out, "huggingface_ids", md, {"machine": info, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
