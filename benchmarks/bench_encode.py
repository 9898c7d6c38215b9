"""Encoding throughput: viterbisample against SentencePiece (and Hugging Face tokenizers,
BytePiece) on one vocabulary.

Trains a SentencePiece Unigram model (byte_fallback) on a seeded sample of a shared corpus,
cached in ``benchmarks/.cache``; imports it with ``load_sentencepiece`` so every tokenizer
segments with the same pieces and scores; checks that the Viterbi segmentations agree; then
times each task on one thread (and on all cores), interleaving the tasks round by round and
reporting the best and the median of the rounds (a task shorter than ``--min-task-seconds``
is called several times in a round, timed as the mean).  BytePiece cannot import that model: it
gets its own of the same size, trained on the same sample and cached beside it.  Results go to
``benchmarks/results/encode-<corpus>.json`` and ``.md``.  See ``benchmarks/README.md``.

    python benchmarks/bench_encode.py [--corpus en_python_docs.txt] [--vocab-size 8000]

Throughput is always the UTF-8 bytes of the original corpus lines divided by the time, for
every tokenizer, whatever each one is fed.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Hugging Face tokenizers reads this at each batch call: one thread for its batch encode.
os.environ["TOKENIZERS_PARALLELISM"] = "false"

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPORA = REPO.parent / "shared" / "data" / "corpora"
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
META = "\u2581"

sys.path.insert(0, str(REPO))  # run from a checkout without installing


# -- machine, versions, corpus -----------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version_of(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return getattr(mod, "__version__", "unknown")


def git_state() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+modified" if dirty else "")


def markdown_table(header: list[str], align: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table (``align``: "l" or "r" per column)."""
    rule = ["---" if a == "l" else "---:" for a in align]
    return ["| " + " | ".join(r) + " |" for r in [header, rule] + rows]


def machine_info() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": version_of("numpy"),
        "numba": version_of("numba"),
        "sentencepiece": version_of("sentencepiece"),
        "tokenizers": version_of("tokenizers"),
        "bytepiece": version_of("bytepiece"),
        "viterbisample_git": git_state(),
        "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
        "load_average_at_start": load_average(),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the machine skews the numbers."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def find_corpus(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    path = CORPORA / name
    if not path.is_file():
        have = sorted(p.name for p in CORPORA.glob("*.txt")) if CORPORA.is_dir() else []
        sys.exit(f"corpus {name!r} not found (looked in {CORPORA}); available: {', '.join(have) or 'none'}")
    return path


def sample_lines(lines: list[str], megabytes: float, seed: int) -> list[str]:
    """A seeded random sample of lines totalling about ``megabytes`` MB (all if 0 or more
    than the corpus), in corpus order."""
    if megabytes <= 0:
        return list(lines)
    budget = megabytes * 1e6
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    chosen, total = [], 0
    for k in order:
        if total >= budget:
            break
        chosen.append(k)
        total += len(lines[k].encode("utf-8")) + 1
    return [lines[k] for k in sorted(chosen)]


