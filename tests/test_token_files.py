"""Corpus-to-token files: npy and Megatron's indexed pair, read back independently."""

from __future__ import annotations

import doctest
import io
import os
import re
import signal
import stat
import subprocess
import sys
import struct
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from viterbisample import Tokenizer, lines as lines_module, progress as progress_module
from viterbisample import token_files
from viterbisample.cli import main
from viterbisample.model import Model
from viterbisample.normalize import SentencePieceNormalizer
from viterbisample.progress import Progress
from viterbisample.token_files import read_megatron, write_token_file


@pytest.fixture(scope="module")
def lines(en_lines) -> list[bytes]:
    return en_lines[300:900]


def expected_ids(tok, docs, bos=False, eos=True, **kw) -> list[int]:
    out: list[int] = []
    for ids in tok.encode_batch(docs, **kw):
        out += [tok.bos_id] * bos + ids + [tok.eos_id] * eos
    return out


def read_megatron_by_hand(prefix: Path):
    """The .idx fields, unpacked with struct straight from the published layout."""
    raw = Path(f"{prefix}.idx").read_bytes()
    magic, version, code, n_seq, n_doc = struct.unpack_from("<9sQBQQ", raw, 0)
    at = struct.calcsize("<9sQBQQ")
    sizes = list(struct.unpack_from(f"<{n_seq}i", raw, at))
    at += 4 * n_seq
    pointers = list(struct.unpack_from(f"<{n_seq}q", raw, at))
    at += 8 * n_seq
    doc_index = list(struct.unpack_from(f"<{n_doc}q", raw, at))
    assert at + 8 * n_doc == len(raw)
    return magic, version, code, sizes, pointers, doc_index


@pytest.mark.parametrize("alpha", [None, 0.1])
def test_npy_round_trip_and_batch_independence(default_tok, lines, tmp_path, alpha):
    ref = expected_ids(default_tok, lines, alpha=alpha, seed=3, epoch=1)
    for batch_bytes, threads in ((1 << 22, 2), (500, 1)):
        path = tmp_path / f"t{batch_bytes}.npy"
        summary = write_token_file(default_tok, iter(lines), path, "npy", alpha=alpha, seed=3, epoch=1,
                                   num_threads=threads, batch_bytes=batch_bytes)
        arr = np.load(path, mmap_mode="r")
        assert arr.dtype == np.uint16 and arr.tolist() == ref
        assert summary["documents"] == len(lines) and summary["tokens"] == len(ref)


def test_megatron_layout_for_three_documents(default_tok, tmp_path):
    docs = [b"one", b"two words", b"3"]
    write_token_file(default_tok, iter(docs), tmp_path / "d", "megatron")
    magic, version, code, sizes, pointers, doc_index = read_megatron_by_hand(tmp_path / "d")
    lengths = [len(default_tok.encode(d)) + 1 for d in docs]
    assert (magic, version, code) == (b"MMIDIDX\x00\x00", 1, 8)
    assert sizes == lengths
    assert pointers == [0, 2 * lengths[0], 2 * (lengths[0] + lengths[1])]
    assert doc_index == [0, 1, 2, 3]
    tokens = np.fromfile(tmp_path / "d.bin", "<u2")
    assert tokens.tolist() == expected_ids(default_tok, docs)
    t, s, p, d = read_megatron(tmp_path / "d")
    assert t.tolist() == tokens.tolist() and s.tolist() == sizes and p.tolist() == pointers


def test_blank_line_documents(default_tok, tmp_path):
    lines = [b"first para", b"still first", b"", b"", b"second", b"\r", b"third"]
    write_token_file(default_tok, iter(lines), tmp_path / "b", "megatron", doc_sep="blank")
    docs = [b"first para\nstill first", b"second", b"third"]
    t, sizes, _, doc_index = read_megatron(tmp_path / "b")
    assert t.tolist() == expected_ids(default_tok, docs)
    assert doc_index.tolist() == [0, 1, 2, 3] and len(sizes) == 3


