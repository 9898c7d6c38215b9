"""Vocabulary training, quality and cost: viterbisample's trainer against SentencePiece
(unigram), Hugging Face tokenizers (UnigramTrainer) and BytePiece.

    python benchmarks/bench_train.py                  # six corpora x 2 sizes x 4 trainers (long)
    python benchmarks/bench_train.py --corpora en_botchan.txt --sizes 8000
    python benchmarks/bench_train.py --peers sentencepiece --vs-option split=whitespace --name train-ws

Every trainer learns a vocabulary of the requested size from the same training split of a
corpus and is scored on the same held-out split:

* the split: the corpus lines (split on ``\\n``, a final empty line dropped) in
  consecutive blocks of 10 lines; every 10th block (block index % 10 == 9) is held out,
  the rest is the training text.  Both files are written once to ``benchmarks/.cache/``,
  keyed by the corpus SHA-256, and every trainer reads the same training file;
* each training runs in a fresh subprocess (``--worker``), with 2 threads for everyone.
  The worker imports the library, then times the training call alone (for viterbisample
  that includes loading its Numba kernels from Numba's cache, which a warm-up run fills
  first), then reads its peak resident memory (VmHWM, see ``peak_rss_mb``), so the peak
  is that training's own;
* quality: held-out UTF-8 bytes per token, the bytes of the original held-out lines over
  the tokens of those lines, each line encoded on its own, every token counted (unknown
  tokens too).  Higher is better.

A failed training (an exception, a crash, the timeout) is recorded with its error text and
the run goes on.  Results: ``benchmarks/results/train.json`` (every number, the machine,
the versions, the corpus hashes) and ``train.md`` (the table).  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_encode as harness  # noqa: E402  (machine info, versions, corpus look-up)

CACHE = harness.CACHE
SPLITS = CACHE / "train-splits"
MODELS = CACHE / "train-models"
LOGS = CACHE / "train-logs"
RUNS = CACHE / "train-runs"

BLOCK_LINES = 10  # lines per block
HELD_OUT_EVERY = 10  # block k is held out when k % 10 == 9
SPLIT_RULE = ("lines split on \\n (a final empty line dropped), in consecutive blocks of "
              f"{BLOCK_LINES} lines; block k is held out when k % {HELD_OUT_EVERY} == "
              f"{HELD_OUT_EVERY - 1}, the others are the training text")
TRAINERS = ("viterbisample", "sentencepiece", "tokenizers", "bytepiece")
PEERS = TRAINERS[1:]
SHORT = {"viterbisample": "vs", "sentencepiece": "sp", "tokenizers": "hf", "bytepiece": "bp"}
# BytePiece's Trainer: its signature defaults (its README: "keep the default order=6";
# min_count may be raised for large data).  workers is its training-processes option.
BYTEPIECE_SETTINGS = {"order": 6, "min_count": 2, "max_piece_length": 36,
                      "isolate_digits": False, "ensure_unicode": True, "batch_size": 1000}
SP_MAX_SENTENCE_BYTES = 4192  # SentencePiece's default max_sentence_length


# -- the split --------------------------------------------------------------------------------
def split_corpus(corpus: Path) -> dict:
    """Write (once) the training and held-out files of ``corpus``; return their paths and
    sizes.  Deterministic: the rule is SPLIT_RULE, the files are keyed by the SHA-256."""
    raw = corpus.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    parts: dict[str, list[bytes]] = {"train": [], "heldout": []}
    for k, line in enumerate(lines):
        held = (k // BLOCK_LINES) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
        parts["heldout" if held else "train"].append(line)
    stem = f"{corpus.stem}-{sha[:16]}"
    SPLITS.mkdir(parents=True, exist_ok=True)
    files = {}
    for part, chosen in parts.items():
        path = SPLITS / f"{stem}.{part}.txt"
        if not path.exists():
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_bytes(b"".join(x + b"\n" for x in chosen))
            os.replace(tmp, path)
        files[part] = path
    return {
        "file": corpus.name, "stem": stem, "sha256": sha, "bytes": len(raw), "lines": len(lines),
        "train_file": repo_relative(files["train"]), "train_lines": len(parts["train"]),
        "train_bytes": files["train"].stat().st_size,
        "heldout_file": repo_relative(files["heldout"]), "heldout_lines": len(parts["heldout"]),
        "heldout_line_bytes": sum(len(x) for x in parts["heldout"]),
        # SentencePiece skips training lines longer than its max_sentence_length.
        "train_lines_over_sentencepiece_max_sentence_length": sum(
            len(x) > SP_MAX_SENTENCE_BYTES for x in parts["train"]),
        "train_bytes_in_those_lines": sum(
            len(x) for x in parts["train"] if len(x) > SP_MAX_SENTENCE_BYTES),
    }


def repo_relative(path: Path) -> str:
    """For the results: no machine paths in files kept in the repository."""
    try:
        return str(path.relative_to(harness.REPO))
    except ValueError:
        return str(path)


# -- the worker: one training in a fresh process ----------------------------------------------
# Each trainer is a function that imports its library (before the clock) and returns
# fit() -> trained object, and measure(trained, held-out lines as bytes) -> counts.
def vs_trainer(spec: dict):
    from viterbisample import train  # Numba loads the kernels at their first call, in fit()

    def fit():
        return train([Path(spec["train_file"])], spec["vocab_size"], num_threads=spec["threads"],
                     **spec["vs_options"])

    def measure(tok, lines):
        ids, _ = tok.encode_batch_arrays(lines, num_threads=spec["threads"])
        tok.save(spec["model_prefix"] + ".vsm")
        return {"vocab_size_reached": tok.vocab_size, "heldout_tokens": int(len(ids)),
                "unk_tokens": None}  # byte pieces always: nothing is unknown

    return fit, measure


def sp_trainer(spec: dict):
    import sentencepiece as spm

    prefix = spec["model_prefix"]

    def fit():
        spm.SentencePieceTrainer.train(input=spec["train_file"], model_type="unigram",
                                       vocab_size=spec["vocab_size"],
                                       num_threads=spec["threads"], model_prefix=prefix)

    def measure(_, lines):
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        rows = sp.encode([x.decode("utf-8") for x in lines])
        unk = sp.unk_id()
        return {"vocab_size_reached": sp.get_piece_size(),
                "heldout_tokens": sum(len(r) for r in rows),
                "unk_tokens": sum(r.count(unk) for r in rows)}

    return fit, measure


def hf_trainer(spec: dict):
    # The set-up of tokenizers' own SentencePieceUnigramTokenizer (implementations/
    # sentencepiece_unigram.py): Nmt + NFKC + runs of spaces collapsed, Metaspace.
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, trainers
    from tokenizers.models import Unigram

    def fit():
        tok = Tokenizer(Unigram())
        tok.normalizer = normalizers.Sequence(
            [normalizers.Nmt(), normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=spec["vocab_size"],
                                          special_tokens=["<unk>"], unk_token="<unk>")
        tok.train([spec["train_file"]], trainer=trainer)
        return tok

    def measure(tok, lines):
        rows = [e.ids for e in tok.encode_batch([x.decode("utf-8") for x in lines])]
        tok.save(spec["model_prefix"] + ".json")
        unk = tok.token_to_id("<unk>")
        return {"vocab_size_reached": tok.get_vocab_size(),
                "heldout_tokens": sum(len(r) for r in rows),
                "unk_tokens": sum(r.count(unk) for r in rows)}

    return fit, measure


class _FileLines:
    """The lines of a UTF-8 file as str, read anew at each iteration: BytePiece reads its
    corpus twice, so it takes an iterable, not a generator."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __iter__(self):
        with open(self.path, encoding="utf-8", newline="\n") as f:
            for line in f:
                yield line.rstrip("\n")