# -- the SentencePiece model (trained once, cached) ---------------------------------------
def trained_model(corpus: Path, sha: str, lines: list[str], args) -> tuple[Path, float | None]:
    """The cached .model for this corpus and settings; trains it if absent.  Returns the
    path and the training time (None when cached).  Blank lines are dropped first, so
    every caller gets the same sample for the same key (bench_queries.py uses this too).
    """
    lines = [x for x in lines if x]
    key = f"{corpus.stem}-{sha[:16]}-v{args.vocab_size}-t{args.train_mb:g}mb-s{args.seed}"
    model = CACHE / f"{key}.model"
    if model.exists():
        return model, None
    try:
        import sentencepiece as spm
    except ImportError:
        sys.exit(f"no cached model {model.name}: training one needs sentencepiece "
                 "(pip install sentencepiece, or pip install '.[bench]')")

    CACHE.mkdir(parents=True, exist_ok=True)
    tmp_prefix = CACHE / f".{key}.{os.getpid()}"
    sample = Path(f"{tmp_prefix}.txt")
    sample.write_text("\n".join(sample_lines(lines, args.train_mb, args.seed)) + "\n", "utf-8")
    print(f"training a {args.vocab_size}-piece SentencePiece Unigram model on "
          f"{sample.stat().st_size / 1e6:.1f} MB of {corpus.name} (cached afterwards) ...", flush=True)
    t0 = time.perf_counter()
    try:
        spm.SentencePieceTrainer.train(
            input=str(sample), model_prefix=str(tmp_prefix), model_type="unigram",
            vocab_size=args.vocab_size, byte_fallback=True, num_threads=os.cpu_count() or 1,
            input_sentence_size=0, minloglevel=2,
        )
        seconds = time.perf_counter() - t0
        os.replace(f"{tmp_prefix}.model", model)
        os.replace(f"{tmp_prefix}.vocab", CACHE / f"{key}.vocab")
    finally:
        for leftover in (sample, Path(f"{tmp_prefix}.model"), Path(f"{tmp_prefix}.vocab")):
            leftover.unlink(missing_ok=True)
    return model, seconds


def model_arguments(ap) -> None:
    """The options of ``trained_model`` on a parser: the SentencePiece model of a corpus."""
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--train-mb", type=float, default=3.0, help="size of the seeded training sample")
    ap.add_argument("--seed", type=int, default=0)


def corpus_model(name: str, args) -> tuple[Path, bytes, str, list[str], Path]:
    """(path, bytes, sha256, non-blank lines, SentencePiece model) of a shared corpus."""
    corpus = find_corpus(name)
    raw = corpus.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    lines = [x for x in raw.decode("utf-8").split("\n") if x.strip()]
    model, _ = trained_model(corpus, sha, lines, args)
    return corpus, raw, sha, lines, model


def sentencepiece_models(name: str, args, vendored: bool) -> tuple[Path, bytes, list[str], list[tuple[str, Path]]]:
    """(path, bytes, every line, [(label, .model path)]) of a shared corpus: its trained
    SentencePiece model (4000 pieces for en_botchan, too small for more), and with
    ``vendored`` the two SentencePiece test models of ``tests/data``."""
    corpus = find_corpus(name)
    raw = corpus.read_bytes()
    lines = raw.decode("utf-8").split("\n")
    vocab = 4000 if corpus.stem == "en_botchan" else args.vocab_size
    args.vocab_size, saved = vocab, args.vocab_size
    model, _ = trained_model(corpus, hashlib.sha256(raw).hexdigest(), [x for x in lines if x], args)
    args.vocab_size = saved
    models = [(f"{corpus.stem} ({vocab})", model)]
    if vendored:
        models += [(f"{corpus.stem}, {m.stem}", m) for m in sorted((REPO / "tests/data/sp_test_models").glob("*.model"))]
    return corpus, raw, lines, models


# -- peers ---------------------------------------------------------------------------------
def hf_tokenizers(model_path: Path, alpha: float):
    """Two Hugging Face Unigram tokenizers (Viterbi, sampling) over the SentencePiece
    pieces and scores, fed pre-normalized text (spaces written as U+2581)."""
    try:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models
    except ImportError:
        return None
    from viterbisample.io.sentencepiece import UNKNOWN, read_sentencepiece

    info = read_sentencepiece(model_path)
    vocab = [(p.piece.decode("utf-8"), p.score) for p in info.pieces]
    unk = next(i for i, p in enumerate(info.pieces) if p.type == UNKNOWN)
    viterbi = HFTokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=True))
    sampler = HFTokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=True, alpha=alpha))
    return viterbi, sampler


