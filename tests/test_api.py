"""The Python API: lossless round trips, the model and its file, argument checks."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viterbisample import Model, Tokenizer
from viterbisample.model_io import dumps, load, loads

BYTES = [bytes([b]) for b in range(256)]
# Pieces that split UTF-8 characters ("あ" is e3 81 82) and span spaces.
EXTRA = [b"the", b" the", b"he", b"\xe3\x81", b"\xe3\x81\x82", b"ab", b"abc", b"\xff\xfe"]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(-12, -8, 256), rng.uniform(-6, -1, len(EXTRA))])
    return Tokenizer.from_pieces(BYTES + EXTRA, scores)


# -- round trips ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200), alpha=st.sampled_from([None, 0.0, 0.3, 1.0]), seed=st.integers(0, 2**64 - 1))
def test_bytes_round_trip(tok, data, alpha, seed):
    ids = tok.encode(data, alpha=alpha, seed=seed)
    assert tok.decode_bytes(ids) == data
    assert min(ids, default=tok.model.num_special) >= tok.model.num_special  # no specials


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=100), alpha=st.sampled_from([None, 0.0, 0.5]))
def test_str_round_trip(tok, text, alpha):
    ids = tok.encode(text, alpha=alpha, seed=1)
    assert tok.decode(ids) == text
    assert tok.decode_bytes(ids) == text.encode("utf-8")


def test_decode_of_split_characters_rejoins_them(tok):
    text = "あああ"
    splits = [ids for ids in tok.sample(text, 0.0, 300, seed=4) if tok.piece_to_id(b"\x82") in ids]
    assert splits, "some samples split a character into e3 81 + 82"
    for ids in splits:
        assert tok.decode(ids, errors="strict") == text


def test_decode_errors_policy(tok):
    ids = tok.encode(b"a\xffb")
    assert tok.decode(ids) == "a\ufffdb"
    with pytest.raises(UnicodeDecodeError):
        tok.decode(ids, errors="strict")
    assert tok.decode(ids, errors="surrogateescape").encode("utf-8", "surrogateescape") == b"a\xffb"
    assert tok.encode("a\udcffb") == tok.encode(b"a\xffb")


def test_special_tokens_decode_to_nothing(tok):
    ids = [tok.bos_id] + tok.encode("the") + [tok.eos_id, tok.pad_id]
    assert tok.decode(ids) == "the"
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    assert tok.id_to_piece(2) == "<eos>" and tok.piece_to_id("<eos>") == 2


def test_vocabulary_lookups(tok):
    assert tok.vocab_size == 3 + 256 + len(EXTRA)
    i = tok.piece_to_id(b" the")
    assert tok.piece_to_id(" the") == i
    assert tok.id_to_bytes(i) == b" the" and tok.id_to_piece(i) == " the"
    assert tok.id_to_piece(tok.piece_to_id(b"\xff\xfe")) == "<0xFF><0xFE>"
    assert tok.score(i) == float(tok.model.piece_scores[i - 3])
    assert tok.score(0) == 0.0
    assert tok.tokenize(b"the\xff") == ["the", "<0xFF>"]
    assert tok.tokenize(b"the\xff", as_bytes=True) == [b"the", b"\xff"]
    with pytest.raises(KeyError, match="not in the vocabulary"):
        tok.piece_to_id(b"zzz")
    with pytest.raises(ValueError, match="out of range"):
        tok.id_to_piece(tok.vocab_size)


def test_batch_forms_agree(tok):
    texts = ["the cat", b"\xff\xfeab", "", "あ the"]
    rows = tok.encode_batch(texts)
    assert rows == [tok.encode(t) for t in texts]
    ids, offsets = tok.encode_batch_arrays(texts)
    assert ids.dtype == np.int32 and offsets.dtype == np.int64 and len(offsets) == len(texts) + 1
    assert [ids[offsets[k] : offsets[k + 1]].tolist() for k in range(len(texts))] == rows
    assert tok.sample("the cat", 0.5, 0) == []
    assert tok.encode_batch([]) == []


def test_log_prob_sums_to_one_over_nbest(tok):
    text = "abcthe"
    total = sum(math.exp(tok.log_prob(text, ids, 0.7)) for ids, _ in tok.nbest(text, 10_000))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_pickle_round_trip(tok):
    again = pickle.loads(pickle.dumps(tok))
    assert again.model == tok.model
    assert again.encode("the abc", alpha=0.5, seed=3) == tok.encode("the abc", alpha=0.5, seed=3)


def test_each_kernel_compiles_one_signature(tok):
    from viterbisample import lattice

    for ids in ([1, 2], (1, 2), np.array([1, 2], np.int16), np.array([1, 2], np.uint64)):
        tok.decode_bytes(ids)
    for text in ("x", b"x", bytearray(b"x"), "", b""):
        tok.encode(text)
        tok.encode(text, alpha=0.5, seed=1)
        tok.encode_batch([text, text], alpha=0.5)
    assert len(lattice.encode_items.signatures) == 1


# -- argument checks --------------------------------------------------------------------


@pytest.mark.parametrize("alpha,error", [(-0.5, ValueError), (math.nan, ValueError), (math.inf, ValueError),
                                         ("1", TypeError), (True, TypeError)])
def test_bad_alpha(tok, alpha, error):
    with pytest.raises(error, match="alpha"):
        tok.encode("abc", alpha=alpha)
    with pytest.raises(error, match="alpha"):
        tok.encode_batch(["abc"], alpha=alpha)


@pytest.mark.parametrize("ids,error,match", [
    ([0, 10**6], ValueError, r"token id 1000000 is out of range .*\(0\.\."),
    ([-1], ValueError, "token id -1 is out of range"),
    ([1.5], TypeError, "ids must be ints"),
    ([[1, 2]], ValueError, "one-dimensional"),
    ("abc", TypeError, "ids must be a sequence"),
])
def test_bad_ids(tok, ids, error, match):
    with pytest.raises(error, match=match):
        tok.decode(ids)


def test_bad_seeds_threads_and_texts(tok):
    with pytest.raises(ValueError, match="seed must be >= 0"):
        tok.encode("a", alpha=1.0, seed=-1)
    with pytest.raises(ValueError, match="seed must be < 2\\*\\*64"):
        tok.encode("a", alpha=1.0, seed=2**64)
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        tok.encode_batch(["a"], num_threads=0)
    with pytest.raises(TypeError, match="text must be str or bytes"):
        tok.encode(5)
    with pytest.raises(TypeError, match="single str"):
        tok.encode_batch("abc")
    with pytest.raises(ValueError, match="lone surrogate"):
        tok.encode("a\ud800b")
    with pytest.raises(ValueError, match="do not spell the text"):
        tok.log_prob("abc", tok.encode("abd"))
    with pytest.raises(ValueError, match="special token"):
        tok.log_prob("abc", [1] + tok.encode("abc"))


# -- the model and its file ------------------------------------------------------------


@pytest.mark.parametrize("pieces,scores,error,match", [
    (BYTES + [b"ab"], [0.0] * 256 + [math.nan], ValueError, "score 256 is nan"),
    (BYTES + [b"ab"], [0.0] * 256 + [math.inf], ValueError, "score 256 is inf"),
    (BYTES + [b"ab", b"ab"], [0.0] * 258, ValueError, "duplicate piece b'ab'"),
    (BYTES[:65] + BYTES[66:], [0.0] * 255, ValueError, "lacks 1 of the 256 single-byte pieces \\(0x41\\)"),
    (BYTES + [b""], [0.0] * 257, ValueError, "piece 256 is empty"),
    (BYTES + [b"ab"], [0.0] * 256, ValueError, "257 pieces but 256 scores"),
    (BYTES + [5], [0.0] * 257, TypeError, "piece 256 must be bytes or str"),
    (BYTES + [b"x" * 65], [0.0] * 257, ValueError, "65 bytes long; the limit is 64"),
])
def test_model_validation(pieces, scores, error, match):
    with pytest.raises(error, match=match):
        Model(pieces, scores)


def test_special_token_validation():
    with pytest.raises(ValueError, match="duplicate special token '<x>'"):
        Model(BYTES, [0.0] * 256, ["<x>", "<x>"])
    with pytest.raises(ValueError, match="non-empty"):
        Model(BYTES, [0.0] * 256, [""])
    with pytest.raises(TypeError, match="wrap it in a list"):
        Model(BYTES, [0.0] * 256, "<eos>")


def test_model_file_round_trip(tok, tmp_path):
    scores = [1e-300, -0.1, -1 / 3, 5e-324] + [-7.0] * 261
    model = Model(BYTES + EXTRA, scores[: 256 + len(EXTRA)], ["<pad>", "<bos>", "<eos>", "<mask>"])
    path = tmp_path / "m.json"
    Tokenizer(model).save(path)
    data = json.loads(path.read_text("utf-8"))
    assert data["format"] == "viterbisample-unigram" and data["version"] == 1
    assert {"hex": "fffe"} in [p for p, _ in data["pieces"]]
    again = Tokenizer.load(path).model
    assert again == model
    assert again.piece_scores.tobytes() == model.piece_scores.tobytes()
    assert list(tmp_path.iterdir()) == [path]


def _file_text(tok) -> str:
    return dumps(tok.model)


def test_truncated_model_files_raise_value_error(tok, tmp_path):
    text = _file_text(tok)
    for cut in list(range(0, 200, 7)) + list(range(len(text) - 300, len(text) - 1, 11)):
        path = tmp_path / "cut.json"
        path.write_text(text[:cut], "utf-8")
        with pytest.raises(ValueError, match="cut.json: not a valid viterbisample model"):
            load(path)


@pytest.mark.parametrize("change,match", [
    (lambda d: d.update(version=2), "declares format version 2 but this release reads version 1"),
    (lambda d: d.update(format="other"), "'format' must be"),
    (lambda d: d["pieces"].__setitem__(260, ["x"]), "piece entry 260 must be a \\[piece, score\\] pair"),
    (lambda d: d["pieces"].__setitem__(260, [{"hex": "zz"}, 1.0]), "invalid hex"),
    (lambda d: d["pieces"].__setitem__(260, ["x", "1.0"]), "score of piece 260 must be a number"),
    (lambda d: d["pieces"].__setitem__(260, ["x", True]), "score of piece 260 must be a number"),
    (lambda d: d["pieces"].__delitem__(65), "lacks 1 of the 256 single-byte pieces"),
    (lambda d: d.update(special_tokens="<eos>"), "'special_tokens' must be a list"),
])
def test_malformed_model_files(tok, change, match):
    data = json.loads(_file_text(tok))
    change(data)
    with pytest.raises(ValueError, match=match):
        loads(json.dumps(data), "m.json")


def test_other_bad_model_files(tmp_path):
    with pytest.raises(ValueError, match="non-finite number NaN"):
        loads('{"format": "viterbisample-unigram", "version": 1, "pieces": [["a", NaN]]}')
    with pytest.raises(ValueError, match="not a valid viterbisample model"):
        loads("[" * 100_000)
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="not UTF-8"):
        load(bad)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        Tokenizer.load(tmp_path / "missing.json")


def test_save_is_atomic(tok, tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    tok.save(path)
    before = path.read_bytes()
    from viterbisample import model_io

    def broken(model):
        raise RuntimeError("disk full")

    monkeypatch.setattr(model_io, "dumps", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        tok.save(path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_default_model():
    tok = Tokenizer.default()
    assert all(tok.model.piece_id(bytes([b])) is not None for b in range(256))
    assert tok.decode(tok.encode("Hello, 世界")) == "Hello, 世界"
    assert Tokenizer.default() is tok


def test_import_pulls_in_no_optional_dependency():
    import subprocess
    import sys

    code = "import sys, viterbisample; print(sorted(m for m in ('sentencepiece', 'tokenizers', 'hypothesis') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": ""}).stdout
    assert out.strip() == "[]"
