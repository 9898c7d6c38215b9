"""Hugging Face ``tokenizer.json``: the export gives our Viterbi ids in ``tokenizers`` and
``transformers``, and loads back; what cannot be reproduced is refused."""

from __future__ import annotations

import json

import pytest
import tokenizers
from hypothesis import given, settings
from hypothesis import strategies as st

from viterbisample import Tokenizer
from viterbisample.io import huggingface
from viterbisample.io.huggingface import BYTE_CHARS, SPECIAL_SCORE, hf_score

EDGES = [
    "", " ", "  two  spaces ", "\t\ttabs\r\n", "\x00\x01\x7f control", "▁ literal U+2581", "ﬁ ligature",
    "Ｆｕｌｌ ｗｉｄｔｈ", "ｶﾀｶﾅ", "e\u0301 NFD", "emoji 🙂🚀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "吾輩は猫である", "a" * 300,
]


def exported(tok: Tokenizer, tmp_path) -> tokenizers.Tokenizer:
    path = tmp_path / "tokenizer.json"
    tok.save_huggingface(path)
    return tokenizers.Tokenizer.from_file(str(path))


def hf_ids(hf: tokenizers.Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]


def test_the_byte_alphabet_is_gpt2s():
    assert len(set(BYTE_CHARS)) == 256
    assert BYTE_CHARS[ord("A")] == "A" and BYTE_CHARS[ord(" ")] == "Ġ" and BYTE_CHARS[0] == "Ā"
    assert BYTE_CHARS[ord("\n")] == "Ċ" and BYTE_CHARS[0xAD] == "Ń"


def test_shipped_model_gives_the_same_ids_on_every_corpus_line(default_tok, data_file, tmp_path):
    hf = exported(default_tok, tmp_path)
    for name in ("corpora/en_botchan.txt", "corpora/ja_wagahaiwa_nekodearu.txt"):
        lines = data_file(name).read_text("utf-8").split("\n")
        assert default_tok.encode_batch(lines) == hf_ids(hf, lines), name
    assert default_tok.encode_batch(EDGES) == hf_ids(hf, EDGES)


@pytest.mark.parametrize("fixture", ["small_tok", "en_tok_equal", "en_tok_rounded", "ja_tok_rounded"])
def test_ties_and_split_characters_agree(request, fixture, en_lines, ja_lines, tmp_path):
    """Vocabularies with exactly tied scores (the tie rule must be the same) and with
    pieces that split UTF-8 characters."""
    tok = request.getfixturevalue(fixture)
    hf = exported(tok, tmp_path)
    texts = [x.decode() for x in (en_lines[:800] + ja_lines[:200])] + EDGES
    assert tok.encode_batch(texts) == hf_ids(hf, texts)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=60))
def test_random_text_agrees(small_tok, tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "small_tok.json"
    if not path.exists():
        small_tok.save_huggingface(path)
    hf = tokenizers.Tokenizer.from_file(str(path))
    hf.encode_special_tokens = True  # special token names as text, as here (see below)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: tokenizers takes valid text only
        return
    assert small_tok.encode(text) == hf.encode(text, add_special_tokens=False).ids


def test_loads_back_with_the_scores_written(default_tok, tmp_path):
    path = tmp_path / "tokenizer.json"
    default_tok.save_huggingface(path)
    back = Tokenizer.load(path)
    assert back.model.pieces == default_tok.model.pieces
    assert back.special_tokens == default_tok.special_tokens
    assert back.model.piece_scores.tolist() == [hf_score(s) for s in default_tok.model.piece_scores.tolist()]
    obj = json.loads(path.read_text("utf-8"))
    assert all(len(repr(abs(s)).replace(".", "").lstrip("0").split("e")[0]) <= 15
               for _, s in obj["model"]["vocab"])
    # The file re-exported from the loaded tokenizer is the same file.
    back.save_huggingface(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_special_token_names_in_text(default_tok, tmp_path):
    """The one documented difference, and the switch that removes it."""
    hf = exported(default_tok, tmp_path)
    text = "a literal <eos> in the text"
    ids = default_tok.encode(text)
    assert default_tok.eos_id not in ids
    assert default_tok.eos_id in hf.encode(text, add_special_tokens=False).ids
    hf.encode_special_tokens = True
    assert hf.encode(text, add_special_tokens=False).ids == ids
    assert hf.token_to_id("<eos>") == default_tok.eos_id
    assert hf.get_vocab_size() == default_tok.vocab_size


def test_transformers_fast_tokenizer(default_tok, tmp_path):
    import transformers  # in the test extra

    path = tmp_path / "tokenizer.json"
    default_tok.save_huggingface(path)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path), pad_token="<pad>", bos_token="<bos>",
                                                eos_token="<eos>")
    assert (fast.pad_token_id, fast.bos_token_id, fast.eos_token_id) == (
        default_tok.pad_id, default_tok.bos_id, default_tok.eos_id)
    texts = ["Subword regularization", "吾輩は猫である。", ""]
    assert [fast.encode(t, add_special_tokens=False) for t in texts] == default_tok.encode_batch(texts)
    batch = fast(texts, padding=True, add_special_tokens=False)
    assert batch["input_ids"] == default_tok(texts, padding=True)["input_ids"]
    literal = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token="<eos>",
                                                   split_special_tokens=True)
    assert literal.encode("x <eos>", add_special_tokens=False) == default_tok.encode("x <eos>")


