"""Encoding a corpus on a Dask cluster (``viterbisample.distributed``): the output is the
single-process token file, byte for byte; shards are resumed; arguments are checked.

One real ``LocalCluster`` of two single-threaded worker processes serves the module.
"""

from __future__ import annotations

import doctest
import io
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import distributed  # noqa: E402,F401  (in the test extra)

from viterbisample import Tokenizer  # noqa: E402
from viterbisample.cli import main  # noqa: E402
from viterbisample.distributed import blocks, encode_corpus, shards, workers  # noqa: E402
from viterbisample.distributed.blocks import Block, block_lines, count_documents, plan_blocks  # noqa: E402
from viterbisample.io.atomic import TEMP_MARK  # noqa: E402
from viterbisample.io.sentencepiece import load_sentencepiece  # noqa: E402
from viterbisample.lines import documents, read_lines  # noqa: E402
from viterbisample.token_files import concatenate_token_files, write_token_file  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, en_lines, ja_lines) -> list[str]:
    """Three files: English with blank, CR-only and CRLF lines, bytes that are not UTF-8
    and a last line without LF; an empty file; Japanese starting with blank lines."""
    folder = tmp_path_factory.mktemp("corpus")
    rng = random.Random(5)
    english: list[bytes] = []
    for line in en_lines[400:560]:
        english.append(line)
        roll = rng.random()
        if roll < 0.1:
            english.append(b"")
        elif roll < 0.15:
            english.append(b"\r")
        elif roll < 0.2:
            english.append(line[:20] + b"\r")  # a CRLF line: the CR is text
        elif roll < 0.22:
            english.append(b"\xff\xfe broken \x80 bytes")
    a = folder / "a.txt"
    a.write_bytes(b"\n".join(english) + b"\nthe last line, without LF")
    (folder / "b.txt").write_bytes(b"")
    c = folder / "c.txt"
    c.write_bytes(b"\n\r\n" + b"\n".join(ja_lines[:12]) + b"\n\n")
    return [str(a), str(folder / "b.txt"), str(c)]


def single_process(tok, files, path, fmt, **kw) -> Path:
    write_token_file(tok, read_lines(files), path, fmt, **kw)
    return Path(path)


def same_files(a: Path, b: Path, fmt: str) -> bool:
    if fmt == "npy":
        return a.read_bytes() == b.read_bytes()
    return all(Path(f"{a}.{ext}").read_bytes() == Path(f"{b}.{ext}").read_bytes() for ext in ("bin", "idx"))


def no_leftovers(folder: Path) -> bool:
    return not any(TEMP_MARK in p.name or "vsample-previous" in p.name for p in folder.rglob("*"))


# -- blocks, without a cluster -------------------------------------------------------
def test_doctests():
    for module in (blocks, workers):
        assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize("blocksize", [1, 2, 7, 100, 4096, 1 << 20])
def test_blocks_hold_the_lines_and_documents_of_the_input(corpus, blocksize):
    planned = plan_blocks(corpus, blocksize)
    assert all(b.size > 0 for b in planned)
    assert [line for b in planned for line in block_lines(b)] == list(read_lines(corpus))
    assert sum(map(count_documents, planned)) == len(list(documents(read_lines(corpus))))
    for b, after in zip(planned, planned[1:]):  # cut just after an LF, or at a file's end
        assert after.start == 0 or Path(b.path).read_bytes()[b.end - 1:b.end] == b"\n"


def test_a_block_of_a_changed_file_is_refused(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"one\ntwo\n")
    (block,) = plan_blocks([str(path)], 100)
    path.write_bytes(b"one\ntwo and more\n")
    with pytest.raises(ValueError, match="changed while it was read"):
        list(block_lines(block))


def test_a_failed_shard_leaves_nothing(tmp_path, default_tok, corpus, monkeypatch):
    """An error while a shard is written leaves no shard, no record, no temporary file."""
    def broken(block):
        yield b"a first line"
        raise OSError("disk went away")

    monkeypatch.setattr(shards, "block_lines", broken)
    job = shards.Job(str(tmp_path), "megatron", "m", None, 0, 0, False, True)
    with pytest.raises(OSError, match="disk went away"):
        shards.encode_shard(default_tok, job, 0, Block(corpus[0], 0, 10), 0, 1)
    assert list(tmp_path.iterdir()) == []


# -- the cluster gives the single-process file ---------------------------------------
# Every format and alpha at the usual block sizes; the tiny blocks (a cut every 7 bytes,
# slow) once per format, sampled.
CASES = [(fmt, alpha, size) for fmt in ("npy", "megatron") for alpha in (None, 0.1) for size in (3000, 1 << 20)]
CASES += [("npy", 0.1, 7), ("megatron", 0.1, 7)]


