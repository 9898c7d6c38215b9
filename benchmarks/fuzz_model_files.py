"""Fuzz the model loaders: a damaged model file is refused with ValueError, or it loads a
model that encodes and decodes every text exactly; nothing crashes.

    python benchmarks/fuzz_model_files.py [--json 10000] [--spm 2000] [--seed 0] [--jobs 2]

Mutates the shipped model (``viterbisample/data/default_model.json``) ``--json`` times and
the two SentencePiece test models (``--spm`` in all, half each): byte flips, deletions
and duplications of ranges (1 byte to 50 KB), truncations, whole-line edits, and number
edits (huge and tiny, NaN and infinity spellings, integers too large for a float, scores
just past the +-1e4 limit; for SentencePiece, float32 scores, piece types, lengths).
Mutation ``i`` of a source is drawn from its own seed, so it can be rebuilt alone.

Each mutated file is loaded (``Tokenizer.load`` / ``load_sentencepiece``) and, if it
loads, sampled: ``tok.encode(text, alpha=a, seed=0)`` for a in 0.1, 1, 10 and
``tok.encode(text)``, on three texts (English, Japanese, broken UTF-8), each decoded back.
The work runs in batches of subprocesses; a batch that dies (a signal, or a hang past the
timeout) is re-run mutation by mutation from the one it died on, so a crash is pinned to
its mutation, whose file is then kept in ``benchmarks/results/fuzz_crashes/``.

Outcomes: *refused* (ValueError/TypeError on load: expected), *loaded* (and every encode
round-tripped), *load exception* (another exception type on load), *loaded and wrong* (a
decode differs from its text, or an encode raised), *crash* (killed by a signal), *hang*,
*child error* (the subprocess exited with an error of its own).  The last five must be 0.  *Unnamed* counts refusals whose message does not name the file.

Needs the SentencePiece test models in ``../shared/data/sp_test_models/`` (test_model.model
and test_ja_model.model from google/sentencepiece ``python/test/``); without them only the
JSON part runs.  Writes ``benchmarks/results/fuzz_model_files.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
DEFAULT_MODEL = REPO / "viterbisample" / "data" / "default_model.json"
SPM_DIR = REPO.parent / "shared" / "data" / "sp_test_models"
SPM_MODELS = ["test_model.model", "test_ja_model.model"]

ALPHAS = (0.1, 1.0, 10.0)
TEXTS = [
    "The quick brown fox jumps over the lazy dog; 3.14159 and 42 are numbers.",
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    b"broken \xff\xfe UTF-8 \xe3\x81 and a lone \x80 continuation",
]
BAD_OUTCOMES = ("load_exception", "loaded_wrong", "crash", "hang", "child_error")
OUTCOMES = ("refused", "loaded") + BAD_OUTCOMES

# What a number edit writes in place of a JSON number.
JSON_NUMBERS = [
    "1e400", "-1e400", "1" + "0" * 400, "-" + "9" * 4000, "1e308", "-1.7976931348623157e308",
    "NaN", "Infinity", "-Infinity", "nan", "inf", "1e999",
    "5e-324", "-5e-324", "1e-400", "0", "-0.0", "0.0",
    "10000", "-10000", "10000.000000001", "-10000.000000001", "10001", "-10001", "1e4", "-1e4",
    "true", "false", "null", '"-1"', "[]", "{}", "1.0", "2", "-1", "-3.5", "1e5", "-99999",
]
JSON_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
STRUCTURE = b'[]{},:"'
# What a score edit writes into a SentencePiece float32 score.
SPM_SCORES = [float("nan"), float("inf"), float("-inf"), 3.4e38, -3.4e38, 1e-45, -1e-45, 0.0,
              -0.0, 1e4, -1e4, 10001.0, -10001.0, -9990.0, -9991.0, 100.0, -30.0]


# -- mutations -----------------------------------------------------------------------------
def _span(rng: random.Random, n: int) -> tuple[int, int]:
    """A range of 1 byte to 50 KB, lengths log-uniform."""
    length = min(n, int(10 ** rng.uniform(0, 4.7)))
    start = rng.randrange(max(1, n - length + 1))
    return start, start + length


def _generic(raw: bytearray, rng: random.Random, kind: str) -> str:
    n = len(raw)
    if kind == "flip":
        k = rng.randint(1, 8)
        for _ in range(k):
            raw[rng.randrange(n)] = rng.randrange(256)
        return f"flip {k} bytes"
    if kind == "bitflip":
        at = rng.randrange(n)
        raw[at] ^= 1 << rng.randrange(8)
        return f"bitflip at {at}"
    if kind == "delete":
        a, b = _span(rng, n)
        del raw[a:b]
        return f"delete [{a}:{b}]"
    if kind == "duplicate":
        a, b = _span(rng, n)
        at = rng.choice([b, rng.randrange(n + 1)])
        raw[at:at] = raw[a:b]
        return f"duplicate [{a}:{b}] at {at}"
    if kind == "truncate":
        at = rng.randrange(n)
        del raw[at:]
        return f"truncate at {at}"
    raise ValueError(kind)


def mutate_json(source: bytes, numbers: list[tuple[int, int]], rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["flip", "bitflip", "delete", "duplicate", "truncate",
                       "number", "number", "number", "lines", "structure"])
    raw = bytearray(source)
    if kind == "number":
        # Edits from the end, so the earlier offsets stay valid.
        picks = sorted(rng.sample(numbers, rng.randint(1, 3)), reverse=True)
        if rng.random() < 0.2:  # the header's numbers: version, num_pieces
            picks = [numbers[rng.randrange(2)]]
        done = []
        for a, b in picks:
            new = rng.choice(JSON_NUMBERS)
            raw[a:b] = new.encode()
            done.append(f"{bytes(source[a:b]).decode()}->{new[:12]}")
        return bytes(raw), "number " + ", ".join(done)
    if kind == "lines":
        lines = bytes(raw).split(b"\n")
        op = rng.choice(["delete", "duplicate", "swap"])
        i, j = rng.randrange(2, len(lines) - 2), rng.randrange(2, len(lines) - 2)
        if op == "delete":
            k = rng.randint(1, 3000)
            del lines[i : i + k]
            what = f"delete {k} lines at {i}"
        elif op == "duplicate":
            lines.insert(j, lines[i])
            what = f"duplicate line {i} at {j}"
        else:
            lines[i], lines[j] = lines[j], lines[i]
            what = f"swap lines {i} and {j}"
        return b"\n".join(lines), "lines " + what
    if kind == "structure":
        spots = [rng.randrange(len(raw)) for _ in range(200)]
        spots = [s for s in spots if raw[s] in STRUCTURE] or [rng.randrange(len(raw))]
        at = spots[0]
        raw[at] = rng.choice(STRUCTURE)
        return bytes(raw), f"structure at {at}"
    what = _generic(raw, rng, kind)
    return bytes(raw), what


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def spm_fields(data: bytes) -> dict[str, list[int]]:
    """Offsets in a well-formed ModelProto: each piece's score (4 bytes), type varint and
    length varint (the pieces are the leading field-1 messages)."""
    out: dict[str, list[int]] = {"score": [], "type": [], "length": []}
    pos = 0
    while pos < len(data) and data[pos] == 0x0A:
        out["length"].append(pos + 1)
        n, body = _varint_at(data, pos + 1)
        end = body + n
        p = body
        while p < end:
            key, p = _varint_at(data, p)
            wire = key & 7
            if wire == 2:
                m, p = _varint_at(data, p)
                p += m
            elif wire == 5:
                if key >> 3 == 2:
                    out["score"].append(p)
                p += 4
            elif wire == 0:
                if key >> 3 == 3:
                    out["type"].append(p)
                _, p = _varint_at(data, p)
            else:
                break
        pos = end
    return out


def mutate_spm(source: bytes, fields: dict[str, list[int]], rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["flip", "bitflip", "delete", "duplicate", "truncate",
                       "score", "score", "type", "length"])
    raw = bytearray(source)
    if kind == "score":
        done = []
        for at in rng.sample(fields["score"], rng.randint(1, 3)):
            value = rng.choice(SPM_SCORES)
            raw[at : at + 4] = struct.pack("<f", value)
            done.append(f"{at}->{value!r}")
        return bytes(raw), "score " + ", ".join(done)
    if kind == "type" and fields["type"]:
        at = rng.choice(fields["type"])
        value = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 100, 127])
        raw[at] = value
        return bytes(raw), f"type at {at} -> {value}"
    if kind == "length":
        at = rng.choice(fields["length"])
        raw[at] = (raw[at] + rng.choice([-2, -1, 1, 2])) % 256
        return bytes(raw), f"length byte at {at}"
    what = _generic(raw, rng, kind if kind in ("flip", "bitflip", "delete", "duplicate", "truncate") else "flip")
    return bytes(raw), what


class Source:
    """One file to mutate; ``mutation(i)`` rebuilds mutation ``i`` from its own seed."""

    def __init__(self, name: str, path: Path, seed: int) -> None:
        self.name, self.path, self.seed = name, path, seed
        self.data = path.read_bytes()
        self.is_json = path.suffix == ".json"
        if self.is_json:
            self.numbers = [m.span() for m in JSON_NUMBER.finditer(self.data)]
        else:
            self.fields = spm_fields(self.data)

    def mutation(self, i: int) -> tuple[bytes, str]:
        rng = random.Random(f"{self.seed}/{self.name}/{i}")
        if self.is_json:
            return mutate_json(self.data, self.numbers, rng)
        return mutate_spm(self.data, self.fields, rng)


# -- the child: load and sample a batch of mutations ----------------------------------------
def check_one(source: Source, i: int, folder: Path) -> dict:
    from viterbisample import Tokenizer
    from viterbisample.io.sentencepiece import load_sentencepiece

    if os.environ.get("FUZZ_ABORT_AT") == f"{source.name}/{i}":
        os.abort()  # --abort-at: a crash on purpose, to check that it is found and pinned
    data, what = source.mutation(i)
    path = folder / f"mutated{source.path.suffix}"
    path.write_bytes(data)
    row = {"i": i, "mutation": what, "changed": data != source.data}
    try:
        tok = Tokenizer.load(path) if source.is_json else load_sentencepiece(path)
    except (ValueError, TypeError) as exc:
        row["outcome"] = "refused"
        row["named"] = path.name in str(exc)
        row["detail"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return row
    except Exception as exc:  # noqa: BLE001 - what the fuzzer counts
        row["outcome"] = "load_exception"
        row["detail"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        return row
    problems = []
    for text in TEXTS:
        want = text if isinstance(text, bytes) else text.encode("utf-8")
        for alpha in ALPHAS + (None,):
            try:
                ids = tok.encode(text) if alpha is None else tok.encode(text, alpha=alpha, seed=0)
                if tok.decode_bytes(ids) != want:
                    problems.append(f"alpha={alpha}: decode differs from the text")
            except Exception as exc:  # noqa: BLE001
                problems.append(f"alpha={alpha}: {type(exc).__name__}: {str(exc)[:200]}")
    row["outcome"] = "loaded_wrong" if problems else "loaded"
    if problems:
        row["detail"] = "; ".join(problems[:4])
    return row


def child_main(name: str, path: str, seed: int, indices: list[int]) -> None:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing
    source = Source(name, Path(path), seed)
    with tempfile.TemporaryDirectory() as tmp:
        for i in indices:
            print(json.dumps(check_one(source, i, Path(tmp))), flush=True)


# -- the parent: batches, crash attribution, the summary -------------------------------------
def run_batch(source: Source, indices: list[int], timeout: float) -> tuple[list[dict], int | None, str]:
    """Run ``indices`` in one subprocess: (rows finished, return code or None if it timed
    out, the end of its stderr)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", source.name, str(source.path),
           str(source.seed), ",".join(map(str, indices))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out, rc, err = proc.stdout, proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rc, err = None, ""
    rows = []
    for line in out.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows, rc, " | ".join(err.strip().splitlines()[-2:])