def _tokenizer_json(**changes):
    obj = huggingface.to_tokenizer_json(Tokenizer.from_pieces([bytes([b]) for b in range(256)], [-5.5] * 256).model)
    obj.update(changes)
    return obj


@pytest.mark.parametrize(
    "obj,match",
    [
        (_tokenizer_json(normalizer={"type": "NFKC"}), "normalizer"),
        (_tokenizer_json(pre_tokenizer={"type": "Metaspace", "replacement": "▁"}), "Metaspace"),
        (_tokenizer_json(post_processor={"type": "TemplateProcessing"}), "post_processor"),
        (_tokenizer_json(model={"type": "BPE", "vocab": {}, "merges": []}), "BPE"),
        (_tokenizer_json(model={"type": "Unigram", "unk_id": 0, "vocab": [["a", -1.0]]}), "unk_id"),
        (_tokenizer_json(model={"type": "Unigram", "vocab": [["a", "x"]]}), "pairs"),
        (_tokenizer_json(model={"type": "Unigram", "vocab": [["€", -1.0]]}, added_tokens=[]), "alphabet"),
        (_tokenizer_json(model={"type": "Unigram", "vocab": [["a", -1.0]]}, added_tokens=[]), "256|byte"),
        (_tokenizer_json(model={"type": "Unigram", "vocab": [["a", -1.0]]}), "special tokens must come first"),
        (_tokenizer_json(added_tokens=[{"id": 5, "content": "<x>", "special": True}]), "special tokens must come first"),
        (_tokenizer_json(added_tokens=[{"id": 0, "content": "<pad>", "special": False}]), "not a special token"),
        ({"format": "x"}, "model"),
    ],
)
def test_what_cannot_be_reproduced_is_refused(obj, match):
    with pytest.raises(ValueError, match=match):
        huggingface.from_tokenizer_json(obj)


def test_refusals_through_load(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(_tokenizer_json(pre_tokenizer={"type": "Metaspace"})), "utf-8")
    with pytest.raises(ValueError, match=f"{path.name}.*Metaspace"):
        Tokenizer.load(path)


def test_models_with_a_normalizer_are_not_exported(data_file, tmp_path):
    from viterbisample.io.sentencepiece import load_sentencepiece

    tok = load_sentencepiece(data_file("sp_test_models/test_model.model"))
    with pytest.raises(ValueError, match="sentencepiece"):
        tok.save_huggingface(tmp_path / "tokenizer.json")
    assert not (tmp_path / "tokenizer.json").exists()


def test_special_entries_are_never_chosen_even_at_extreme_scores(tmp_path):
    """Every byte at the lowest score a model allows (-1e4) and a 200-byte special token
    name: spelling the name costs -2e6, still far above the special entry's score, so
    the exported model segments the name as text, as here."""
    name = "<" + "s" * 198 + ">"
    tok = Tokenizer.from_pieces([bytes([b]) for b in range(256)] + [b"ss"], [-1e4] * 256 + [-1e4],
                                special_tokens=[name])
    hf = exported(tok, tmp_path)
    hf.encode_special_tokens = True
    ids = hf.encode(name + " " + name, add_special_tokens=False).ids
    assert 0 not in ids and ids == tok.encode(name + " " + name)
    assert SPECIAL_SCORE < -1e4 * len(name.encode()) * 100