def test_large_vocabularies_use_32_bit_ids(tmp_path):
    rng = np.random.default_rng(1)
    extra = {bytes(rng.integers(97, 123, 4).tolist()) for _ in range(80000)}
    pieces = [bytes([b]) for b in range(256)] + sorted(extra)
    big = Tokenizer.from_pieces(pieces, -rng.uniform(1, 10, len(pieces)))
    assert big.vocab_size > 65536
    docs = [b"hello world", b"zzzz qqqq"]
    write_token_file(big, iter(docs), tmp_path / "big.npy", "npy")
    write_token_file(big, iter(docs), tmp_path / "big", "megatron")
    assert np.load(tmp_path / "big.npy").dtype == np.uint32
    t, *_ = read_megatron(tmp_path / "big")
    assert read_megatron_by_hand(tmp_path / "big")[2] == 4 and t.dtype == np.int32
    assert t.tolist() == np.load(tmp_path / "big.npy").tolist() == expected_ids(big, docs)


def test_failure_leaves_nothing_behind(default_tok, lines, tmp_path):
    def broken():
        yield from lines[:100]
        raise KeyboardInterrupt

    for fmt, target in (("npy", tmp_path / "x.npy"), ("megatron", tmp_path / "x")):
        with pytest.raises(KeyboardInterrupt):
            write_token_file(default_tok, broken(), target, fmt, batch_bytes=200)
    assert list(tmp_path.iterdir()) == []


def test_empty_input(default_tok, tmp_path):
    write_token_file(default_tok, iter([]), tmp_path / "e.npy", "npy")
    assert np.load(tmp_path / "e.npy").shape == (0,)
    write_token_file(default_tok, iter([]), tmp_path / "e", "megatron")
    t, s, p, d = read_megatron(tmp_path / "e")
    assert len(t) == len(s) == len(p) == 0 and d.tolist() == [0]


def test_cli_formats(default_tok, lines, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"\n".join(lines[:50]) + b"\n")
    assert main(["encode", str(src), "--format", "npy", "-o", str(tmp_path / "o.npy"), "--alpha", "0.2", "--seed", "9"]) == 0
    assert np.load(tmp_path / "o.npy").tolist() == expected_ids(default_tok, lines[:50], alpha=0.2, seed=9)
    assert main(["encode", str(src), "--format", "megatron", "-o", str(tmp_path / "m")]) == 0
    assert read_megatron(tmp_path / "m")[0].tolist() == expected_ids(default_tok, lines[:50])
    with pytest.raises(SystemExit) as exit_:  # needs -o: a usage error
        main(["encode", str(src), "--format", "npy"])
    assert exit_.value.code == 2


# --- what a document is: markers around it, blank lines, names, progress ----------------

DOCS = [b"one", b"two words", b"3"]