def bytepiece_model(corpus: Path, sha: str, lines: list[str], args):
    """A BytePiece tokenizer of ``args.vocab_size`` pieces trained on the training sample of
    ``trained_model`` (cached in the same way), and its training time (None when cached);
    None and a reason when bytepiece is not usable."""
    try:
        import ahocorasick
        from bytepiece import Tokenizer as BPTokenizer
        from bytepiece import Trainer as BPTrainer
    except ImportError:
        return None, "bytepiece is not installed: skipping it (see benchmarks/README.md)"
    if ahocorasick.unicode:
        return None, "pyahocorasick is built in unicode mode: skipping bytepiece (see README)"
    lines = [x for x in lines if x]
    key = f"{corpus.stem}-{sha[:16]}-v{args.vocab_size}-t{args.train_mb:g}mb-s{args.seed}"
    path = CACHE / f"{key}.bytepiece.json"
    seconds = None
    if not path.exists():
        print(f"training a {args.vocab_size}-piece BytePiece model on the same sample "
              "(cached afterwards) ...", flush=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        sample = sample_lines(lines, args.train_mb, args.seed)
        t0 = time.perf_counter()
        trainer = BPTrainer(order=6, max_vocab_size=args.vocab_size, min_count=2)
        trainer.train(sample, workers=os.cpu_count() or 1)
        seconds = time.perf_counter() - t0
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        trainer.save(str(tmp))
        os.replace(tmp, path)
    return (BPTokenizer(str(path)), seconds), None


# -- start-up in a fresh process -------------------------------------------------------------
_COLD_START = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from viterbisample.io.sentencepiece import load_sentencepiece
t1 = time.perf_counter()
tok = load_sentencepiece(sys.argv[2])
t2 = time.perf_counter()
tok.encode_batch_arrays([" warm up"], num_threads=1)
t3 = time.perf_counter()
tok.encode_batch_arrays([" warm up"], alpha=0.1, num_threads=1)
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load_sentencepiece": t2 - t1,
                  "first_viterbi": t3 - t2, "first_sample": t4 - t3}))
"""


def cold_start(model_path: Path) -> dict:
    """Start-up of a new process: once with an empty Numba cache (so the kernels compile),
    then again with the cache that run wrote (so they load)."""
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        for label in ("empty_numba_cache", "warm_numba_cache"):
            proc = subprocess.run([sys.executable, "-c", _COLD_START, str(REPO), str(model_path)],
                                  env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"start-up measurement failed: {proc.stderr.strip()[-500:]}")
                return out
            out[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# -- timing ----------------------------------------------------------------------------------
def timed(task: dict) -> float:
    """Seconds per call of ``task["fn"]``: the mean of ``task["repeat"]`` calls made back
    to back (each after ``task["before"]``, untimed), the garbage collector collected
    once before them and off while they run."""
    total = 0.0
    gc.collect()
    gc.disable()
    try:
        for _ in range(task["repeat"]):
            if task.get("before"):
                task["before"]()
            t0 = time.perf_counter()
            out = task["fn"]()
            total += time.perf_counter() - t0
            del out
    finally:
        gc.enable()
    return total / task["repeat"]


def run_rounds(tasks: list[dict], rounds: int) -> None:
    """Time every task once per round, rotating the order each round so no task always
    runs first or after the same neighbour."""
    for r in range(rounds):
        shift = r % len(tasks)
        for task in tasks[shift:] + tasks[:shift]:
            task["times"].append(timed(task))
        best = ", ".join(f"{t['key']} {min(t['times']):.2f}s" for t in tasks)
        print(f"round {r + 1}/{rounds}: best so far: {best}", flush=True)


# -- agreement of the Viterbi segmentations --------------------------------------------------
def agreement(label, lines, ours_in, our_ids, their_ids, to_ours, scores, sp) -> dict:
    """Compare a peer's Viterbi ids (SentencePiece id space) with ours, by score and by
    tokens, on the lines SentencePiece's normalizer leaves alone apart from spaces."""
    import numpy as np

    n = same_tokens = mismatches = 0
    worst, examples = 0.0, []
    for k, line in enumerate(lines):
        if sp.normalize(line) != ours_in[k].replace(" ", META):
            continue
        n += 1
        mine = our_ids[k]
        theirs = to_ours[np.asarray(their_ids[k], dtype=np.int64)]
        if np.array_equal(mine, theirs):
            same_tokens += 1
            continue
        diff = float(scores[mine].sum() - scores[theirs].sum())
        if abs(diff) > 1e-6 * (1.0 + abs(float(scores[mine].sum()))):
            mismatches += 1
            if abs(diff) > abs(worst):
                worst = diff
            if len(examples) < 3:
                examples.append({"line": line[:120], "ours_minus_theirs": diff})
    return {
        "peer": label, "lines_compared": n, "lines_skipped_normalization": len(lines) - n,
        "same_tokens": same_tokens, "score_mismatches": mismatches,
        "largest_score_difference": worst, "examples": examples,
    }