def bp_trainer(spec: dict):
    import ahocorasick
    from bytepiece import Tokenizer, Trainer

    if ahocorasick.unicode:
        raise RuntimeError("pyahocorasick is built in unicode mode; BytePiece needs it in "
                           "bytes mode (see benchmarks/README.md)")
    settings = dict(BYTEPIECE_SETTINGS)
    batch_size = settings.pop("batch_size")

    def fit():
        trainer = Trainer(max_vocab_size=spec["vocab_size"], **settings)
        trainer.train(_FileLines(spec["train_file"]), workers=spec["threads"],
                      batch_size=batch_size)
        return trainer

    def measure(trainer, lines):
        trainer.save(spec["model_prefix"] + ".json")
        tok = Tokenizer(trainer.dump(trainer.pieces[0]))
        return {"vocab_size_reached": tok.vocab_size,
                "heldout_tokens": sum(len(tok.tokenize(x.decode("utf-8"))) for x in lines),
                "unk_tokens": None}  # byte pieces always: nothing is unknown

    return fit, measure


WORKER_TRAINERS = {"viterbisample": vs_trainer, "sentencepiece": sp_trainer,
                   "tokenizers": hf_trainer, "bytepiece": bp_trainer}


def ru_maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss * 1024 / 1e6  # Linux: KiB


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB.  On Linux, VmHWM of /proc/self/status: the
    high-water mark of this process's own address space.  ru_maxrss is not that in a child
    started by fork + exec: Linux carries the forked image's high-water mark over the exec,
    so it starts at the parent's resident size (over 100 MB here, with the peers imported
    in the parent).  Elsewhere, ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return ru_maxrss_mb()