@pytest.mark.parametrize("bos,eos", [(True, True), (True, False), (False, False)])
def test_bos_and_eos_around_every_document(default_tok, tmp_path, bos, eos):
    expected = expected_ids(default_tok, DOCS, bos=bos, eos=eos)
    npy = write_token_file(default_tok, iter(DOCS), tmp_path / "t.npy", "npy", prepend_bos=bos, append_eod=eos)
    assert np.load(tmp_path / "t.npy").tolist() == expected
    pair = write_token_file(default_tok, iter(DOCS), tmp_path / "t", "megatron", prepend_bos=bos, append_eod=eos)
    tokens, sizes, pointers, doc_index = read_megatron(tmp_path / "t")
    assert tokens.tolist() == expected
    assert sizes.tolist() == [len(default_tok.encode(d)) + bos + eos for d in DOCS]
    assert doc_index.tolist() == [0, 1, 2, 3]
    for start, size in zip(pointers // 2, sizes):  # each sequence is one marked document
        sequence = tokens[start : start + size].tolist()
        assert (sequence[0] == default_tok.bos_id) == bos and (sequence[-1] == default_tok.eos_id) == eos
    assert npy["documents"] == pair["documents"] == 3 and npy["tokens"] == pair["tokens"] == len(expected)


def test_a_model_without_bos_is_refused_before_anything_is_written(tmp_path, capsys):
    no_bos = Tokenizer.from_pieces([bytes([b]) for b in range(256)] + [b"ab"], [-5.0] * 257, ["<pad>", "<eos>"])
    message = ("the model has no <bos> or <s> special token to start each document with "
               "(its special tokens: <pad>, <eos>)")
    with pytest.raises(ValueError, match=re.escape(message)):
        write_token_file(no_bos, iter(DOCS), tmp_path / "t", "megatron", prepend_bos=True)
    no_bos.save(tmp_path / "m.json")
    (tmp_path / "in.txt").write_bytes(b"ab\nab\n")
    command = ["encode", str(tmp_path / "in.txt"), "--model", str(tmp_path / "m.json"), "--format", "npy",
               "-o", str(tmp_path / "t.npy"), "--entropy-per-byte", "0.2"]
    assert main([*command, "--add-bos"]) == 1
    # Before calibration reads the input, too: no "alpha = ..." line, the error alone.
    assert capsys.readouterr().err == f"vsample: error: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "m.json"]
    assert main(command) == 0  # its <eos> is all a token file needs by default
    assert np.load(tmp_path / "t.npy").tolist().count(no_bos.eos_id) == 2


def test_blank_lines_are_no_documents(default_tok, tmp_path):
    """Empty lines and lines of CRs (an empty line of a CRLF file) give no document: every
    document k of the file is the k-th non-blank line, sampled with stream k."""
    lines = [b"", b"first", b"", b"\r", b"second\r", b"\r\r", b"third", b""]
    docs = [b"first", b"second\r", b"third"]
    for alpha in (None, 0.5):
        summary = write_token_file(default_tok, iter(lines), tmp_path / "b", "megatron", alpha=alpha, seed=2,
                                   prepend_bos=True, batch_bytes=4)
        tokens, sizes, _, doc_index = read_megatron(tmp_path / "b")
        assert tokens.tolist() == expected_ids(default_tok, docs, bos=True, alpha=alpha, seed=2)
        assert summary["documents"] == len(sizes) == 3 and doc_index.tolist() == [0, 1, 2, 3]
        assert summary["bytes"] == sum(map(len, docs))
    summary = write_token_file(default_tok, iter([b"", b"\r"]), tmp_path / "none.npy", "npy", prepend_bos=True)
    assert np.load(tmp_path / "none.npy").shape == (0,) and summary["documents"] == 0


def test_a_document_the_normalizer_empties_is_left_out(tmp_path):
    """SentencePiece's whitespace rules leave nothing of a line of spaces: it is no
    document, and the documents after it keep their input's sampling streams."""
    pieces = [bytes([b]) for b in range(256)] + [b" a", b" c", b" a b"]
    scores = [-5.0] * 256 + [-3.0, -3.0, -4.0]
    tok = Tokenizer(Model(pieces, scores, normalizer=SentencePieceNormalizer()))
    assert tok.encode(b"   ") == []
    summary = write_token_file(tok, iter([b"a b", b"   ", b"c"]), tmp_path / "n", "megatron", alpha=0.5, seed=1)
    tokens, sizes, _, doc_index = read_megatron(tmp_path / "n")
    assert summary["documents"] == len(sizes) == 2 and doc_index.tolist() == [0, 1, 2]
    first, third = tok.encode(b"a b", 0.5, 1, index=0), tok.encode(b"c", 0.5, 1, index=2)
    assert tokens.tolist() == first + [tok.eos_id] + third + [tok.eos_id]


def test_megatron_output_named_by_its_bin_or_idx_or_refused_as_npy(default_tok, tmp_path, capsysbinary):
    """``-o out.bin`` and ``-o out.idx`` name the pair out.bin + out.idx; ``-o out.npy`` is
    an npy name given to the wrong format: refused, nothing written."""
    pair = [str(tmp_path / "a.bin"), str(tmp_path / "a.idx")]
    for name in ("a.bin", "a.idx", "a"):
        assert write_token_file(default_tok, iter(DOCS), tmp_path / name, "megatron")["files"] == pair
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.idx"]
    for name in ("a.bin", "a.idx", "a"):
        assert read_megatron(tmp_path / name)[0].tolist() == expected_ids(default_tok, DOCS)
    with pytest.raises(ValueError, match=r"a\.npy ends in \.npy.*give the prefix .*a \(for .*a\.bin and .*a\.idx\)"):
        write_token_file(default_tok, iter(DOCS), tmp_path / "a.npy", "megatron")

    src = tmp_path / "in.txt"
    src.write_bytes(b"\n".join(DOCS) + b"\n")
    assert main(["encode", str(src), "--format", "megatron", "-o", str(tmp_path / "c.bin")]) == 0
    assert read_megatron(tmp_path / "c")[0].tolist() == expected_ids(default_tok, DOCS)
    with pytest.raises(SystemExit) as exit_:
        main(["encode", str(src), "--format", "megatron", "-o", str(tmp_path / "d.npy")])
    err = capsysbinary.readouterr().err
    assert exit_.value.code == 2 and err.count(b"\n") == 1
    assert err.startswith(b"vsample encode: error: the Megatron prefix ") and b"d.npy ends in .npy" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.idx", "c.bin", "c.idx", "in.txt"]


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so that the progress line is drawn."""

    def isatty(self) -> bool:
        return True


def shares(drawn: str) -> list[float]:
    """The percentages of the progress lines drawn."""
    return [float(x) for x in re.findall(r" ([0-9.]+)%", drawn)]


def test_progress_shows_100_percent_only_at_the_end():
    term = Terminal()
    Progress(True, term).throughput(1001, 7, 1000)  # an input that grew while it was read
    Progress(True, term).throughput(10, 7, None, final=True)  # of unknown size, done
    Progress(True, term).throughput(5, 7, 1000, final=True)  # one that shrank, done
    Progress(True, term).throughput(5, 7, None)  # unknown, running: no share at all
    assert shares(term.getvalue()) == [99.9, 100.0, 100.0]


@pytest.mark.parametrize("fmt", ["ids", "npy"])
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_the_progress_line_of_the_command_ends_at_100_percent(tmp_path, monkeypatch, fmt, source):
    """On a terminal, whatever the input: blank lines, CRs, no LF at the end, stdin."""
    data = b"\nfirst line\n\n\r\nsecond line\r\nno newline at the end"
    src = tmp_path / "in.txt"
    src.write_bytes(data)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    if source == "stdin":
        monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))
    inputs = [str(src)] if source == "file" else []
    assert main(["encode", *inputs, "--format", fmt, "-o", str(tmp_path / f"out.{fmt}")]) == 0
    drawn = term.getvalue()
    assert shares(drawn)[-1] == 100.0 and max(shares(drawn)) == 100.0, drawn
    assert drawn.endswith("\n") and "tokens" in drawn


@pytest.mark.parametrize("module", [lines_module, progress_module, token_files])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# --- the pair under interruption, and outputs that are links, pipes or devices ----------

OLD_DOCS = [b"old one", b"old two"]
NEW_DOCS = [b"a longer new document", b"and another one", b"three"]


class Killed(BaseException):
    """Stands for the process dying at that instant."""


KILL_AT_RENAME = r"""
import os, signal, sys
from viterbisample import Tokenizer
from viterbisample.token_files import write_token_file
prefix, when, docs = sys.argv[1], int(sys.argv[2]), [d.encode() for d in sys.argv[3:]]
real_replace, renames = os.replace, []
def replace(src, dst):
    renames.append(dst)
    if len(renames) == when:  # die before this rename
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
    if len(renames) == -when:  # die right after it
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
write_token_file(Tokenizer.default(), iter(docs), prefix, "megatron")
"""


@pytest.mark.parametrize("when", [1, 2, -2])  # before the .bin's rename, before the .idx's, after it
def test_a_write_killed_between_the_renames_leaves_the_old_pair_or_the_new(default_tok, tmp_path, when):
    """A real SIGKILL at each step of replacing a pair: a reader then finds the old pair
    or the new one, whole (``recover_megatron``)."""
    prefix = tmp_path / "p"
    write_token_file(default_tok, iter(OLD_DOCS), prefix, "megatron")
    old = [a.tolist() for a in read_megatron(prefix)]
    done = subprocess.run([sys.executable, "-c", KILL_AT_RENAME, str(prefix), str(when)]
                          + [d.decode() for d in NEW_DOCS], capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    got = [a.tolist() for a in read_megatron(prefix)]
    if when > 0:
        assert got == old
    else:
        assert got[0] == expected_ids(default_tok, NEW_DOCS)
    # The kept old pair is gone; SIGKILL leaves the staging folder, under a name that says
    # what it is.
    left = {p.name for p in tmp_path.iterdir()} - {"p.bin", "p.idx"}
    assert all(name.startswith(".p.bin.vsample-tmp-") for name in left), left
    write_token_file(default_tok, iter(NEW_DOCS), prefix, "megatron")
    assert read_megatron(prefix)[0].tolist() == expected_ids(default_tok, NEW_DOCS)


@pytest.mark.parametrize("killed_at", [1, 2])  # before the .bin's rename, or between the two
def test_an_exception_between_the_renames_puts_the_old_pair_back(default_tok, tmp_path, monkeypatch, killed_at):
    prefix = tmp_path / "p"
    write_token_file(default_tok, iter(OLD_DOCS), prefix, "megatron")
    old = [a.tolist() for a in read_megatron(prefix)]
    renamed = []
    real_replace = os.replace

    def replace(src, dst):
        renamed.append(Path(dst).name)
        if len(renamed) == killed_at:
            raise Killed
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Killed):
        write_token_file(default_tok, iter(NEW_DOCS), prefix, "megatron")
    monkeypatch.undo()
    assert renamed[0] == "p.bin"  # the .idx, the pair's commit mark, goes last
    assert {p.name for p in tmp_path.iterdir()} == {"p.bin", "p.idx"}  # no temporary left
    assert [a.tolist() for a in read_megatron(prefix)] == old


def test_a_first_write_killed_half_way_is_reported(default_tok, tmp_path, monkeypatch):
    """With no old pair to keep, a .bin without its .idx is an error that says so."""
    real_replace = os.replace

    def replace(src, dst):
        real_replace(src, dst)
        if str(dst).endswith(".bin"):
            raise Killed

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Killed):
        write_token_file(default_tok, iter(NEW_DOCS), tmp_path / "p", "megatron")
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError, match="no Megatron index .the .bin exists: its write was interrupted"):
        read_megatron(tmp_path / "p")


def test_a_bin_and_idx_of_different_writes_are_refused(default_tok, tmp_path):
    write_token_file(default_tok, iter(OLD_DOCS), tmp_path / "a", "megatron")
    write_token_file(default_tok, iter(NEW_DOCS), tmp_path / "b", "megatron")
    (tmp_path / "a.bin").write_bytes((tmp_path / "b.bin").read_bytes())
    with pytest.raises(ValueError, match=r"a\.bin holds \d+ bytes but .*a\.idx describes \d+: the two files are not one pair"):
        read_megatron(tmp_path / "a")


def test_a_malformed_index_is_refused(default_tok, tmp_path):
    write_token_file(default_tok, iter(OLD_DOCS), tmp_path / "a", "megatron")
    idx = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "a.idx").write_bytes(idx[:-8])
    with pytest.raises(ValueError, match="truncated"):
        read_megatron(tmp_path / "a")
    (tmp_path / "a.idx").write_bytes(idx[:-8] + struct.pack("<q", 5))  # the document index ends at 5, not 2
    with pytest.raises(ValueError, match="document index does not end at the 2 sequences"):
        read_megatron(tmp_path / "a")


def test_token_files_onto_a_symlink_a_device_and_fifos(default_tok, tmp_path):
    expected = expected_ids(default_tok, OLD_DOCS)
    (tmp_path / "real.npy").write_bytes(b"old")
    (tmp_path / "link.npy").symlink_to("real.npy")
    write_token_file(default_tok, iter(OLD_DOCS), tmp_path / "link.npy", "npy")
    assert (tmp_path / "link.npy").is_symlink()
    assert np.load(tmp_path / "real.npy").tolist() == expected

    write_token_file(default_tok, iter(OLD_DOCS), os.devnull, "npy")  # seekable: written directly
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)

    def read_fifo(path: Path) -> tuple[threading.Thread, list[bytes]]:
        os.mkfifo(path)
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(path.read_bytes()), daemon=True)
        reader.start()
        return reader, got

    reader, got = read_fifo(tmp_path / "pipe.npy")  # npy through a FIFO: staged, then copied
    write_token_file(default_tok, iter(OLD_DOCS), tmp_path / "pipe.npy", "npy")
    reader.join(10)
    assert np.load(io.BytesIO(got[0])).tolist() == expected

    reader, got = read_fifo(tmp_path / "m.bin")  # a .bin FIFO is streamed; the .idx is a file
    write_token_file(default_tok, iter(OLD_DOCS), tmp_path / "m", "megatron")
    reader.join(10)
    assert np.frombuffer(got[0], "<u2").tolist() == expected
    assert read_megatron_by_hand(tmp_path / "m")[3] == [len(default_tok.encode(d)) + 1 for d in OLD_DOCS]
    assert stat.S_ISFIFO(os.lstat(tmp_path / "m.bin").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.npy", "m.bin", "m.idx", "pipe.npy", "real.npy"]
