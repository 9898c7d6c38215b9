"""The vsample command: formats, lossless bytes, reproducible sampling, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from viterbisample import Tokenizer
from viterbisample.cli import main

LINES = [b"The cat sat on the mat.", b"\xff\xfe not UTF-8 \xc3", b"", b"CRLF line\r", "吾輩は猫である".encode()]


@pytest.fixture()
def infile(tmp_path) -> Path:
    path = tmp_path / "in.txt"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    return path


def test_ids_then_decode_restores_the_bytes(infile, tmp_path):
    ids = tmp_path / "ids.txt"
    assert main(["encode", str(infile), "--format", "ids", "-o", str(ids)]) == 0
    out = tmp_path / "back.txt"
    assert main(["decode", str(ids), "-o", str(out)]) == 0
    assert out.read_bytes() == infile.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.txt", "ids.txt", "in.txt"]


@pytest.mark.parametrize("fmt", ["pieces", "ids", "jsonl"])
def test_one_output_line_per_input_line(infile, capsysbinary, default_tok, fmt):
    assert main(["encode", str(infile), "--format", fmt]) == 0
    out = capsysbinary.readouterr().out.split(b"\n")
    assert out[-1] == b"" and len(out) - 1 == len(LINES)
    if fmt == "jsonl":
        assert [json.loads(x)["ids"] for x in out[:-1]] == default_tok.encode_batch(LINES)
    if fmt == "ids":
        assert [[int(i) for i in x.split()] for x in out[:-1]] == default_tok.encode_batch(LINES)
    if fmt == "pieces":
        assert out[0].decode().split(" ") == default_tok.tokenize(LINES[0])  # one display everywhere
        assert b"\t" not in out[3] and b"\r" not in out[3]


def test_stdin_and_several_files(infile, capsysbinary, run_python):
    r = run_python("-m", "viterbisample.cli", "encode", "--format", "ids", stdin=infile.read_bytes())
    assert r.returncode == 0, r.stderr
    assert main(["encode", str(infile), str(infile), "--format", "ids"]) == 0
    two = capsysbinary.readouterr().out
    assert two == r.stdout * 2


def test_sampling_is_reproducible_and_epochs_differ(infile, capsysbinary, default_tok):
    def sample(*extra):
        assert main(["encode", str(infile), "--format", "ids", "--alpha", "0.3", "--seed", "4", *extra]) == 0
        return capsysbinary.readouterr().out
    assert sample() == sample()
    assert sample("--epoch", "1") != sample()
    three = sample("--samples", "3").split(b"\n")[0].split(b"\t")
    assert len(three) == 3
    assert [[int(i) for i in s.split()] for s in three] == default_tok.sample_batch([LINES[0]], 0.3, 3, seed=4)[0]


def test_nbest_distinct_and_calibrated_sampling(infile, capsysbinary, default_tok):
    assert main(["encode", str(infile), "--nbest", "3", "--format", "jsonl"]) == 0
    first = json.loads(capsysbinary.readouterr().out.split(b"\n")[0])
    assert [e["ids"] for e in first["nbest"]] == [ids for ids, _ in default_tok.nbest(LINES[0], 3)]
    assert main(["encode", str(infile), "--alpha", "0.5", "--samples", "4", "--without-replacement",
                 "--format", "jsonl"]) == 0
    rows = [json.loads(x) for x in capsysbinary.readouterr().out.split(b"\n")[:-1]]
    assert len({tuple(e["ids"]) for e in rows[0]["samples"]}) == 4
    assert main(["encode", str(infile), "--entropy-per-byte", "0.3", "--format", "ids", "-q"]) == 0
    captured = capsysbinary.readouterr()
    assert b"alpha = " in captured.err and len(captured.out.split(b"\n")) == len(LINES) + 1


def test_stats(infile, capsysbinary, default_tok):
    assert main(["stats", str(infile), "--alpha", "0.5", "--format", "jsonl"]) == 0
    rows = [json.loads(x) for x in capsysbinary.readouterr().out.split(b"\n")[:-1]]
    assert len(rows) == len(LINES)
    assert rows[0]["log_z"] == pytest.approx(default_tok.log_partition(LINES[0], 0.5), abs=1e-9)
    assert rows[0]["entropy"] == pytest.approx(default_tok.entropy(LINES[0], 0.5), abs=1e-9)
    assert rows[0]["viterbi_length"] == len(default_tok.encode(LINES[0]))
    assert main(["stats", str(infile), "--sum", "--format", "jsonl"]) == 0
    total = json.loads(capsysbinary.readouterr().out)
    assert total["bytes"] == sum(map(len, LINES))


def test_model_option(infile, tmp_path, capsysbinary):
    small = Tokenizer.from_pieces([bytes([b]) for b in range(256)] + [b"cat"], [-5.0] * 256 + [-1.0])
    small.save(tmp_path / "m.json")
    assert main(["encode", str(infile), "--model", str(tmp_path / "m.json"), "--format", "ids"]) == 0
    first = capsysbinary.readouterr().out.split(b"\n")[0]
    assert [int(i) for i in first.split()] == small.encode(LINES[0])


@pytest.mark.parametrize("args,message", [
    (["encode", "{missing}"], b"input file not found"),
    (["encode", "{infile}", "--model", "{missing}"], b"model file not found"),
    (["encode", "{infile}", "--model", "{bad}"], b"not a valid viterbisample model"),
    (["encode", "{infile}", "--alpha", "-1"], b"--alpha must be finite and >= 0"),
    (["encode", "{infile}", "--threads", "0"], b"--threads must be >= 1"),
    (["decode", "{words}"], b"line 1: expected token ids"),
    (["decode", "{huge}"], b"line 1: token id 99999999 is out of range"),
])
def test_errors_are_one_line_without_traceback(infile, tmp_path, run_python, args, message):
    files = {
        "infile": infile, "missing": tmp_path / "nope.txt", "bad": tmp_path / "bad.json",
        "words": tmp_path / "words.txt", "huge": tmp_path / "huge.txt",
    }
    files["bad"].write_text('{"format": "viterbisample-unigram", "version": 1, "pieces": [', "utf-8")
    files["words"].write_text("hello world\n", "utf-8")
    files["huge"].write_text("1 99999999\n", "utf-8")
    r = run_python("-m", "viterbisample.cli", *[a.format(**{k: str(v) for k, v in files.items()}) for a in args])
    assert r.returncode != 0
    assert r.stderr.startswith(b"vsample: error:") and message in r.stderr
    assert r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("args,message", [
    (["--seed", "3"], "--seed keys sampled segmentations only: give --alpha or --entropy-per-byte too"),
    (["--epoch", "1"], "--epoch keys sampled segmentations only: give --alpha or --entropy-per-byte too"),
    (["--epoch", "0", "--nbest", "2"], "--epoch keys sampled segmentations only"),
    (["--samples", "2"], "--samples needs --alpha or --entropy-per-byte"),
    (["--alpha", "0.1", "--without-replacement"], "--without-replacement needs --samples K"),
    (["--alpha", "0.1", "--nbest", "2"], "--nbest lists the best segmentations; it does not combine with sampling"),
    (["--alpha", "0.1", "--entropy-per-byte", "0.5"], "give --alpha or --entropy-per-byte, not both"),
    (["--add-bos"], "--add-bos is for token files (--format npy or megatron)"),
    (["--format", "jsonl", "--no-eod"], "--no-eod is for token files"),
    (["--format", "ids", "--doc-sep", "blank"], "--doc-sep is for token files"),
    (["--format", "npy"], "--format npy writes files: give -o PATH"),
    (["--format", "megatron", "-o", "-"], "--format megatron writes files: give -o PATH (a prefix for PATH.bin"),
    (["--format", "npy", "-o", "{out}", "--alpha", "1", "--samples", "2"],
     "--format npy writes one segmentation per document"),
    (["--format", "megatron", "-o", "{out}.npy"], "ends in .npy, an npy file's name: give the prefix"),
])
def test_options_that_do_not_go_together_are_usage_errors(infile, tmp_path, capsys, args, message):
    """Like argparse's own errors: one line ``vsample encode: error: ...``, status 2, before
    any output.  An option that would change nothing (a seed without sampling) is one."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main(["encode", str(infile), *[a.format(out=out) for a in args]])
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and captured.out == ""
    assert captured.err.startswith("vsample encode: error: ") and captured.err.count("\n") == 1
    assert message in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_usage_errors_exit_with_2_in_a_fresh_process(infile, tmp_path, run_python):
    r = run_python("-m", "viterbisample.cli", "encode", str(infile), "--epoch", "2")
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.startswith(b"vsample encode: error: --epoch keys sampled segmentations only")
    assert r.stderr.count(b"\n") == 1
    model = tmp_path / "m.json"
    r = run_python("-m", "viterbisample.cli", "train", str(infile), "--vocab-size", "300", "-o", str(model),
                   "--seed", "1")
    assert r.returncode == 2 and not model.exists()
    assert r.stderr == b"vsample train: error: --seed seeds the --max-lines sample only: give --max-lines N too\n"