def short_error(exc: BaseException) -> str:
    """The message on one line, without SentencePiece's source-location prefix."""
    text = f"{type(exc).__name__}: " + " ".join(str(exc).split())
    text = re.sub(r"(?<=: )[A-Za-z]+: \S+\.cc\(\d+\) \[.*?\] ", "", text)
    return (text[:300] + "…") if len(text) > 300 else text


def worker(spec_json: str) -> int:
    """Runs in the subprocess: imports, times fit(), reads the peak RSS, evaluates."""
    spec = json.loads(spec_json)
    out: dict = {}
    try:
        fit, measure = WORKER_TRAINERS[spec["trainer"]](spec)
        out["rss_after_imports_mb"] = peak_rss_mb()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            trained = fit()
            out["train_seconds"] = time.perf_counter() - t0
        out["peak_rss_mb"] = peak_rss_mb()
        out["ru_maxrss_mb"] = ru_maxrss_mb()  # see peak_rss_mb: includes the parent's size
        # The largest child waited for (BytePiece's training processes, forked from this
        # one, so pages shared with it count in both).
        out["peak_rss_children_mb"] = ru_maxrss_mb(resource.RUSAGE_CHILDREN)
        out["warnings"] = [short_error(w.message) for w in caught]
        raw = Path(spec["heldout_file"]).read_bytes().split(b"\n")
        lines = raw[:-1] if raw and raw[-1] == b"" else raw
        t0 = time.perf_counter()
        out.update(measure(trained, lines))
        out["eval_seconds"] = time.perf_counter() - t0
        out["heldout_bytes"] = sum(len(x) for x in lines)
        out["bytes_per_token"] = out["heldout_bytes"] / max(out["heldout_tokens"], 1)
    except Exception as exc:  # recorded, the benchmark goes on
        detail = " ".join(str(exc).split())[:1000]
        out = {"error": short_error(exc), "error_detail": detail,
               **{k: v for k, v in out.items() if "rss" in k}}
    harness.write_atomic(Path(spec["result"]), json.dumps(out))
    return 0


# -- the parent: one subprocess per training ---------------------------------------------------
def worker_env(threads: int) -> dict:
    env = dict(os.environ)
    env["RAYON_NUM_THREADS"] = str(threads)  # Hugging Face tokenizers' thread pool
    env["TOKENIZERS_PARALLELISM"] = "true"  # bench_encode sets it to false on import
    env["TQDM_DISABLE"] = "1"  # BytePiece's progress bars
    return env


