"""A PyTorch ``DataLoader`` with subword regularization: items per second.

The README's recipe, run: a ``Dataset`` of corpus lines whose ``__getitem__`` calls
``SubwordRegularization`` (alpha calibrated for +10% tokens on 1000 lines), ``collate_fn``
its ``collate`` (eos added, truncated to 512, padded, NumPy arrays), batches of 32, with 0
and 2 workers (fork and spawn).  Reports items per second over one epoch after a warm-up
epoch, and checks that every configuration gives the same batches.

    pip install torch    # not a dependency of viterbisample; only this benchmark needs it
    python benchmarks/bench_loader.py [--corpus en_python_docs.txt] [--lines 50000]

Needs the shared corpora at ``../shared/data/corpora`` (or ``--corpus PATH``).
Results: ``benchmarks/results/loader-<corpus>.{json,md}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from bench_encode import RESULTS, find_corpus, machine_info, markdown_table, version_of, write_atomic


class Lines:
    """A map-style dataset of texts, sampled by ``sr`` (a torch Dataset by duck typing)."""

    def __init__(self, texts, sr):
        self.texts, self.sr = texts, sr

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, i):
        return self.sr(self.texts[i], i)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="en_python_docs.txt")
    ap.add_argument("--lines", type=int, default=50000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from viterbisample import SubwordRegularization, Tokenizer

    corpus = find_corpus(args.corpus)
    raw = corpus.read_bytes()
    texts = [x for x in raw.decode("utf-8").split("\n") if x.strip()][: args.lines]
    tok = Tokenizer.default()
    sr = SubwordRegularization(tok, extra_tokens=0.1, calibration_texts=texts[:1000], seed=1234,
                               add_eos=True, max_length=512, truncation=True)
    info = machine_info()
    info["torch"] = version_of("torch")
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"{len(texts):,} lines ({mb:.1f} MB) of {corpus.name}; alpha {sr.alpha:.3f}; torch {info['torch']}")
    results, reference = {}, None
    for workers, method in [(0, None), (2, "fork"), (2, "spawn")]:
        ds = Lines(texts, sr)
        loader = DataLoader(ds, batch_size=args.batch_size, num_workers=workers, collate_fn=sr.collate,
                            multiprocessing_context=method, persistent_workers=False)
        sr.set_epoch(0)
        for _ in loader:  # warm-up epoch: worker start, kernels loaded from the cache
            pass
        sr.set_epoch(1)
        t = time.perf_counter()
        digest = hashlib.sha256()
        tokens = 0
        first = None
        for batch in loader:
            if first is None:  # the workers of this epoch have started
                first = time.perf_counter()
            digest.update(np.ascontiguousarray(batch["input_ids"]).tobytes())
            tokens += int(batch["attention_mask"].sum())
        end = time.perf_counter()
        key = f"{workers} workers" + (f" ({method})" if method else "")
        results[key] = {
            "items_per_second": len(texts) / (end - t), "seconds": end - t, "first_batch_seconds": first - t,
            "items_per_second_after_first_batch": (len(texts) - args.batch_size) / (end - first),
            "tokens": tokens, "sha256_of_batches": digest.hexdigest(),
        }
        reference = reference or digest.hexdigest()
        r = results[key]
        print(f"{key}: {r['items_per_second']:,.0f} items/s over the epoch, first batch after "
              f"{r['first_batch_seconds']:.2f} s, then {r['items_per_second_after_first_batch']:,.0f} items/s; "
              f"{tokens:,} tokens, batches {'identical' if digest.hexdigest() == reference else 'DIFFERENT'}")
    rows = [[k, f"{r['items_per_second']:,.0f}", f"{r['first_batch_seconds']:.2f}",
             f"{r['items_per_second_after_first_batch']:,.0f}",
             "yes" if r["sha256_of_batches"] == reference else "no"] for k, r in results.items()]
    md = [f"# DataLoader with SubwordRegularization on {corpus.name}", "",
          f"{len(texts):,} lines ({mb:.1f} MB), batches of {args.batch_size}, alpha {sr.alpha:.3f} (+10% tokens), "
          "eos added, truncated to 512, padded NumPy arrays; one epoch after a warm-up epoch.", "",
          *markdown_table(["workers", "items/s, whole epoch", "first batch (s)", "items/s after it",
                           "same batches as 0 workers"], ["l", "r", "r", "r", "l"], rows),
          "", "Workers are started anew each epoch (the DataLoader default), so the first batch waits for "
          "their start: importing torch and viterbisample and loading the cached kernels, which spawn pays "
          "in full.",
          "", f"Machine: {info['cpu']}, {info['usable_cpus']} usable CPUs; Python {info['python']}, numba "
          f"{info['numba']}, torch {info['torch']}; git {info['viterbisample_git']}.", ""]
    print("\n".join(md))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"loader-{corpus.stem}"
    write_atomic(stem.with_suffix(".json"), json.dumps({"corpus": corpus.name, "machine": info,
                                                        "results": results}, indent=1))
    write_atomic(stem.with_suffix(".md"), "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