@pytest.mark.parametrize("fmt,alpha,blocksize", CASES)
def test_identical_to_single_process(client, default_tok, corpus, tmp_path, fmt, alpha, blocksize):
    kw = dict(alpha=alpha, seed=11, epoch=3)
    name = "t.npy" if fmt == "npy" else "t"
    ref = single_process(default_tok, corpus, tmp_path / f"ref-{name}", fmt, **kw)
    summary = encode_corpus(default_tok, corpus, tmp_path / name, fmt, blocksize=blocksize,
                            client=client, **kw)
    assert same_files(ref, tmp_path / name, fmt)
    assert summary["shards"] == len(plan_blocks(corpus, blocksize))
    assert summary["shards_reused"] == 0
    assert summary["documents"] == len(list(documents(read_lines(corpus))))
    folder = tmp_path / "t.shards"
    assert [p.name for p in folder.iterdir()] == ["manifest.json"]  # shards removed after the merge
    assert no_leftovers(tmp_path)


def test_markers_epochs_and_a_normalizing_model(client, data_file, corpus, tmp_path):
    """A SentencePiece model (whose normalizer empties whitespace-only documents, which
    still take their stream) with <bos> and <eos>, two epochs."""
    tok = load_sentencepiece(data_file("sp_test_models/test_model.model"))
    outputs = []
    for epoch in (0, 1):
        kw = dict(alpha=0.3, seed=2, epoch=epoch)
        ref = single_process(tok, corpus, tmp_path / f"ref{epoch}", "megatron", prepend_bos=True, **kw)
        encode_corpus(tok, corpus, tmp_path / f"out{epoch}", "megatron", add_bos=True, blocksize=500,
                      client=client, **kw)
        assert same_files(ref, tmp_path / f"out{epoch}", "megatron")
        outputs.append(Path(f"{ref}.bin").read_bytes())
    assert outputs[0] != outputs[1]  # each epoch its own samples


def test_globs_folders_and_the_manifest(client, default_tok, corpus, tmp_path):
    folder = Path(corpus[0]).parent
    ref = single_process(default_tok, sorted(corpus), tmp_path / "ref.npy", "npy", alpha=0.2, seed=4)
    out = tmp_path / "out"
    out.mkdir()
    assert distributed.default_client() is client  # client=None: the current client
    summary = encode_corpus(default_tok, str(folder / "*.txt"), out, "npy", alpha=0.2, seed=4,
                            blocksize=2000, keep_shards=True)
    assert summary["files"] == [str(out / "tokens.npy")]
    assert same_files(ref, out / "tokens.npy", "npy")
    manifest = json.loads(Path(summary["manifest"]).read_text())
    assert manifest["dtype"] == "uint16" and manifest["seed"] == 4 and manifest["alpha"] == 0.2
    assert manifest["normalizer"] == default_tok.model.normalizer.to_json()
    assert [s["name"] for s in manifest["shards"]] == [f"shard-{i:06d}.npy" for i in range(summary["shards"])]
    assert manifest["tokens"] == len(np.load(out / "tokens.npy"))
    firsts = [s["first_document"] for s in manifest["shards"]]
    assert firsts == list(np.cumsum([0] + [s["documents"] for s in manifest["shards"]])[:-1])
    # The kept shards join into the same file.
    shard_paths = [out / "tokens.shards" / s["name"] for s in manifest["shards"]]
    concatenate_token_files(shard_paths, tmp_path / "again.npy", "npy")
    assert same_files(ref, tmp_path / "again.npy", "npy")


def test_resume_redoes_only_missing_or_damaged_shards(client, default_tok, corpus, tmp_path):
    kw = dict(alpha=0.1, seed=8, blocksize=1500, client=client, keep_shards=True)
    first = encode_corpus(default_tok, corpus, tmp_path / "t", "megatron", **kw)
    folder = tmp_path / "t.shards"
    n = first["shards"]
    assert n > 4
    # A failed run: no output yet, one shard never written, one damaged, a temporary file left.
    for ext in ("bin", "idx"):
        Path(f"{tmp_path / 't'}.{ext}").unlink()
        (folder / f"shard-000001.{ext}").unlink()
    damaged = folder / "shard-000003.bin"
    data = bytearray(damaged.read_bytes())
    data[0] ^= 1
    damaged.write_bytes(bytes(data))
    (folder / f".shard-000002.bin{TEMP_MARK}0123456789abcdef").mkdir()
    again = encode_corpus(default_tok, corpus, tmp_path / "t", "megatron", **kw)
    assert again["shards"] == n and again["shards_reused"] == n - 2
    ref = single_process(default_tok, corpus, tmp_path / "ref", "megatron", alpha=0.1, seed=8)
    assert same_files(ref, tmp_path / "t", "megatron")
    assert no_leftovers(tmp_path)
    # Other settings never reuse these shards.
    other = encode_corpus(default_tok, corpus, tmp_path / "t", "megatron", **{**kw, "seed": 9})
    assert other["shards_reused"] == 0