def run_training(trainer: str, split: dict, vocab_size: int, args, key: str | None = None) -> dict:
    key = key or f"{split['stem']}-v{vocab_size}-{trainer}"
    for d in (MODELS, LOGS, RUNS):
        d.mkdir(parents=True, exist_ok=True)
    result = RUNS / f"{key}.{os.getpid()}.json"
    result.unlink(missing_ok=True)
    spec = {"trainer": trainer, "vocab_size": vocab_size, "threads": args.threads,
            "train_file": str(harness.REPO / split["train_file"]),
            "heldout_file": str(harness.REPO / split["heldout_file"]),
            "vs_options": args.vs_options, "model_prefix": str(MODELS / key), "result": str(result)}
    t0 = time.perf_counter()
    with open(LOGS / f"{key}.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker",
                                 json.dumps(spec)], stdout=log, stderr=subprocess.STDOUT,
                                env=worker_env(args.threads), start_new_session=True)
        try:
            code = proc.wait(timeout=args.timeout)
        except BaseException as exc:  # the timeout, or Ctrl-C (the worker has its own session)
            os.killpg(proc.pid, signal.SIGKILL)  # its process group: BytePiece's pool too
            proc.wait()
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
            return {"error": f"timeout after {args.timeout:g} s",
                    "wall_seconds": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    if result.exists():
        out = json.loads(result.read_text("utf-8"))
        result.unlink()
    else:
        tail = [x for x in (LOGS / f"{key}.log").read_text("utf-8", "replace").splitlines() if x.strip()]
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        out = {"error": f"worker {how}" + (f": {tail[-1][:200]}" if tail else "")}
    out["wall_seconds"] = wall  # the whole subprocess: start-up, imports, training, evaluation
    return out


def numba_warmup(split: dict, args) -> dict:
    """A small viterbisample training, so that Numba's on-disk cache holds the kernels and
    every timed training loads them instead of compiling them."""
    lines = Path(split["train_file"]).read_bytes().split(b"\n")[:3000]
    path = SPLITS / "numba-warmup.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    tiny = dict(split, train_file=repo_relative(path))
    out = run_training("viterbisample", tiny, 600, args, key="numba-warmup")
    print("numba warm-up (small viterbisample training): "
          + (f"error {out['error']}" if "error" in out else f"{out['train_seconds']:.1f} s"), flush=True)
    return out


def parse_option(text: str) -> tuple[str, object]:
    """key=value; the value as JSON when it parses (numbers, true/false, null), else a str."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def available(trainer: str) -> str | None:
    """None if the trainer's library imports, else why not."""
    try:
        __import__(trainer)  # each trainer's module has its name
    except ImportError as exc:
        return f"not installed ({exc})"
    return None


def versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("pyahocorasick", "tqdm"):  # bytepiece's: not in machine_info
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", nargs="+", metavar="NAME",
                    help="files in ../shared/data/corpora (or paths); default: every .txt there")
    ap.add_argument("--sizes", nargs="+", type=int, default=[8000, 32000], metavar="N",
                    help="vocabulary sizes (default: 8000 32000)")
    ap.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS),
                    help="peers to train besides viterbisample (none: --peers alone)")
    ap.add_argument("--vs-option", action="append", type=parse_option, default=[],
                    metavar="KEY=VALUE", help="passed to viterbisample.train, e.g. split=whitespace")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per training")
    ap.add_argument("--name", default="train", help="result file stem (default: train)")
    ap.add_argument("--out", type=Path, default=harness.RESULTS)
    args = ap.parse_args(argv)
    args.vs_options = dict(args.vs_option)

    names = args.corpora or sorted(p.name for p in harness.CORPORA.glob("*.txt"))
    corpora = [harness.find_corpus(n) for n in names]
    trainers, skipped = [], {}
    for t in ("viterbisample", *args.peers):
        why = available(t)
        if why:
            print(f"skipping {t}: {why}")
            skipped[t] = why
        else:
            trainers.append(t)

    info = harness.machine_info()
    info.update(versions())
    print(f"{info['cpu']}, {info['usable_cpus']} usable CPUs, load {info['load_average_at_start']}; "
          f"trainers {', '.join(trainers)}; sizes {args.sizes}; {args.threads} threads; "
          f"viterbisample options {args.vs_options or 'defaults'}", flush=True)

    result = {
        "benchmark": "train",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python benchmarks/bench_train.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": info,
        "settings": {
            "split": SPLIT_RULE, "sizes": args.sizes, "trainers": trainers, "skipped": skipped,
            "threads": args.threads, "timeout_seconds": args.timeout,
            "viterbisample_options": args.vs_options,
            "sentencepiece_options": {"model_type": "unigram", "num_threads": args.threads},
            "tokenizers_setup": "Unigram(); Nmt + NFKC + Replace(' {2,}', ' '); Metaspace; "
                                "UnigramTrainer(special_tokens=['<unk>'], unk_token='<unk>'); "
                                f"RAYON_NUM_THREADS={args.threads}",
            "bytepiece_options": {**BYTEPIECE_SETTINGS, "workers": args.threads},
            "bytes_per_token": "UTF-8 bytes of the original held-out lines / tokens of those "
                               "lines, each line encoded separately, unknown tokens counted",
            "mb": "10^6 bytes",
        },
        "corpora": {},
        "runs": [],
        "complete": False,
    }
    splits = [split_corpus(c) for c in corpora]
    for s in splits:
        result["corpora"][s["file"]] = s
    if "viterbisample" in trainers and splits:
        result["numba_warmup"] = numba_warmup(splits[0], args)

    for s in splits:
        print(f"{s['file']}: {s['bytes'] / 1e6:.2f} MB, sha256 {s['sha256'][:16]}…; training "
              f"{s['train_lines']:,} lines, held out {s['heldout_lines']:,}", flush=True)
        for size in args.sizes:
            for t in trainers:
                run = {"corpus": s["file"], "vocab_size": size, "trainer": t,
                       **run_training(t, s, size, args)}
                result["runs"].append(run)
                print("  " + describe(run), flush=True)
                write_results(result, args)  # after every training: a long run keeps its part
    result["complete"] = True
    result["load_average_at_end"] = harness.load_average()
    md = write_results(result, args)
    print()
    print(md)
    print(f"wrote {args.out / args.name}.json and .md")
    return 0