def test_seed_and_epoch_still_key_samples(infile, capsysbinary, default_tok):
    """With sampling, --seed and --epoch work as before, and their defaults are 0."""
    def ids(*extra):
        assert main(["encode", str(infile), "--format", "jsonl", "--alpha", "0.5", *extra]) == 0
        return [json.loads(x)["ids"] for x in capsysbinary.readouterr().out.split(b"\n")[:-1]]

    assert ids() == ids("--seed", "0", "--epoch", "0") == default_tok.encode_batch(LINES, alpha=0.5, seed=0)
    assert ids("--seed", "5", "--epoch", "2") == default_tok.encode_batch(LINES, alpha=0.5, seed=5, epoch=2)


def test_the_first_run_says_it_compiles_on_a_terminal(tmp_path):
    """With an empty kernel cache and stderr a terminal, one line says what the wait is;
    the next run, cached, says nothing.  (Stdout is a pipe: only stderr is a terminal.)"""
    import os
    import pty

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(root))
    said = []
    for _ in range(2):
        leader, follower = pty.openpty()
        done = subprocess.run([sys.executable, "-m", "viterbisample.cli", "encode"], input=b"hello\n",
                              stdout=subprocess.PIPE, stderr=follower, env=env, timeout=600)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        assert done.returncode == 0 and done.stdout.strip()
        said.append(b"".join(chunks).decode())
    assert said[0].count("vsample: compiling kernels, first run only") == 1
    assert "compiling" not in said[1]


