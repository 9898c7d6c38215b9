"""Corpus-to-token files: npy and Megatron's indexed pair, read back independently."""

from __future__ import annotations

import struct
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