def test_a_run_that_fails_leaves_no_partial_file_and_resumes(client, default_tok, corpus, tmp_path):
    """A task raising on the workers (here: every block of the last file) stops the run
    with its error and no output; the next run reuses the shards that were finished."""
    last = corpus[-1]

    def break_last_file():
        original = shards.block_lines

        def broken(block):
            if block.path == last:
                raise OSError("simulated failure")
            return original(block)

        shards.block_lines, shards._original_block_lines = broken, original

    def repair():
        shards.block_lines = shards.__dict__.pop("_original_block_lines", shards.block_lines)

    kw = dict(alpha=0.1, seed=6, blocksize=2000, client=client)
    client.run(break_last_file)
    try:
        with pytest.raises(OSError, match="simulated failure"):
            encode_corpus(default_tok, corpus, tmp_path / "t.npy", "npy", **kw)
    finally:
        client.run(repair)
    assert not (tmp_path / "t.npy").exists()
    # Cancelling does not stop a task a worker is already running: it finishes its shard
    # (written atomically, kept for the next run) after the error is raised here.
    deadline = time.monotonic() + 60
    while not no_leftovers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert no_leftovers(tmp_path)
    again = encode_corpus(default_tok, corpus, tmp_path / "t.npy", "npy", **kw)
    assert 1 <= again["shards_reused"] < again["shards"]
    ref = single_process(default_tok, corpus, tmp_path / "ref.npy", "npy", alpha=0.1, seed=6)
    assert same_files(ref, tmp_path / "t.npy", "npy")


