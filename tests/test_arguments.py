"""Bad arguments, in the API and on the command line: always a ``TypeError`` or a
``ValueError`` that names the argument (one line on stderr for ``vsample``), never an
``OverflowError``, a ``MemoryError``, a ``LookupError`` or a crash.  Also the cases at
the edges that must work: ``alpha = inf`` (Viterbi), empty batches, and the byte-exact
``encode --format ids | decode`` round trip whatever the last line ends with.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from viterbisample import checks
from viterbisample.checks import MAX_THREADS, check_alpha, check_real
from viterbisample.cli import main

TEXT = "hello world"


# -- alpha --------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha,error,match", [
    (10**400, ValueError, "largest float"),
    (-(10**400), ValueError, "largest float"),
    (math.nan, ValueError, "alpha must be finite and >= 0, or inf"),
    (-1, ValueError, "alpha must be finite and >= 0, or inf"),
    (-math.inf, ValueError, "alpha must be finite and >= 0, or inf"),
    ("0.5", TypeError, "alpha must be a real number"),
    (True, TypeError, "alpha must be a real number"),
    (None, TypeError, "alpha must be a real number"),
])
def test_bad_alpha_is_a_type_or_value_error(default_tok, alpha, error, match):
    with pytest.raises(error, match=match):
        check_alpha(alpha)
    with pytest.raises(error, match=match):
        default_tok.sample(TEXT, alpha, 2)
    with pytest.raises(error, match=match):
        default_tok.sample_distinct(TEXT, alpha, 2)


def test_alpha_accepts_zero_to_inf():
    assert check_alpha(0) == 0.0 and math.copysign(1, check_alpha(-0.0)) == 1.0
    assert check_alpha(1.7976931348623157e308) == 1.7976931348623157e308
    assert check_alpha(np.float32(0.5)) == 0.5
    assert check_alpha(math.inf) == math.inf
    with pytest.raises(ValueError, match="x must be finite and >= 0, got inf"):
        check_real(math.inf, "x")


def test_infinite_alpha_is_the_viterbi_path(default_tok):
    viterbi = default_tok.encode(TEXT)
    assert default_tok.sample(TEXT, math.inf, 3, seed=1) == [viterbi] * 3
    ids, offsets = default_tok.sample_batch_arrays([TEXT, ""], math.inf, 2)
    assert offsets.tolist() == [0, len(viterbi), 2 * len(viterbi), 2 * len(viterbi), 2 * len(viterbi)]
    assert ids[: len(viterbi)].tolist() == viterbi
    # Without replacement: q_inf has one path of probability 1, so it is the only one drawn.
    assert default_tok.sample_distinct(TEXT, math.inf, 3) == [(viterbi, 0.0, 1.0)]


# -- counts that cannot fit in memory or in the kernels' integers -------------------------


@pytest.mark.parametrize("call", [
    lambda tok: tok.sample(TEXT, 0.1, n=2**64),
    lambda tok: tok.sample(TEXT, 0.1, n=10**12),
    lambda tok: tok.sample_batch([TEXT, "x"], 0.1, 10**12),
    lambda tok: tok.sample_batch_arrays([TEXT], 0.1, 10**12),
    lambda tok: tok.sample("", 0.1, n=10**12),  # no ids, but a list and an offset per sample
    lambda tok: tok.nbest(TEXT, 2**64),
    lambda tok: tok.nbest(TEXT, 10**12),
    lambda tok: tok.sample_distinct(TEXT, 0.1, 10**12),
    lambda tok: tok.sample_distinct("", 0.1, 2**64),
    lambda tok: tok.sample(TEXT, 0.1, 10**12, replace=False),
])
def test_counts_beyond_memory_are_refused_with_the_estimate(default_tok, call):
    with pytest.raises(ValueError, match=r"would need about [0-9.e+]+ GB of memory, more than the"):
        call(default_tok)


def test_the_estimate_is_compared_with_the_memory_limit(default_tok, monkeypatch):
    assert default_tok.sample(TEXT, 0.1, 1000, seed=0)[0] == default_tok.encode(TEXT, 0.1, seed=0)
    monkeypatch.setattr(checks, "memory_limit", lambda: 100_000)  # 100 kB
    with pytest.raises(ValueError, match=r"n = 1000 samples of 1 text\(s\) \(11 bytes\) would need"):
        default_tok.sample(TEXT, 0.1, 1000)
    with pytest.raises(ValueError, match="split the text or lower k"):
        default_tok.nbest("a" * 1000, 10)
    assert len(default_tok.nbest("ab", 10)) == 2  # at most 2 paths: small whatever k


def test_counts_beyond_the_kernels_integers_without_a_memory_limit(default_tok, monkeypatch):
    monkeypatch.setattr(checks, "memory_limit", lambda: None)  # e.g. a system that does not tell
    with pytest.raises(ValueError, match="n must be <= 9223372036854775807"):
        default_tok.sample_batch([], 0.1, 2**64)
    with pytest.raises(ValueError, match="k must be <= 2147483647"):
        default_tok.nbest_batch([], 2**31)
    with pytest.raises(ValueError, match="first_index must be <="):
        default_tok.sample_distinct_batch(["a", "b"], 0.1, 1, first_index=2**64 - 1)


@pytest.mark.parametrize("n,error", [(-1, ValueError), (2.0, TypeError), (True, TypeError), ("3", TypeError)])
def test_bad_counts(default_tok, n, error):
    for call in (lambda: default_tok.sample(TEXT, 0.1, n), lambda: default_tok.sample_distinct(TEXT, 0.1, n),
                 lambda: default_tok.nbest(TEXT, n)):
        with pytest.raises(error, match=r"\b[nk] must be"):
            call()


# -- threads ------------------------------------------------------------------------------


@pytest.mark.parametrize("threads,error,match", [
    (2**63, ValueError, f"num_threads must be <= {MAX_THREADS}, got 9223372036854775808"),
    (MAX_THREADS + 1, ValueError, f"num_threads must be <= {MAX_THREADS}"),
    (0, ValueError, "num_threads must be >= 1"),
    (1.0, TypeError, "num_threads must be an int"),
])
def test_bad_thread_counts(default_tok, threads, error, match):
    for call in (lambda: default_tok.encode_batch([TEXT], num_threads=threads),
                 lambda: default_tok.nbest_batch([TEXT], 2, num_threads=threads),
                 lambda: default_tok.sample_batch_arrays([TEXT], 0.1, 2, num_threads=threads)):
        with pytest.raises(error, match=match):
            call()


def test_the_largest_thread_count_is_accepted(default_tok):
    assert default_tok.encode_batch([TEXT], num_threads=MAX_THREADS) == [default_tok.encode(TEXT)]


# -- empty batches ------------------------------------------------------------------------


def test_empty_batches_give_empty_results(default_tok):
    empty = [
        default_tok.encode_batch_arrays([]),
        default_tok.encode_batch_arrays([], alpha=0.5),
        default_tok.sample_batch_arrays([], 0.5, 3),
        default_tok.sample_batch_arrays([TEXT], 0.5, 0),
    ]
    for ids, offsets in empty:
        assert ids.dtype == np.int32 and ids.shape == (0,)
        assert offsets.dtype == np.int64 and offsets.tolist() == [0]
    assert default_tok.sample_batch([], 0.5, 3) == []
    assert default_tok.nbest_batch([], 3) == [] and default_tok.sample_distinct_batch([], 0.5, 3) == []


def test_alpha_for_length_without_bytes_is_a_clear_value_error(default_tok):
    for texts in ([], [b"", ""]):
        with pytest.raises(ValueError, match="needs texts with at least one byte"):
            default_tok.alpha_for_length(texts, 0.1)
    with pytest.raises(ValueError, match="extra_tokens must be at most"):
        default_tok.alpha_for_length([TEXT], 10**400)
    with pytest.raises(ValueError, match="extra_tokens must be finite"):
        default_tok.alpha_for_length([TEXT], math.inf)
    with pytest.raises(TypeError, match="extra_tokens must be a real number"):
        default_tok.alpha_for_length([TEXT], "0.1")


# -- decode -------------------------------------------------------------------------------


@pytest.mark.parametrize("ids,error,match", [
    (memoryview(b"\x05\x06"), TypeError, "got memoryview"),
    (bytearray(b"\x05"), TypeError, "got bytearray"),
    (b"\x05", TypeError, "got bytes"),
    (5, TypeError, "ids must be a sequence of ints, got int"),
    ({5, 6}, TypeError, "ids must be a sequence of ints, got set"),
    ([10**5000], ValueError, "token id an int of about 5001 digits is out of range"),
    ([2**64], ValueError, "token id 18446744073709551616 is out of range"),
    (np.array([2**64 - 1], np.uint64), ValueError, "is out of range"),
    ([None], TypeError, "ids must be ints"),
])
def test_bad_ids(default_tok, ids, error, match):
    with pytest.raises(error, match=match):
        default_tok.decode_bytes(ids)
    with pytest.raises(error, match=match):
        default_tok.decode(ids)


def test_decode_error_handler_is_checked(default_tok):
    ids = default_tok.encode(TEXT)
    with pytest.raises(ValueError, match="errors must be an error handler.*'bogus'"):
        default_tok.decode(ids, errors="bogus")  # bytes.decode raises LookupError, if ever
    with pytest.raises(TypeError, match="errors must be the name"):
        default_tok.decode(ids, errors=None)
    assert default_tok.decode(np.array(ids, np.int16), errors="strict") == TEXT


# -- the command line ---------------------------------------------------------------------


@pytest.fixture()
def infile(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"hello world\nthe cat\n")
    return str(path)


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and "usage:" not in err
    return err


@pytest.mark.parametrize("args,message", [
    (["encode", "{f}", "--alpha", "x"], "vsample encode: error: argument --alpha: invalid float value: 'x'"),
    (["encode", "{f}", "--alpha", "1e400"], "vsample encode: error: argument --alpha: 1e400 is too large for a float"),
    (["encode", "{f}", "--alpha", "1_0"], "argument --alpha: invalid float value: '1_0'"),
    (["encode", "{f}", "--seed", "1_000"], "vsample encode: error: argument --seed: invalid int value: '1_000'"),
    (["encode", "{f}", "--samples", "١٢", "--alpha", "1"], "argument --samples: invalid int value: '١٢'"),
    (["encode", "{f}", "--threads", "1.5"], "argument --threads: invalid int value: '1.5'"),
    (["encode", "{f}", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["encode", "{f}", "--no-such-option"], "vsample: error: unrecognized arguments: --no-such-option"),
    (["stats", "{f}", "--alpha", "one"], "vsample stats: error: argument --alpha: invalid float value: 'one'"),
    (["train", "{f}", "-o", "{m}", "--vocab-size", str(10**30)],
     "vsample train: error: argument --vocab-size: must be an integer from 1 to 2147483647"),
    (["train", "{f}", "-o", "{m}", "--vocab-size", "300", "--max-piece-bytes", "0"],
     "argument --max-piece-bytes: must be an integer from 1 to 64, got 0"),
    (["train", "{f}", "-o", "{m}", "--vocab-size", "300", "--max-piece-bytes", "65"],
     "argument --max-piece-bytes: must be an integer from 1 to 64, got 65"),
    (["train", "{f}", "-o", "{m}", "--vocab-size", "300", "--seed", str(2**64)],
     "argument --seed: must be an integer from 0 to 18446744073709551615"),
    (["train", "{f}", "-o", "{m}", "--vocab-size", "300", "--threads", "1000000000"],
     f"argument --threads: must be an integer from 1 to {MAX_THREADS}"),
    (["train", "{f}", "-o", "{m}"], "vsample train: error: the following arguments are required: --vocab-size"),
    ([], "vsample: error: the following arguments are required: command"),
])
def test_usage_errors_are_one_line_with_status_2(infile, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main([a.format(f=infile, m=tmp_path / "m.json") for a in args])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert message in one_line(captured.err) and captured.out == ""
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("args,message", [
    (["--samples", str(10**12), "--alpha", "0.1"], "would need about"),
    (["--samples", str(2**64), "--alpha", "0.1"], "--samples must be <= 9223372036854775807"),
    (["--samples", "0", "--alpha", "0.1"], "--samples must be >= 1"),
    (["--nbest", "0"], "--nbest must be >= 1"),
    (["--nbest", str(10**12)], "--nbest must be <= 2147483647"),
    (["--threads", "1000000000"], f"--threads must be <= {MAX_THREADS}, got 1000000000"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--seed", str(2**64), "--alpha", "0.1"], "--seed must be < 2**64"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--epoch", "-1"], "--epoch must be >= 0, got -1"),
    (["--alpha", "nan"], "--alpha must be finite and >= 0, or inf, got nan"),
    (["--alpha", "-1"], "--alpha must be finite and >= 0"),
    (["--alpha=-inf"], "--alpha must be finite and >= 0"),
    (["--entropy-per-byte", "nan"], "--entropy-per-byte must be finite and >= 0, got nan"),
    (["--entropy-per-byte", "inf"], "--entropy-per-byte must be finite and >= 0, got inf"),
    (["--entropy-per-byte", "-1"], "--entropy-per-byte must be finite and >= 0, got -1"),
])
def test_bad_encode_values_are_one_line_with_status_1(infile, capsys, args, message):
    assert main(["encode", infile, "--format", "ids", *args]) == 1
    captured = capsys.readouterr()
    assert one_line(captured.err).startswith("vsample: error: ") and message in captured.err
    assert captured.out == ""


def test_stats_threads_are_checked(infile, capsys):
    assert main(["stats", infile, "--threads", str(2**63)]) == 1
    assert f"--threads must be <= {MAX_THREADS}" in one_line(capsys.readouterr().err)


def test_usage_errors_in_a_fresh_process(infile, run_python):
    r = run_python("-m", "viterbisample.cli", "encode", infile, "--alpha", "x")
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr == b"vsample encode: error: argument --alpha: invalid float value: 'x'\n"


def test_alpha_inf_on_the_command_line_is_viterbi(infile, capsysbinary):
    assert main(["encode", infile, "--format", "ids"]) == 0
    viterbi = capsysbinary.readouterr().out
    assert main(["encode", infile, "--format", "ids", "--alpha", "inf", "--seed", "3"]) == 0
    assert capsysbinary.readouterr().out == viterbi
    assert main(["encode", infile, "--format", "ids", "--alpha", "inf", "--samples", "2"]) == 0
    rows = capsysbinary.readouterr().out.split(b"\n")
    assert [r.split(b"\t") for r in rows[:-1]] == [[v, v] for v in viterbi.split(b"\n")[:-1]]


@pytest.mark.parametrize("line,message", [
    ("1_000", "expected token ids (ASCII digits)"),
    ("١٢", "expected token ids (ASCII digits)"),
    ("+5", "expected token ids (ASCII digits)"),
    ("-1", "expected token ids (ASCII digits)"),
    ("5 x", "expected token ids (ASCII digits)"),
    ("7" * 5000, "token id 777777777777777777777777777777... is out of range"),
    ("99999999999999999999", "token id 99999999999999999999 is out of range"),
    ("1 99999999", "token id 99999999 is out of range"),
])
def test_decode_accepts_ascii_digits_only(tmp_path, capsys, line, message):
    path = tmp_path / "ids.txt"
    path.write_bytes(b"100 101\n" + line.encode() + b"\n")
    assert main(["decode", str(path)]) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("vsample: error: line 2: ") and message in err


def test_decode_takes_leading_zeros_and_any_spacing(tmp_path, capsysbinary, default_tok):
    ids = default_tok.encode(TEXT)
    path = tmp_path / "ids.txt"
    path.write_bytes(b"  ".join(b"000" + str(i).encode() for i in ids) + b" \t junk\n")
    assert main(["decode", str(path)]) == 0
    assert capsysbinary.readouterr().out == TEXT.encode() + b"\n"


# -- encode --format ids | decode: the exact bytes back ----------------------------------


@pytest.mark.parametrize("data", [
    b"",
    b"\n",
    b"\n\n",
    b"one line",
    b"one line\n",
    b"first\nlast without newline",
    b"crlf\r\nlines\r\n",
    b"crlf\r\nlast\r",
    b"\nempty lines\n\n\nbetween\n\n",
    b"\xff\xfe not UTF-8 \xc3\n\x80",
    "吾輩は猫である\n名前はまだ無い".encode(),
])
@pytest.mark.parametrize("extra", [[], ["--alpha", "0.3", "--seed", "2"], ["--alpha", "0.3", "--samples", "3"]])
def test_ids_round_trip_is_byte_exact(tmp_path, data, extra):
    src, ids, back = tmp_path / "in.txt", tmp_path / "ids.txt", tmp_path / "back.txt"
    src.write_bytes(data)
    assert main(["encode", str(src), "--format", "ids", "-o", str(ids), *extra]) == 0
    assert ids.read_bytes().endswith(b"\n") == data.endswith(b"\n")
    assert ids.read_bytes().count(b"\n") == data.count(b"\n")
    assert main(["decode", str(ids), "-o", str(back)]) == 0
    assert back.read_bytes() == data


@pytest.mark.parametrize("fmt", ["pieces", "jsonl"])
def test_every_text_format_ends_like_the_input(tmp_path, capsysbinary, fmt):
    src = tmp_path / "in.txt"
    for data in (b"a\nb", b"a\nb\n"):
        src.write_bytes(data)
        assert main(["encode", str(src), "--format", fmt]) == 0
        out = capsysbinary.readouterr().out
        assert out.count(b"\n") == data.count(b"\n") and out.endswith(b"\n") == data.endswith(b"\n")


def test_round_trip_through_pipes(tmp_path, run_python):
    data = b"first\r\n\n\xffsecond\nno newline"
    enc = run_python("-m", "viterbisample.cli", "encode", "--format", "ids", stdin=data)
    assert enc.returncode == 0, enc.stderr
    dec = run_python("-m", "viterbisample.cli", "decode", stdin=enc.stdout)
    assert dec.returncode == 0 and dec.stderr == b""
    assert dec.stdout == data


def test_several_input_files_end_like_the_last(tmp_path, capsysbinary):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"no newline")  # a line of its own, as before: files are not glued
    b.write_bytes(b"")
    assert main(["encode", str(a), str(b), str(a), "--format", "ids"]) == 0
    out = capsysbinary.readouterr().out
    assert out.count(b"\n") == 1 and not out.endswith(b"\n")