# -- vocab and convert ------------------------------------------------------------------


def test_vocab_lists_every_id(default_tok, tmp_path, data_file):
    out = tmp_path / "vocab.tsv"
    assert main(["vocab", "-o", str(out)]) == 0
    rows = out.read_text("utf-8").splitlines()
    assert len(rows) == default_tok.vocab_size
    for i in (0, 3, 500, default_tok.vocab_size - 1):
        k, piece, score = rows[i].split("\t")
        assert (int(k), piece, float(score)) == (i, default_tok.id_to_piece(i), default_tok.score(i))
    model = data_file("sp_test_models/test_model.model")
    assert main(["vocab", "--model", str(model), "--format", "jsonl", "-o", str(out)]) == 0
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model))
    records = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert [r["piece"] for r in records] == [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def test_convert_between_formats(default_tok, tmp_path, data_file):
    ours = tmp_path / "model.json"
    default_tok.save(ours)
    hf = tmp_path / "tokenizer.json"
    assert main(["convert", str(ours), str(hf)]) == 0
    import tokenizers

    text = "Convert, then encode: the same ids. 吾輩は猫である"
    assert tokenizers.Tokenizer.from_file(str(hf)).encode(text, add_special_tokens=False).ids == default_tok.encode(text)
    back = tmp_path / "back.json"
    assert main(["convert", str(hf), str(back)]) == 0
    assert Tokenizer.load(back).model.pieces == default_tok.model.pieces
    # A SentencePiece model: its byte-level import (with a warning that ids change) ...
    sp_model = data_file("sp_test_models/test_model.model")
    assert main(["convert", str(sp_model), str(tmp_path / "sp.json")]) == 0
    from viterbisample.io.sentencepiece import load_sentencepiece

    assert Tokenizer.load(tmp_path / "sp.json").model == load_sentencepiece(sp_model).model
    # ... and as Hugging Face's SentencePiece conversion writes it, with the .model's ids.
    import sentencepiece as spm

    assert main(["convert", str(sp_model), str(tmp_path / "y.json"), "--to", "huggingface"]) == 0
    plain = "Convert a SentencePiece model, then encode the same ids"
    assert (tokenizers.Tokenizer.from_file(str(tmp_path / "y.json")).encode(plain, add_special_tokens=False).ids
            == spm.SentencePieceProcessor(model_file=str(sp_model)).encode(plain)
            == Tokenizer.load(tmp_path / "y.json").encode(plain))
    # A BytePiece model has its own ids: it is not written as a viterbisample model file.
    assert main(["convert", str(data_file("bytepiece/model.json")), str(tmp_path / "bp.json")]) == 1
    assert not (tmp_path / "bp.json").exists()
