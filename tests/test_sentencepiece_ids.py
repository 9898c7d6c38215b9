"""SentencePiece models with SentencePiece's own ids: ``encode`` and ``decode`` equal the
``sentencepiece`` package's on every line of the test corpora, for the vendored models
and for models trained here with each option that changes segmentation."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import sentencepiece as spm

from viterbisample import Tokenizer
from viterbisample.sentencepiece_tokenizer import SentencePieceTokenizer

EDGES = [
    "", " ", "   ", "  Hello   world  ", "\tTabs\tand\r\nbreaks", "Ｆｕｌｌ ｗｉｄｔｈ ＡＢＣ １２３",
    "e\u0301te\u0301 NFD accents", "ｶﾀｶﾅ ﾊﾝｶｸ", "ﬁne ﬂow ligatures", "\x00\x07 control\x1f chars",
    "U+2581 ▁ in ▁▁ the text▁", "emoji 🙂🚀🧠 mixed", "吾輩は猫である。名前はまだ無い。", "Ωmega λ ĳ ǆ",
    "<s> </s> <unk> literal names", "UPPER lower MiXeD", "x" * 500,
]

# name -> extra trainer options; each model is trained on the vendored corpora.
CONFIGS = {
    "nmt_nfkc": {},
    "identity": {"normalization_rule_name": "identity"},
    "byte_fallback": {"byte_fallback": True},
    "user_and_control": {"user_defined_symbols": ["<sep>", "Botchan", "ちゃん"], "control_symbols": ["<cls>", "<mask>"]},
    "whitespace_suffix": {"treat_whitespace_as_suffix": True},
    "no_whitespace_split": {"split_by_whitespace": False},
    "nfkc_cf_no_dummy": {"normalization_rule_name": "nmt_nfkc_cf", "add_dummy_prefix": False,
                         "remove_extra_whitespaces": False},
}


@pytest.fixture(scope="module")
def trained(corpus_texts) -> dict[str, bytes]:
    """The .model bytes of each configuration, trained by sentencepiece in this run."""
    text = [x for x in corpus_texts[:3000] if x.strip()]
    models = {}
    for name, options in CONFIGS.items():
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=out, model_type="unigram",
                                       vocab_size=1200, character_coverage=0.995, minloglevel=2,
                                       num_threads=2, **options)
        models[name] = out.getvalue()
    return models


def _pair(data: bytes) -> tuple[SentencePieceTokenizer, spm.SentencePieceProcessor]:
    return SentencePieceTokenizer(data), spm.SentencePieceProcessor(model_proto=data)


def _check_encode_decode(tok, sp, lines):
    ours, theirs = tok.encode_batch(lines), sp.encode(lines)
    bad = [k for k in range(len(lines)) if ours[k] != theirs[k]]
    assert not bad, f"{len(bad)} lines differ, first {lines[bad[0]][:60]!r}: {ours[bad[0]][:12]} vs {theirs[bad[0]][:12]}"
    assert [tok.decode(ids) for ids in theirs] == [sp.decode(ids) for ids in theirs]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_trained_models_give_sentencepieces_ids(trained, corpus_texts, name):
    tok, sp = _pair(trained[name])
    assert tok.vocab_size == sp.get_piece_size()
    _check_encode_decode(tok, sp, corpus_texts + EDGES)


@pytest.mark.parametrize("model", ["test_model.model", "test_ja_model.model"])
def test_vendored_models_give_sentencepieces_ids(data_file, corpus_texts, model):
    path = data_file(f"sp_test_models/{model}")
    tok, sp = Tokenizer.load(path), spm.SentencePieceProcessor(model_file=str(path))
    assert isinstance(tok, SentencePieceTokenizer)
    _check_encode_decode(tok, sp, corpus_texts + EDGES)


def test_vocabulary_and_special_ids(trained):
    tok, sp = _pair(trained["user_and_control"])
    assert [tok.id_to_piece(i) for i in range(tok.vocab_size)] == [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    assert all(tok.piece_to_id(sp.id_to_piece(i)) == i for i in range(sp.get_piece_size()))
    assert (tok.unk_id, tok.bos_id, tok.eos_id) == (sp.unk_id(), sp.bos_id(), sp.eos_id())
    assert tok.pad_id is None and sp.pad_id() == -1
    assert tok.get_vocab()["<cls>"] == sp.piece_to_id("<cls>")
    assert [tok.score(i) for i in range(10)] == pytest.approx([sp.get_score(i) for i in range(10)])
    with pytest.raises(KeyError):
        tok.piece_to_id("no such piece")


def test_bos_eos_and_model_inputs(trained):
    tok, sp = _pair(trained["nmt_nfkc"])
    texts = ["first line", "a second, longer line"]
    out = tok(texts, add_bos=True, add_eos=True)
    assert out["input_ids"] == sp.encode(texts, add_bos=True, add_eos=True)


def test_unknown_characters_merge_into_one_unk(trained):
    tok, sp = _pair(trained["nmt_nfkc"])
    text = "abc 𓀀𓀁𓀂 def 𓀃"
    assert tok.encode(text) == sp.encode(text)
    assert tok.encode(text).count(tok.unk_id) == 2
    ids, spans = tok.encode(text, return_offsets=True)
    unk_span = spans[ids.index(tok.unk_id)]
    assert text[unk_span[0]:unk_span[1]].strip() == "𓀀𓀁𓀂"


def test_byte_fallback_spells_unknown_characters_in_bytes(trained):
    tok, sp = _pair(trained["byte_fallback"])
    text = "𓀀 and ☃"
    ids = tok.encode(text)
    assert ids == sp.encode(text) and tok.unk_id not in ids
    assert tok.decode(ids) == sp.decode(ids) == text


def test_float32_arithmetic_is_what_splits_ties_as_sentencepiece_does(trained, corpus_texts):
    """float64 gives the same best scores; it can only differ where float32 rounding
    decides a near tie, so every line it differs on must be such a tie."""
    tok, sp = _pair(trained["nmt_nfkc"])
    wide = SentencePieceTokenizer(tok._proto, float32=False)
    ours32, ours64 = tok.encode_batch(corpus_texts), wide.encode_batch(corpus_texts)
    scores = np.array([sp.get_score(i) for i in range(sp.get_piece_size())])
    for a, b in zip(ours32, ours64):
        if a != b:
            assert abs(scores[a].sum() - scores[b].sum()) < 1e-4


def test_pickle_and_load(trained, tmp_path):
    path = tmp_path / "m.model"
    path.write_bytes(trained["byte_fallback"])
    tok = Tokenizer.load(path)
    again = pickle.loads(pickle.dumps(tok))
    assert isinstance(again, SentencePieceTokenizer)
    assert again.encode("pickled ☃") == tok.encode("pickled ☃")
    assert Tokenizer.from_sentencepiece(path).encode("x y") == tok.encode("x y")


def test_what_is_not_available_yet_is_refused(trained, tmp_path):
    tok, _ = _pair(trained["nmt_nfkc"])
    for call in (lambda: tok.log_prob("x", [5]),
                 lambda: tok.marginals("x"), lambda: tok.token_spans("x", [5])):
        with pytest.raises(NotImplementedError, match="SentencePiece"):
            call()
    from viterbisample import SubwordRegularization

    sr = SubwordRegularization(tok, 0.1, seed=3, padding=False)  # (this model has no pad token)
    assert sr("a line", 4) == tok.encode("a line", 0.1, 3, index=4)
    with pytest.raises(ValueError, match=".model file"):
        tok.save(tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_damaged_model_files_are_value_errors(trained, tmp_path):
    data = trained["nmt_nfkc"]
    for cut in (1, 10, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.model"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=path.name):
            Tokenizer.load(path)


@pytest.mark.parametrize("name", ["byte_fallback", "nfkc_cf_no_dummy", "user_and_control", "whitespace_suffix"])
def test_decode_of_any_ids_is_sentencepieces(trained, name):
    """Random id sequences: control, unknown and byte pieces (also runs that are not
    UTF-8) anywhere, leading spaces, empty lists."""
    tok, sp = _pair(trained[name])
    rng = np.random.default_rng(7)
    n = sp.get_piece_size()
    special = [i for i in range(n) if sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i)]
    for _ in range(400):
        size = int(rng.integers(0, 12))
        ids = [int(rng.choice(special)) if rng.random() < 0.4 else int(rng.integers(0, n)) for _ in range(size)]
        assert tok.decode(ids) == sp.decode(ids), ids


@pytest.mark.parametrize("name", ["nmt_nfkc", "byte_fallback", "user_and_control"])
def test_one_text_calls_equal_the_batch(trained, corpus_texts, name):
    """``encode`` of one text has its own path (one kernel call, ids mapped in Python)."""
    tok, sp = _pair(trained[name])
    lines = corpus_texts[::7] + EDGES + ["𓀀𓀁 x 𓀂", "𓀀", "a𓀀"]
    assert [tok.encode(x) for x in lines] == tok.encode_batch(lines) == sp.encode(lines)
    wide = SentencePieceTokenizer(trained[name], float32=False)
    assert [wide.encode(x) for x in lines] == wide.encode_batch(lines)