def run_indices(source: Source, indices: list[int], timeout_each: float) -> list[dict]:
    """All rows for ``indices``; a batch that dies is resumed, its culprit run alone."""
    rows: list[dict] = []
    todo = list(indices)
    while todo:
        got, _, _ = run_batch(source, todo, 60 + timeout_each * len(todo))
        rows += got
        done = {r["i"] for r in got}
        todo = [i for i in todo if i not in done]
        if not todo:
            break
        suspect, todo = todo[0], todo[1:]
        alone, rc, err = run_batch(source, [suspect], 60 + timeout_each)
        if alone:
            rows += alone
            continue
        what = source.mutation(suspect)[1]
        # A signal (negative code) is a crash; a positive code, an exception that escaped
        # the child (an import error, a SystemExit), with its stderr.
        outcome = "hang" if rc is None else "crash" if rc < 0 else "child_error"
        detail = "timed out" if rc is None else f"return code {rc}" + (f": {err}" if rc > 0 else "")
        rows.append({"i": suspect, "mutation": what, "outcome": outcome, "detail": detail})
        keep = RESULTS / "fuzz_crashes"
        keep.mkdir(parents=True, exist_ok=True)
        (keep / f"{source.name}-{suspect}{source.path.suffix}").write_bytes(source.mutation(suspect)[0])
        print(f"  {outcome}: {source.name} mutation {suspect} ({what}), file kept in {keep}", flush=True)
    return rows