def test_progress_line_on_a_terminal(client, default_tok, corpus, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stderr = Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    summary = encode_corpus(default_tok, corpus, tmp_path / "t.npy", "npy", blocksize=4000, client=client)
    shown = stderr.getvalue()
    assert f"shards {summary['shards']}/{summary['shards']}" in shown
    assert "MB/s" in shown and f"{summary['tokens']:,} tokens" in shown and shown.endswith("\n")
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    encode_corpus(default_tok, corpus, tmp_path / "t.npy", "npy", client=client, progress=False)
    assert quiet.getvalue() == ""


def test_command_line(client, corpus, tmp_path):
    sampled = ["--alpha", "0.1", "--seed", "5", "--epoch", "2"]
    assert main(["encode", *corpus, "--format", "npy", "-o", str(tmp_path / "ref.npy"), *sampled]) == 0
    assert main(["encode", *corpus, "--format", "npy", "-o", str(tmp_path / "out.npy"), *sampled,
                 "--scheduler", "local:2", "--quiet"]) == 0
    assert same_files(tmp_path / "ref.npy", tmp_path / "out.npy", "npy")


@pytest.mark.parametrize("extra, message", [
    (["--scheduler", "local:0"], "local:N takes N"),
    (["--scheduler", "localhost"], "local:N takes N"),
    (["--scheduler", "local:2", "--doc-sep", "blank"], "--doc-sep line only"),
    (["--scheduler", "local:2", "--format", "ids"], "for token files"),
])
def test_command_line_usage_errors(corpus, tmp_path, capsys, extra, message):
    args = ["encode", corpus[0], "--format", "npy", "-o", str(tmp_path / "x.npy"), *extra]
    if "ids" in extra:
        args = ["encode", corpus[0], *extra]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_command_line_needs_files(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["encode", "--format", "npy", "-o", str(tmp_path / "x.npy"), "--scheduler", "local:1"])
    assert exc.value.code == 2
    assert "give FILE" in capsys.readouterr().err


def test_argument_errors(default_tok, corpus, tmp_path):
    no_eos = Tokenizer.from_pieces([bytes([b]) for b in range(256)], [-1.0] * 256, special_tokens=["<pad>"])
    cases = [
        (dict(format="txt"), ValueError, "format must be"),
        (dict(blocksize=0), ValueError, "blocksize must be"),
        (dict(alpha=-1.0), ValueError, "alpha"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(inputs=[str(tmp_path / "missing.txt")]), FileNotFoundError, "not found"),
        (dict(inputs=[str(tmp_path / "none*.txt")]), FileNotFoundError, "no input file matches"),
        (dict(inputs=[str(tmp_path)]), IsADirectoryError, "directory"),
        (dict(inputs=[]), ValueError, "no input files"),
        (dict(out=tmp_path / "x.npy"), ValueError, "ends in .npy"),
        (dict(out=tmp_path / "no" / "x"), FileNotFoundError, "output folder"),
        (dict(tok=no_eos), ValueError, "no <eos>"),
        (dict(tok="model"), TypeError, "Tokenizer"),
    ]
    for case, error, message in cases:
        kw = {"tok": default_tok, "inputs": corpus, "out": tmp_path / "x", "format": "megatron", **case}
        with pytest.raises(error, match=message):
            encode_corpus(kw.pop("tok"), kw.pop("inputs"), kw.pop("out"), **kw)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ray_data_recipe(default_tok, corpus, tmp_path):
    """The README's Ray Data recipe writes the single-process file too."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from viterbisample.distributed.blocks import first_indices, input_files
    from viterbisample.distributed.shards import Job, encode_shard, model_hash
    from viterbisample.distributed.workers import warm

    class EncodeShards:  # defined here, so that Ray ships it by value
        def __init__(self, tok, job):
            self.tok, self.job = tok, job
            warm(tok, job.alpha)

        def __call__(self, rows):
            shards = [encode_shard(self.tok, self.job, int(i), Block(str(p), int(s), int(e)), int(f), num_threads=1)
                      for i, p, s, e, f in zip(rows["index"], rows["path"], rows["start"], rows["end"], rows["first"])]
            return {"index": rows["index"], "path": [s.path for s in shards]}

    blocks_ = plan_blocks(input_files(corpus), 3000)
    firsts = first_indices([count_documents(b) for b in blocks_])
    os.makedirs(tmp_path / "t.shards")
    job = Job(str(tmp_path / "t.shards"), "megatron", model_hash(default_tok), alpha=0.1, seed=7, epoch=3,
              add_bos=False, add_eos=True)
    items = [{"index": i, "path": b.path, "start": b.start, "end": b.end, "first": f}
             for i, (b, f) in enumerate(zip(blocks_, firsts))]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        done = (ray.data.from_items(items)
                .map_batches(EncodeShards, fn_constructor_args=(default_tok, job), batch_size=1, concurrency=2,
                             num_cpus=1)
                .take_all())
    finally:
        ray.shutdown()
    concatenate_token_files([r["path"] for r in sorted(done, key=lambda r: r["index"])], tmp_path / "t", "megatron")
    ref = single_process(default_tok, corpus, tmp_path / "ref", "megatron", alpha=0.1, seed=7, epoch=3)
    assert same_files(ref, tmp_path / "t", "megatron")


# -- training ------------------------------------------------------------------------------


@pytest.mark.parametrize("options,blocksizes", [
    (dict(), (50_000, 1 << 20)),
    (dict(split="gpt", max_piece_bytes=8, user_pieces=["Botchan"], special_tokens=["<s>"]), (200_000,)),
])
def test_training_gives_the_single_process_model(client, corpus, tmp_path, monkeypatch, options, blocksizes):
    """The same model file, byte for byte: files with blank, CR and invalid lines, units
    in many chunks and (with small groups) in several groups, several block sizes, and
    seeds and first rounds on samples fetched from the workers."""
    import functools

    import viterbisample
    from viterbisample import engine
    from viterbisample.distributed import train as cluster_train
    from viterbisample.train import trainer

    # Many chunks and groups from a small corpus (6 to 11 KB of distinct units) ...
    monkeypatch.setattr(engine, "SUM_CHUNK_BYTES", 1024)
    monkeypatch.setattr(engine, "SUM_GROUP_CHUNKS", 3)
    # ... and samples, as on a large one: seeds from 2 KB of units, first EM rounds on 3 KB.
    monkeypatch.setattr(trainer, "seed_pieces", functools.partial(trainer.seed_pieces, sample_bytes=2_000))
    run = trainer.Trainer.run

    def run_on_samples(self, units, *args):
        assert units.ends[-1] > 4_000  # else no sample is drawn
        self.em_sample_bytes = 3_000
        return run(self, units, *args)

    monkeypatch.setattr(trainer.Trainer, "run", run_on_samples)
    single = viterbisample.train([Path(f) for f in corpus], 400, progress=False, **options)
    single.save(tmp_path / "single.json")
    for blocksize in blocksizes:
        tok = cluster_train(corpus, 400, client=client, blocksize=blocksize, progress=False, **options)
        tok.save(tmp_path / "cluster.json")
        assert (tmp_path / "cluster.json").read_bytes() == (tmp_path / "single.json").read_bytes(), blocksize


def test_training_arguments(client, corpus, tmp_path):
    from viterbisample.distributed import train as cluster_train

    with pytest.raises(ValueError, match="max_lines"):
        cluster_train(corpus, 1000, client=client, max_lines=10)
    with pytest.raises(ValueError, match="vocab_size"):
        cluster_train(corpus, 10, client=client)
    with pytest.raises((ValueError, FileNotFoundError)):
        cluster_train([str(tmp_path / "nothing-*.txt")], 1000, client=client)
