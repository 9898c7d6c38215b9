"""Corpus-to-token files: npy and Megatron's indexed pair, read back independently."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from viterbisample import Tokenizer
from viterbisample.cli import main
from viterbisample.token_files import read_megatron, write_token_file


@pytest.fixture(scope="module")
def lines(en_lines) -> list[bytes]:
    return en_lines[300:900]


def expected_ids(tok, docs, **kw) -> list[int]:
    out: list[int] = []
    for ids in tok.encode_batch(docs, **kw):
        out += ids + [tok.eos_id]
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
    docs = [b"one", b"two words", b""]
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
    assert main(["encode", str(src), "--format", "npy"]) == 1  # needs -o


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