def fuzz(source: Source, count: int, batch: int, jobs: int, timeout_each: float) -> tuple[list[dict], float]:
    chunks = [list(range(a, min(count, a + batch))) for a in range(0, count, batch)]
    t = time.perf_counter()
    rows: list[dict] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for k, got in enumerate(pool.map(lambda c: run_indices(source, c, timeout_each), chunks)):
            rows += got
            bad = sum(r["outcome"] in BAD_OUTCOMES for r in rows)
            print(f"  {source.name}: {len(rows)}/{count} done, {bad} bad, "
                  f"{time.perf_counter() - t:.0f} s", flush=True)
    return sorted(rows, key=lambda r: r["i"]), time.perf_counter() - t


def summarize(name: str, rows: list[dict], seconds: float) -> dict:
    counts = {o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES}
    kinds: dict[str, dict[str, int]] = {}
    for r in rows:
        kind = r["mutation"].split(" ")[0]
        k = kinds.setdefault(kind, {"refused": 0, "loaded": 0, "bad": 0})
        k["bad" if r["outcome"] in BAD_OUTCOMES else r["outcome"]] += 1
    return {
        "source": name, "mutations": len(rows), **counts,
        "unnamed_refusals": sum(r["outcome"] == "refused" and not r.get("named", True) for r in rows),
        "seconds": seconds, "by_kind": kinds,
        "bad_examples": [r for r in rows if r["outcome"] in BAD_OUTCOMES][:30],
        "refusal_examples": sorted({r["detail"].split(":", 3)[-1].strip()[:90]
                                    for r in rows if r["outcome"] == "refused"})[:40],
    }


