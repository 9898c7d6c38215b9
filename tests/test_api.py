"""The Python API: lossless round trips, the model and its file, argument checks."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viterbisample import Model, Tokenizer
from viterbisample.io.model_file import dumps, load, loads

BYTES = [bytes([b]) for b in range(256)]


# -- round trips ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200), alpha=st.sampled_from([None, 0.0, 0.3, 1.0]), seed=st.integers(0, 2**64 - 1))
def test_bytes_round_trip(small_tok, data, alpha, seed):
    ids = small_tok.encode(data, alpha=alpha, seed=seed)
    assert small_tok.decode_bytes(ids) == data
    assert min(ids, default=small_tok.model.num_special) >= small_tok.model.num_special  # no specials


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=100), alpha=st.sampled_from([None, 0.0, 0.5]))
def test_str_round_trip(small_tok, text, alpha):
    ids = small_tok.encode(text, alpha=alpha, seed=1)
    assert small_tok.decode(ids) == text
    assert small_tok.decode_bytes(ids) == text.encode("utf-8")


def test_decode_of_split_characters_rejoins_them(small_tok):
    text = "あああ"
    splits = [ids for ids in small_tok.sample(text, 0.0, 300, seed=4) if small_tok.piece_to_id(b"\x82") in ids]
    assert splits, "some samples split a character into e3 81 + 82"
    for ids in splits:
        assert small_tok.decode(ids, errors="strict") == text


def test_decode_errors_policy(small_tok):
    ids = small_tok.encode(b"a\xffb")
    assert small_tok.decode(ids) == "a\ufffdb"
    with pytest.raises(UnicodeDecodeError):
        small_tok.decode(ids, errors="strict")
    assert small_tok.decode(ids, errors="surrogateescape").encode("utf-8", "surrogateescape") == b"a\xffb"
    assert small_tok.encode("a\udcffb") == small_tok.encode(b"a\xffb")


def test_special_tokens_decode_to_nothing(small_tok):
    ids = [small_tok.bos_id] + small_tok.encode("the") + [small_tok.eos_id, small_tok.pad_id]
    assert small_tok.decode(ids) == "the"
    assert (small_tok.pad_id, small_tok.bos_id, small_tok.eos_id) == (0, 1, 2)
    assert small_tok.id_to_piece(2) == "<eos>" and small_tok.piece_to_id("<eos>") == 2


def test_vocabulary_lookups(small_tok):
    assert small_tok.vocab_size == 3 + 256 + 8  # specials, bytes, multi-byte pieces
    i = small_tok.piece_to_id(b" the")
    assert small_tok.piece_to_id(" the") == small_tok.piece_to_id("\u2581the") == i
    assert small_tok.id_to_bytes(i) == b" the" and small_tok.id_to_piece(i) == "\u2581the"
    assert small_tok.id_to_piece(small_tok.piece_to_id(b"\xff\xfe")) == "<0xFF><0xFE>"
    assert small_tok.score(i) == float(small_tok.model.piece_scores[i - 3])
    assert small_tok.score(0) == 0.0
    assert small_tok.tokenize(b"the\xff") == ["the", "<0xFF>"]
    assert small_tok.tokenize(b"the\xff", as_bytes=True) == [b"the", b"\xff"]
    with pytest.raises(KeyError, match="not in the vocabulary"):
        small_tok.piece_to_id(b"zzz")
    with pytest.raises(ValueError, match="out of range"):
        small_tok.id_to_piece(small_tok.vocab_size)


def test_batch_forms_agree(small_tok):
    texts = ["the cat", b"\xff\xfeab", "", "あ the"]
    rows = small_tok.encode_batch(texts)
    assert rows == [small_tok.encode(t) for t in texts]
    ids, offsets = small_tok.encode_batch_arrays(texts)
    assert ids.dtype == np.int32 and offsets.dtype == np.int64 and len(offsets) == len(texts) + 1
    assert [ids[offsets[k] : offsets[k + 1]].tolist() for k in range(len(texts))] == rows
    assert small_tok.sample("the cat", 0.5, 0) == []
    assert small_tok.encode_batch([]) == []


def test_log_prob_sums_to_one_over_nbest(small_tok):
    text = "abcthe"
    total = sum(math.exp(small_tok.log_prob(text, ids, 0.7)) for ids, _ in small_tok.nbest(text, 10_000))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_pickle_round_trip(small_tok):
    again = pickle.loads(pickle.dumps(small_tok))
    assert again.model == small_tok.model
    assert again.encode("the abc", alpha=0.5, seed=3) == small_tok.encode("the abc", alpha=0.5, seed=3)


def test_each_kernel_compiles_one_signature(small_tok):
    from viterbisample import lattice

    for ids in ([1, 2], (1, 2), np.array([1, 2], np.int16), np.array([1, 2], np.uint64)):
        small_tok.decode_bytes(ids)
    for text in ("x", b"x", bytearray(b"x"), "", b""):
        small_tok.encode(text)
        small_tok.encode(text, alpha=0.5, seed=1)
        small_tok.encode_batch([text, text], alpha=0.5)
    assert len(lattice.encode_items.signatures) == 1


# -- argument checks --------------------------------------------------------------------


@pytest.mark.parametrize("alpha,error", [(-0.5, ValueError), (math.nan, ValueError), (-math.inf, ValueError),
                                         ("1", TypeError), (True, TypeError)])
def test_bad_alpha(small_tok, alpha, error):
    with pytest.raises(error, match="alpha"):
        small_tok.encode("abc", alpha=alpha)
    with pytest.raises(error, match="alpha"):
        small_tok.encode_batch(["abc"], alpha=alpha)


@pytest.mark.parametrize("ids,error,match", [
    ([0, 10**6], ValueError, r"token id 1000000 is out of range .*\(0\.\."),
    ([-1], ValueError, "token id -1 is out of range"),
    ([1.5], TypeError, "ids must be ints"),
    ([[1, 2]], ValueError, "one-dimensional"),
    ("abc", TypeError, "ids must be a sequence"),
])
def test_bad_ids(small_tok, ids, error, match):
    with pytest.raises(error, match=match):
        small_tok.decode(ids)


def test_bad_seeds_threads_and_texts(small_tok):
    with pytest.raises(ValueError, match="seed must be >= 0"):
        small_tok.encode("a", alpha=1.0, seed=-1)
    with pytest.raises(ValueError, match="seed must be < 2\\*\\*64"):
        small_tok.encode("a", alpha=1.0, seed=2**64)
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        small_tok.encode_batch(["a"], num_threads=0)
    with pytest.raises(TypeError, match="text must be str or bytes"):
        small_tok.encode(5)
    with pytest.raises(TypeError, match="single str"):
        small_tok.encode_batch("abc")
    with pytest.raises(ValueError, match="lone surrogate"):
        small_tok.encode("a\ud800b")
    with pytest.raises(ValueError, match="do not spell the text"):
        small_tok.log_prob("abc", small_tok.encode("abd"))
    with pytest.raises(ValueError, match="special token"):
        small_tok.log_prob("abc", [1] + small_tok.encode("abc"))


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


def test_model_file_round_trip(small_tok, tmp_path):
    scores = [1e-300, -0.1, -1 / 3, 5e-324] + [-7.0] * 261
    pieces = small_tok.model.pieces
    model = Model(pieces, scores[: len(pieces)], ["<pad>", "<bos>", "<eos>", "<mask>"])
    path = tmp_path / "m.json"
    Tokenizer(model).save(path)
    data = json.loads(path.read_text("utf-8"))
    assert data["format"] == "viterbisample-unigram" and data["version"] == 2
    assert data["normalizer"] == {"kind": "identity"}
    assert {"hex": "fffe"} in [p for p, _ in data["pieces"]]
    again = Tokenizer.load(path).model
    assert again == model
    assert again.piece_scores.tobytes() == model.piece_scores.tobytes()
    assert list(tmp_path.iterdir()) == [path]


def _file_text(tok) -> str:
    return dumps(tok.model)


def test_truncated_model_files_raise_value_error(small_tok, tmp_path):
    text = _file_text(small_tok)
    for cut in list(range(0, 200, 7)) + list(range(len(text) - 300, len(text) - 1, 11)):
        path = tmp_path / "cut.json"
        path.write_text(text[:cut], "utf-8")
        with pytest.raises(ValueError, match="cut.json: not a valid viterbisample model"):
            load(path)


@pytest.mark.parametrize("change,match", [
    (lambda d: d.update(version=3), "declares format version 3 but this release reads versions 1 and 2"),
    (lambda d: d.update(format="other"), "'format' must be"),
    (lambda d: d["pieces"].__setitem__(260, ["x"]), "piece entry 260 must be a \\[piece, score\\] pair"),
    (lambda d: d["pieces"].__setitem__(260, [{"hex": "zz"}, 1.0]), "invalid hex"),
    (lambda d: d["pieces"].__setitem__(260, ["x", "1.0"]), "score of piece 260 must be a number"),
    (lambda d: d["pieces"].__setitem__(260, ["x", True]), "score of piece 260 must be a number"),
    (lambda d: d["pieces"].__delitem__(65), "lacks 1 of the 256 single-byte pieces"),
    (lambda d: d.update(special_tokens="<eos>"), "'special_tokens' must be a list"),
])
def test_malformed_model_files(small_tok, change, match):
    data = json.loads(_file_text(small_tok))
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


def test_save_is_atomic(small_tok, tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    small_tok.save(path)
    before = path.read_bytes()
    from viterbisample.io import model_file

    def broken(model):
        raise RuntimeError("disk full")

    monkeypatch.setattr(model_file, "dumps", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        small_tok.save(path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_default_model():
    tok = Tokenizer.default()
    assert all(tok.model.piece_id(bytes([b])) is not None for b in range(256))
    assert tok.decode(tok.encode("Hello, 世界")) == "Hello, 世界"
    assert Tokenizer.default() is tok


def test_import_pulls_in_no_optional_dependency(run_python):
    code = "import sys, viterbisample; print(sorted(m for m in ('sentencepiece', 'tokenizers', 'hypothesis') if m in sys.modules))"
    r = run_python("-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == b"[]"


# -- one convention across the API ----------------------------------------------------------


def test_encode_with_epoch_and_index_is_the_batch_sample(default_tok):
    """A data loader's ``__getitem__`` gets, text by text, what one batch call gives."""
    texts = ["first sentence", "a second, longer sentence", "三つ目"]
    for epoch in (0, 3):
        batch = default_tok.encode_batch(texts, alpha=0.3, seed=9, epoch=epoch, first_index=100)
        single = [default_tok.encode(t, alpha=0.3, seed=9, epoch=epoch, index=100 + k) for k, t in enumerate(texts)]
        assert single == batch
    by_epoch = {tuple(default_tok.encode(texts[1], 0.3, 9, epoch=e)) for e in range(6)}
    assert len(by_epoch) > 1  # a fresh sample per epoch