# -- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="en_python_docs.txt",
                    help="a file name in ../shared/data/corpora, or a path")
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--train-mb", type=float, default=3.0,
                    help="size of the seeded training sample (0: the whole corpus)")
    ap.add_argument("--bench-mb", type=float, default=0.0,
                    help="size of the seeded sample of lines to encode (0: the whole corpus)")
    ap.add_argument("--rounds", type=int, default=5, help="timed runs of each task")
    ap.add_argument("--min-task-seconds", type=float, default=0.2,
                    help="a task faster than this is called several times per round")
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--samples", type=int, default=8, help="samples per line for sample_batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-peers", action="store_true", help="time viterbisample only")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    corpus = find_corpus(args.corpus)
    raw = corpus.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    all_lines = [x for x in raw.decode("utf-8").split("\n") if x]
    info = machine_info()
    print(f"{corpus.name}: {len(raw) / 1e6:.2f} MB, sha256 {sha}")
    print(f"{info['cpu']}, {info['usable_cpus']} usable CPUs, Python {info['python']}, numpy "
          f"{info['numpy']}, numba {info['numba']}, sentencepiece {info['sentencepiece']}, "
          f"tokenizers {info['tokenizers']}")

    import numpy as np

    from viterbisample import Tokenizer
    from viterbisample.io.sentencepiece import import_sentencepiece
    from viterbisample.model import Model

    try:
        import sentencepiece as spm
    except ImportError:
        spm = None
        print("sentencepiece is not installed: skipping it (pip install sentencepiece); "
              "a cached model is needed")
    model_path, train_seconds = trained_model(corpus, sha, all_lines, args)

    t0 = time.perf_counter()
    imp = import_sentencepiece(model_path)
    load_seconds = time.perf_counter() - t0
    # The imported tokenizer normalizes as SentencePiece does (``normalized`` rows); the
    # other rows time the same pieces and scores on input normalized beforehand.
    normalizing = imp.tokenizer
    m = normalizing.model
    tok = Tokenizer(Model(m.pieces, m.piece_scores, m.special_tokens))

    train_mb = sum(len(x.encode("utf-8")) + 1
                   for x in sample_lines(all_lines, args.train_mb, args.seed)) / 1e6
    lines = sample_lines(all_lines, args.bench_mb, args.seed + 1)
    ours_in = [imp.input_for(x) for x in lines]
    mb = sum(len(x.encode("utf-8")) for x in lines) / 1e6
    print(f"encoding {len(lines):,} lines, {mb:.2f} MB; model {model_path.name} "
          f"({tok.vocab_size} ids)")

    # Warm-up: the first calls compile the Numba kernels (or load them from Numba's cache).
    warm = ours_in[:200]
    first = {}
    for key, fn in [
        ("viterbi", lambda: tok.encode_batch_arrays(warm, num_threads=1)),
        ("sample", lambda: tok.encode_batch_arrays(warm, alpha=args.alpha, num_threads=1)),
        ("sample_n", lambda: tok.sample_batch(warm, args.alpha, args.samples, num_threads=1)),
        ("viterbi_all_cores", lambda: tok.encode_batch_arrays(ours_in[:5000])),
    ]:
        t1 = time.perf_counter()
        fn()
        first[key] = time.perf_counter() - t1
    startup = {
        "sentencepiece_train_seconds": train_seconds,
        "load_sentencepiece_seconds": load_seconds,
        "first_call_seconds": first,
        "new_process": cold_start(model_path),
    }
    print("start-up in this process: load_sentencepiece {:.2f}s, first calls {}".format(
        load_seconds, ", ".join(f"{k} {v:.2f}s" for k, v in first.items())))
    for label, v in startup["new_process"].items():
        print(f"start-up in a new process, {label.replace('_', ' ')}: "
              + ", ".join(f"{k} {x:.2f}s" for k, x in v.items()))

    sp = None if spm is None else spm.SentencePieceProcessor(model_file=str(model_path))
    hf = None if args.no_peers else hf_tokenizers(model_path, args.alpha)
    if hf is None and not args.no_peers:
        print("Hugging Face tokenizers is not installed: skipping it (pip install tokenizers)")
    hf_in = [x.replace(" ", META) for x in ours_in]
    bp = None
    if not args.no_peers:
        got, why = bytepiece_model(corpus, sha, all_lines, args)
        if got is None:
            print(why)
        else:
            bp, startup["bytepiece_train_seconds"] = got

    # Agreement of the Viterbi segmentations, before any timing.
    our_ids = tok.encode_batch(ours_in)
    our_ids = [np.asarray(x, np.int64) for x in our_ids]
    scores = tok.model.scores
    checks = []
    if sp is None:
        print("no agreement check: it needs sentencepiece's normalizer to choose the lines")
    else:
        checks.append(agreement("sentencepiece", lines, ours_in, our_ids, sp.encode(lines),
                                imp.id_of_spm, scores, sp))
    if hf is not None and sp is not None:
        hf_ids = [e.ids for e in hf[0].encode_batch_fast(hf_in)]
        checks.append(agreement("tokenizers", lines, ours_in, our_ids, hf_ids,
                                imp.id_of_spm, scores, sp))
    del our_ids
    for c in checks:
        print(f"Viterbi agreement with {c['peer']}: {c['same_tokens']:,} of "
              f"{c['lines_compared']:,} lines tokenized alike, {c['score_mismatches']} with a "
              f"different score (largest difference {c['largest_score_difference']:.4g}); "
              f"{c['lines_skipped_normalization']:,} lines skipped (NFKC changes them)")

    threads = info["usable_cpus"] or 1
    a, n = args.alpha, args.samples
    tasks = [
        dict(key="vs_viterbi", who="viterbisample", what="Viterbi, `encode_batch_arrays`",
             threads=1, fn=lambda: tok.encode_batch_arrays(ours_in, num_threads=1)),
        dict(key="vs_viterbi_lists", who="viterbisample", what="Viterbi, `encode_batch` (lists)",
             threads=1, fn=lambda: tok.encode_batch(ours_in, num_threads=1)),
        dict(key="vs_viterbi_prep", who="viterbisample",
             what="Viterbi, `encode_batch_arrays` incl. `sentencepiece_input`", threads=1,
             fn=lambda: tok.encode_batch_arrays([imp.input_for(x) for x in lines], num_threads=1)),
        dict(key="vs_viterbi_normalized", who="viterbisample",
             what="Viterbi, `encode_batch_arrays` of the lines, normalized by the imported model", threads=1,
             fn=lambda: normalizing.encode_batch_arrays(lines, num_threads=1)),
        dict(key="vs_sample_normalized", who="viterbisample",
             what=f"sample alpha={a:g}, `encode_batch_arrays` of the lines, normalized by the imported model",
             threads=1, fn=lambda: normalizing.encode_batch_arrays(lines, alpha=a, num_threads=1)),
        dict(key="vs_viterbi_all", who="viterbisample", what="Viterbi, `encode_batch_arrays`",
             threads=threads, fn=lambda: tok.encode_batch_arrays(ours_in)),
        dict(key="vs_viterbi_lists_all", who="viterbisample", what="Viterbi, `encode_batch` (lists)",
             threads=threads, fn=lambda: tok.encode_batch(ours_in)),
        dict(key="vs_sample", who="viterbisample", what=f"sample alpha={a:g}, `encode_batch_arrays`",
             threads=1, fn=lambda: tok.encode_batch_arrays(ours_in, alpha=a, num_threads=1)),
        dict(key="vs_sample_n", who="viterbisample",
             what=f"{n} samples/line alpha={a:g}, `sample_batch`", threads=1,
             fn=lambda: tok.sample_batch(ours_in, a, n, num_threads=1)),
    ]
    if hasattr(tok, "sample_batch_arrays"):
        tasks.append(dict(
            key="vs_sample_n_arrays", who="viterbisample",
            what=f"{n} samples/line alpha={a:g}, `sample_batch_arrays`", threads=1,
            fn=lambda: tok.sample_batch_arrays(ours_in, a, n, num_threads=1)))
    if sp is not None and not args.no_peers:
        tasks += [
            dict(key="sp_viterbi", who="sentencepiece", what="Viterbi, `encode(lines)`",
                 threads=1, fn=lambda: sp.encode(lines, num_threads=1)),
            dict(key="sp_viterbi_all", who="sentencepiece", what="Viterbi, `encode(lines)`",
                 threads=threads, fn=lambda: sp.encode(lines, num_threads=threads)),
            dict(key="sp_sample", who="sentencepiece",
                 what=f"sample alpha={a:g} nbest_size=-1, `encode(lines)`", threads=1,
                 fn=lambda: sp.encode(lines, enable_sampling=True, alpha=a, nbest_size=-1,
                                      num_threads=1)),
        ]
    if hf is not None:
        # Its Unigram model caches the ids of short strings (up to 10,000 of them); clear
        # it before each run so no run reuses the previous run's work.
        tasks += [
            dict(key="hf_viterbi", who="tokenizers", what="Viterbi, `encode_batch_fast`",
                 threads=1, before=hf[0].model._clear_cache,
                 fn=lambda: hf[0].encode_batch_fast(hf_in)),
            dict(key="hf_sample", who="tokenizers",
                 what=f"sample alpha={a:g}, `encode_batch_fast`", threads=1,
                 before=hf[1].model._clear_cache, fn=lambda: hf[1].encode_batch_fast(hf_in)),
        ]
    if bp is not None:
        # Its own vocabulary (same size, same training sample); original lines, one call
        # per line (it has no batch call), normalized (NFC) by itself.
        tasks.append(dict(key="bp_viterbi", who="bytepiece",
                          what=f"Viterbi, `encode(line)`, own {bp.vocab_size}-id model",
                          threads=1, fn=lambda: [bp.encode(x) for x in lines]))
    for task in tasks:
        task["times"] = []
        task["repeat"] = 1
        warm = timed(task)  # warm: allocators, caches, peers' lazy set-up
        # A call of a few milliseconds, timed once, measures mostly what ran before it
        # (caches, sleeping threads): such calls are repeated within a round.
        task["repeat"] = max(1, min(100, math.ceil(args.min_task_seconds / max(warm, 1e-9))))
    run_rounds(tasks, args.rounds)

    rows = {}
    for t in tasks:
        best, median = min(t["times"]), statistics.median(t["times"])
        rows[t["key"]] = {
            "tokenizer": t["who"], "task": t["what"], "threads": t["threads"],
            "best_seconds": best, "median_seconds": median,
            "best_mb_per_s": mb / best, "median_mb_per_s": mb / median, "times": t["times"],
            "calls_per_round": t["repeat"],
        }

    def ratio(a_key, b_key):
        if a_key in rows and b_key in rows:
            return {"best": rows[a_key]["best_mb_per_s"] / rows[b_key]["best_mb_per_s"],
                    "median": rows[a_key]["median_mb_per_s"] / rows[b_key]["median_mb_per_s"]}
        return None

    ratios = {
        "vs sampling / vs Viterbi": ratio("vs_sample", "vs_viterbi"),
        f"vs {n} samples / vs Viterbi (input MB/s)": ratio("vs_sample_n", "vs_viterbi"),
        f"vs Viterbi {threads} threads / 1 thread": ratio("vs_viterbi_all", "vs_viterbi"),
        f"vs Viterbi (lists) {threads} threads / 1 thread": ratio("vs_viterbi_lists_all", "vs_viterbi_lists"),
        "vs Viterbi / sentencepiece Viterbi": ratio("vs_viterbi", "sp_viterbi"),
        "vs Viterbi (lists) / sentencepiece Viterbi": ratio("vs_viterbi_lists", "sp_viterbi"),
        f"vs Viterbi / sentencepiece Viterbi, {threads} threads": ratio("vs_viterbi_all", "sp_viterbi_all"),
        "vs sampling / sentencepiece sampling": ratio("vs_sample", "sp_sample"),
        "sentencepiece sampling / sentencepiece Viterbi": ratio("sp_sample", "sp_viterbi"),
        "vs Viterbi / tokenizers Viterbi": ratio("vs_viterbi", "hf_viterbi"),
        "vs sampling / tokenizers sampling": ratio("vs_sample", "hf_sample"),
        "vs Viterbi / bytepiece Viterbi (its own vocabulary)": ratio("vs_viterbi", "bp_viterbi"),
    }
    ratios = {k: v for k, v in ratios.items() if v is not None}
    scaled = lambda v, f: {k: x * f for k, x in v.items()}  # noqa: E731
    if "vs_sample_n" in rows:
        # sample_batch draws n segmentations of each line: n times the text per second.
        ratios[f"vs {n} samples, sampled MB/s / vs Viterbi"] = scaled(
            ratio("vs_sample_n", "vs_viterbi"), n)
    if "vs_sample_n_arrays" in rows:
        ratios[f"vs {n} samples (arrays), sampled MB/s / vs Viterbi"] = scaled(
            ratio("vs_sample_n_arrays", "vs_viterbi"), n)
    if "vs_sample_n" in rows and "sp_sample" in rows:
        # SentencePiece has no n-samples call: n sampled passes, estimated as n times one.
        for key, label in (("vs_sample_n", ""), ("vs_sample_n_arrays", " (arrays)")):
            if key in rows:
                ratios[f"vs {n} samples{label} / sentencepiece {n} sampled passes "
                       "(n x one pass)"] = scaled(ratio(key, "sp_sample"), n)

    result = {
        "benchmark": "encode",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python benchmarks/bench_encode.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": info,
        "corpus": {"file": corpus.name, "bytes": len(raw), "sha256": sha,
                   "lines_encoded": len(lines), "mb_encoded": mb,
                   "bench_sample_mb": args.bench_mb, "seed": args.seed},
        "model": {"file": model_path.name, "vocab_size": args.vocab_size,
                  "viterbisample_ids": tok.vocab_size, "train_sample_mb_asked": args.train_mb,
                  "train_sample_mb": train_mb, "byte_fallback": True},
        "settings": {"rounds": args.rounds, "alpha": a, "samples": n,
                     "min_task_seconds": args.min_task_seconds},
        "startup": startup,
        "viterbi_agreement": checks,
        "rows": rows,
        "ratios": ratios,
        "load_average_at_end": load_average(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"encode-{corpus.stem}"
    md = markdown(result)
    write_atomic(args.out / f"{stem}.json", json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    write_atomic(args.out / f"{stem}.md", md)
    print()
    print(md)
    print(f"wrote {args.out / stem}.json and .md")
    return 0


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def publish(folder: Path, stem: str, md: list[str], record: dict) -> None:
    """Print the Markdown report and write it and the JSON ``record`` as
    ``folder/stem.{md,json}``."""
    print("\n".join(md))
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"{stem}.json", json.dumps(record, indent=1))
    write_atomic(folder / f"{stem}.md", "\n".join(md))


def markdown(r: dict) -> str:
    m, c, s = r["machine"], r["corpus"], r["settings"]
    out = [
        f"# Encoding throughput on {c['file']}",
        "",
        f"{c['mb_encoded']:.2f} MB in {c['lines_encoded']:,} lines (corpus sha256 "
        f"`{c['sha256'][:16]}…`), vocabulary of {r['model']['vocab_size']} pieces trained by "
        f"SentencePiece (Unigram, byte_fallback) on a {r['model']['train_sample_mb']:.1f} MB sample. "
        f"MB/s = UTF-8 bytes of the corpus lines / seconds; best and median of "
        f"{s['rounds']} interleaved rounds; in each, a task is called back to back as many "
        f"times as it takes to reach {s.get('min_task_seconds', 0):g} s (at most 100; the "
        f"calls column) and timed as the mean.",
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs; Python {m['python']}, numpy "
        f"{m['numpy']}, numba {m['numba']}, sentencepiece {m['sentencepiece'] or 'absent'}, "
        f"tokenizers {m['tokenizers'] or 'absent'}, bytepiece {m.get('bytepiece') or 'absent'}; "
        f"viterbisample {m['viterbisample_git']}. "
        f"{r['date_utc']}. Load average (1, 5, 15 min) {m['load_average_at_start']} at the "
        f"start, {r['load_average_at_end']} at the end.",
        "",
        "| tokenizer | task | threads | calls | best MB/s | median MB/s |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in r["rows"].values():
        out.append(f"| {row['tokenizer']} | {row['task']} | {row['threads']} | "
                   f"{row.get('calls_per_round', 1)} | "
                   f"{row['best_mb_per_s']:.2f} | {row['median_mb_per_s']:.2f} |")
    out += ["", "| ratio (vs = viterbisample) | best | median |", "| --- | ---: | ---: |"]
    for name, v in r["ratios"].items():
        out.append(f"| {name} | {v['best']:.2f} | {v['median']:.2f} |")
    st = r["startup"]
    first = ", ".join(f"{k} {v:.2f} s" for k, v in st["first_call_seconds"].items())
    trained = st["sentencepiece_train_seconds"]
    out += ["", "Start-up, not in the table above (seconds):", "",
            "| process | import | `load_sentencepiece` | first Viterbi call | first sampling call |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for label, v in st["new_process"].items():
        out.append(f"| new, {label.replace('_', ' ')} | {v['import']:.2f} | "
                   f"{v['load_sentencepiece']:.2f} | {v['first_viterbi']:.2f} | {v['first_sample']:.2f} |")
    out += [
        "",
        f"In the benchmark process (Numba cache warm): `load_sentencepiece` "
        f"{st['load_sentencepiece_seconds']:.2f} s, first calls on 200 lines {first}"
        + (f"; SentencePiece training {trained:.0f} s." if trained else "; SentencePiece model from the cache."),
        "",
    ]
    if "bytepiece_train_seconds" in st:
        bp_seconds = st["bytepiece_train_seconds"]
        out += ["BytePiece cannot read the SentencePiece model: its row uses its own model of "
                "the same size, trained (order=6, min_count=2) on the same sample"
                + (f" in {bp_seconds:.0f} s." if bp_seconds else ", from the cache."), ""]
    for a in r["viterbi_agreement"]:
        out.append(
            f"Viterbi agreement with {a['peer']}: {a['same_tokens']:,} of {a['lines_compared']:,} "
            f"lines tokenized alike, {a['score_mismatches']} with a different score (largest "
            f"difference {a['largest_score_difference']:.4g}); {a['lines_skipped_normalization']:,} "
            "lines skipped because SentencePiece's NFKC normalization changes them."
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