def write_results(summaries: list[dict], args: argparse.Namespace) -> None:
    RESULTS.mkdir(exist_ok=True)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_encode as harness  # machine info, as every benchmark records it

    meta = {**harness.machine_info(), "seed": args.seed, "alphas": list(ALPHAS), "batch": args.batch, "jobs": args.jobs}
    (RESULTS / "fuzz_model_files.json").write_text(json.dumps({"meta": meta, "sources": summaries}, indent=1))
    lines = [
        "# Model-file fuzzing (`benchmarks/fuzz_model_files.py`)", "",
        f"Seed {args.seed}; each loaded model sampled at alpha {', '.join(map(str, ALPHAS))} (seed 0) "
        f"and Viterbi on {len(TEXTS)} texts.  {meta['cpu']}, Python {meta['python']}, NumPy "
        f"{meta['numpy']}, Numba {meta['numba']}, git {meta['viterbisample_git']}.", "",
        "| source | mutations | refused | loaded | load exception | loaded and wrong | crash | hang | child error | unnamed refusals | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        lines.append(f"| {s['source']} | {s['mutations']} | {s['refused']} | {s['loaded']} | "
                     f"{s['load_exception']} | {s['loaded_wrong']} | {s['crash']} | {s['hang']} | {s['child_error']} | "
                     f"{s['unnamed_refusals']} | {s['seconds']:.0f} |")
    lines += ["", "By mutation kind (refused / loaded / bad):", ""]
    for s in summaries:
        kinds = ", ".join(f"{k} {v['refused']}/{v['loaded']}/{v['bad']}" for k, v in sorted(s["by_kind"].items()))
        lines.append(f"- {s['source']}: {kinds}")
    bad = [(s["source"], r) for s in summaries for r in s["bad_examples"]]
    if bad:
        lines += ["", "Bad outcomes (first ones):", ""]
        lines += [f"- {name} #{r['i']} ({r['mutation']}): {r['outcome']}: {r.get('detail', '')}" for name, r in bad]
    (RESULTS / "fuzz_model_files.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        name, path, seed, indices = sys.argv[2:6]
        child_main(name, path, int(seed), [int(i) for i in indices.split(",")])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=int, default=10_000, help="mutations of the shipped JSON model")
    ap.add_argument("--spm", type=int, default=2_000, help="mutations of the SentencePiece models, in all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=100, help="mutations per subprocess")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="subprocesses at a time")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per mutation")
    ap.add_argument("--abort-at", metavar="SOURCE/I", help="self-test: abort on that mutation")
    args = ap.parse_args()
    if args.abort_at:
        os.environ["FUZZ_ABORT_AT"] = args.abort_at

    sources = [(Source("default_model.json", DEFAULT_MODEL, args.seed), args.json)]
    missing = [name for name in SPM_MODELS if not (SPM_DIR / name).is_file()]
    if missing and args.spm:
        print(f"SentencePiece models missing: put {', '.join(missing)} (google/sentencepiece python/test/) "
              f"in {SPM_DIR}; fuzzing the JSON model only", file=sys.stderr)
    elif args.spm:
        for k, name in enumerate(SPM_MODELS):
            share = args.spm // len(SPM_MODELS) + (k < args.spm % len(SPM_MODELS))
            sources.append((Source(name, SPM_DIR / name, args.seed), share))
    summaries = []
    for source, count in sources:
        if count:
            print(f"{source.name}: {count} mutations", flush=True)
            rows, seconds = fuzz(source, count, args.batch, args.jobs, args.timeout)
            summaries.append(summarize(source.name, rows, seconds))
    write_results(summaries, args)
    if any(s[o] for s in summaries for o in BAD_OUTCOMES):
        sys.exit(1)


if __name__ == "__main__":
    main()