def describe(run: dict) -> str:
    head = f"{run['vocab_size']:>6} {run['trainer']:<14}"
    if "error" in run:
        return f"{head} FAILED: {run['error']}"
    return (f"{head} {run['bytes_per_token']:.3f} bytes/token, train {run['train_seconds']:.1f} s, "
            f"peak {run['peak_rss_mb']:.0f} MB, {run['vocab_size_reached']} ids")


# -- results ---------------------------------------------------------------------------------
def write_results(result: dict, args) -> str:
    args.out.mkdir(parents=True, exist_ok=True)
    md = markdown(result)
    harness.write_atomic(args.out / f"{args.name}.json",
                         json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    harness.write_atomic(args.out / f"{args.name}.md", md)
    return md


def markdown(r: dict) -> str:
    m, st = r["machine"], r["settings"]
    trainers = st["trainers"]
    runs = {(x["corpus"], x["vocab_size"], x["trainer"]): x for x in r["runs"]}
    failures: list[str] = []

    def cells(run: dict | None) -> list[str]:
        if run is None:
            return ["", "", ""]
        if "error" in run:
            failures.append(f"{run['trainer']}, {run['corpus']}, {run['vocab_size']}: {run['error']}")
            return [f"failed [{len(failures)}]", "–", "–"]
        bpt = f"{run['bytes_per_token']:.3f}"
        if run["vocab_size_reached"] != run["vocab_size"]:
            bpt += f" ({run['vocab_size_reached']:,} ids)"
        return [bpt, f"{run['train_seconds']:.1f}", f"{run['peak_rss_mb']:.0f}"]

    def ratio(a: dict | None, b: dict | None, key: str) -> str:
        if not a or not b or "error" in a or "error" in b:
            return "–"
        return f"{a[key] / b[key]:.2f}"

    out = [
        "# Vocabulary training: held-out bytes per token, training time, peak memory",
        "",
        f"Split: {st['split']}. B/tok = {st['bytes_per_token']} (higher is better). "
        f"s = wall seconds of the training call alone, {st['threads']} threads each; MB = peak "
        "resident memory of the training process (imports included), 10^6 bytes. "
        "\"(N ids)\": the vocabulary reached, where it differs from the size asked.",
        "",
        f"Trainers: vs = viterbisample `train(..., num_threads={st['threads']})`"
        + (f" with {st['viterbisample_options']}" if st["viterbisample_options"] else ", defaults")
        + f"; sp = SentencePiece unigram, defaults, num_threads={st['threads']}; "
        "hf = Hugging Face tokenizers UnigramTrainer, the set-up of its SentencePieceUnigramTokenizer "
        f"(Nmt + NFKC, Metaspace), RAYON_NUM_THREADS={st['threads']}; bp = BytePiece Trainer, "
        + ", ".join(f"{k}={v}" for k, v in st["bytepiece_options"].items()) + ".",
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs; Python {m['python']}, numpy "
        f"{m['numpy']}, numba {m['numba']}, sentencepiece {m['sentencepiece'] or 'absent'}, "
        f"tokenizers {m['tokenizers'] or 'absent'}, bytepiece {m.get('bytepiece') or 'absent'}; "
        f"viterbisample {m['viterbisample_git']}. {r['date_utc']}. Load average (1, 5, 15 min) "
        f"{m['load_average_at_start']} at the start, {r.get('load_average_at_end')} at the end."
        + ("" if r["complete"] else " **Incomplete run.**"),
        "",
    ]
    head = ["corpus", "size"]
    for t in trainers:
        head += [f"{SHORT[t]} B/tok", f"{SHORT[t]} s", f"{SHORT[t]} MB"]
    both = "viterbisample" in trainers and "sentencepiece" in trainers
    if both:
        head += ["vs/sp B/tok", "vs/sp time"]
    out += ["| " + " | ".join(head) + " |",
            "| --- | ---: | " + " | ".join("---:" for _ in head[2:]) + " |"]
    corpora = list(dict.fromkeys(x["corpus"] for x in r["runs"]))
    for c in corpora:
        for size in st["sizes"]:
            row = [c, str(size)]
            for t in trainers:
                row += cells(runs.get((c, size, t)))
            if both:
                vs, sp = runs.get((c, size, "viterbisample")), runs.get((c, size, "sentencepiece"))
                row += [ratio(vs, sp, "bytes_per_token"), ratio(vs, sp, "train_seconds")]
            out.append("| " + " | ".join(row) + " |")
    if both:
        out += ["", "vs/sp B/tok above 1: viterbisample's vocabulary compresses the held-out "
                "text better; vs/sp time below 1: it trains faster."]
    if failures:
        out += ["", "Failures:", ""] + [f"{k + 1}. {f}" for k, f in enumerate(failures)]
    notes = []
    for x in r["runs"]:
        where = f"{x['trainer']}, {x['corpus']}, {x['vocab_size']}"
        if x.get("unk_tokens"):
            notes.append(f"{where}: {x['unk_tokens']:,} of {x['heldout_tokens']:,} held-out tokens "
                         "are the unknown token")
        for w in x.get("warnings", []):
            notes.append(f"{where}: warning: {w}")
    if "sentencepiece" in trainers:
        for c in r["corpora"].values():
            n = c["train_lines_over_sentencepiece_max_sentence_length"]
            if n:
                share = c["train_bytes_in_those_lines"] / c["train_bytes"]
                notes.append(f"sentencepiece, {c['file']}: skips the {n:,} training lines longer "
                             f"than its max_sentence_length ({SP_MAX_SENTENCE_BYTES} bytes), "
                             f"{share:.0%} of the training bytes")
    children = [x["peak_rss_children_mb"] for x in r["runs"] if x.get("peak_rss_children_mb", 0) > 1]
    if children:
        notes.append(f"bytepiece's training processes are not in the MB column: the largest "
                     f"one peaked at {min(children):.0f} to {max(children):.0f} MB over the runs "
                     "(ru_maxrss, pages shared with the worker included)")
    if notes:
        out += ["", "Notes:", ""] + [f"* {n}" for n in notes]
    base = {}
    for x in r["runs"]:
        if "rss_after_imports_mb" in x:
            base.setdefault(x["trainer"], []).append(x["rss_after_imports_mb"])
    if base:
        out += ["", "Resident memory after the imports, before training (in the MB column): "
                + ", ".join(f"{SHORT[t]} {max(v):.0f} MB" for t, v in base.items()) + "."]
    warm = r.get("numba_warmup")
    if warm and "train_seconds" in warm:
        out += ["", f"A small viterbisample training ran first to fill Numba's cache "
                f"({warm['train_seconds']:.1f} s); the timed trainings load the kernels from it."]
    out += ["", "Corpora: " + "; ".join(
        f"{c['file']} {c['train_bytes'] / 1e6:.2f} MB training, {c['heldout_line_bytes'] / 1e6:.2f} MB "
        f"held out (sha256 `{c['sha256'][:16]}…`)" for c in r["corpora"].values()) + "."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        os.environ["TOKENIZERS_PARALLELISM"] = "true"  # undo bench_encode's import-time setting
        raise SystemExit(worker(sys.argv[2]))
    raise SystemExit(main())