def test_seed_none_draws_a_fresh_seed_in_batches_too(default_tok):
    text = "Subword regularization samples a new segmentation every epoch"
    draws = {tuple(default_tok.encode_batch([text], alpha=0.1)[0]) for _ in range(8)}
    assert len(draws) > 1  # 8 draws of a text with thousands of likely paths
    assert len({tuple(default_tok.encode_batch([text], alpha=0.1, seed=5)[0]) for _ in range(3)}) == 1


def test_sample_returns_id_lists_with_or_without_replacement(default_tok):
    text = "distinct segmentations"
    with_replacement = default_tok.sample(text, 0.2, 4, seed=1)
    without = default_tok.sample(text, 0.2, 4, seed=1, replace=False)
    for rows in (with_replacement, without):
        assert len(rows) == 4 and all(isinstance(r, list) and all(isinstance(i, int) for i in r) for r in rows)
        assert all(default_tok.decode(r) == text for r in rows)
    assert len({tuple(r) for r in without}) == 4
    assert without == [ids for ids, _, _ in default_tok.sample_distinct(text, 0.2, 4, seed=1)]


def test_vocabulary_views(small_tok):
    vocab = small_tok.get_vocab()
    assert len(small_tok) == small_tok.vocab_size == len(vocab)
    assert sorted(vocab.values()) == list(range(len(small_tok)))
    for piece, i in vocab.items():
        assert small_tok.id_to_piece(i) == piece
    texts = ["abc", "", "日本"]
    assert small_tok.decode_batch([small_tok.encode(t) for t in texts]) == texts


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=12) | st.text(max_size=6).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_piece_display_reads_back_exactly(piece):
    """One display in Python and in the CLI: no space, tab or newline in it, and
    ``piece_from_display`` gives the exact bytes back (literal ``▁`` and ``<0xNN>`` too)."""
    from viterbisample.pieces import piece_display, piece_from_display

    for p in (piece, b"<0x41>" + piece, "\u2581".encode() + piece + b" \t\n"):
        shown = piece_display(p)
        assert not any(c in shown for c in " \t\n\r")
        assert piece_from_display(shown) == p


def test_every_piece_of_the_shipped_model_has_its_own_display(default_tok):
    vocab = default_tok.get_vocab()
    assert len(vocab) == default_tok.vocab_size
    assert all(default_tok.piece_to_id(shown) == i for shown, i in vocab.items())
