"""Hugging Face ``tokenizer.json`` files of SentencePiece Unigram models: ``Tokenizer.load``
gives exactly ``tokenizers``' ids for the files transformers' converters write (and for
hand-written files that reach each quirk), the export gives SentencePiece's ids in
``tokenizers``, and what cannot be reproduced is refused by name."""

from __future__ import annotations

import io
import json
import pickle
import types
import unicodedata

import numpy as np
import pytest
import regex
import sentencepiece as spm
import tokenizers

from viterbisample import Tokenizer
from viterbisample.huggingface_tokenizer import HuggingFaceUnigramTokenizer, _normalizer_steps
from viterbisample.io.huggingface import save_sentencepiece_huggingface, to_sentencepiece_tokenizer_json
from viterbisample.sentencepiece_tokenizer import SentencePieceTokenizer

cst = pytest.importorskip("transformers.convert_slow_tokenizer")
pytest.importorskip("google.protobuf", reason="transformers' SentencePiece converters read the .model with protobuf")

EDGES = [
    "", " ", "   ", "  Hello   world  ", "\tTabs\tand\r\nbreaks\t\t  x", "Ｆｕｌｌ ｗｉｄｔｈ ＡＢＣ １２３",
    "e\u0301te\u0301 NFD accents", "ｶﾀｶﾅ ﾊﾝｶｸ ｶﾞｷﾞﾊﾟ", "ﬁne ﬂow ligatures", "\x00\x07 control\x1f chars\x7f",
    "U+2581 ▁ in ▁▁ the text▁", "▁leading", "emoji 🙂🚀🧠 and 👨\u200d👩\u200d👧 family", "吾輩は猫である。名前はまだ無い。",
    "Ωmega λ ĳ ǆ ΣΑΣ", "<s> </s> <unk> literal names", "<0x41> <pad><unk>x", "</s>", " <s>leading", "<unk>𓀀<unk>",
    "UPPER lower MiXeD", "x" * 300, "𓀀𓀁 x 𓀂", "a𓀀", "``quoted'' text", "\r\n\r\n", "İstanbul", "한국어 텍스트",
    "\u3000全角スペース\u3000", "a\u200bb", "Ａ\u0301 and \u0301 alone", "x\u00a0y\u2009z",
]
SPM_MODELS = ["test_model.model", "test_ja_model.model"]


# -- making tokenizer.json files ---------------------------------------------------------
def _proto(data: bytes):
    m = cst.import_protobuf().ModelProto()
    m.ParseFromString(data)
    return m


def _stub(path, proto, **options):
    """What the converters read from a slow tokenizer."""
    fields = dict(vocab_file=str(path), add_prefix_space=True, legacy=True, _extra_ids=3, keep_accents=False,
                  do_lower_case=True, offset=4, pad_token="<pad>", eos_token="</s>", mask_token=None,
                  mask_token_sent=None, mask_token_id=None, eos_token_id=1)
    fields.update(options)
    stub = types.SimpleNamespace(**fields)
    names = [p.piece for p in proto.pieces]
    stub.convert_tokens_to_ids = lambda t: names.index(t) if t in names else 0
    return stub


def convert(model_path, how: str) -> tokenizers.Tokenizer:
    """transformers' conversion of a .model file."""
    proto = _proto(model_path.read_bytes())
    vocab = [(p.piece, p.score) for p in proto.pieces]
    if how == "spm_legacy":
        return cst.SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=True)
    if how == "spm_first":
        return cst.SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=False)
    kind, _, variant = how.partition("-")
    options = {"t5": {}, "xlmr": {}, "albert": {}, "pegasus": {}, "xlnet": {"keep_accents": True, "do_lower_case": False}}[kind]
    if variant == "nonlegacy":
        options["legacy"] = False
    cls = {"t5": cst.T5Converter, "xlmr": cst.XLMRobertaConverter, "albert": cst.AlbertConverter,
           "xlnet": cst.XLNetConverter, "pegasus": cst.PegasusConverter}[kind]
    return cls(_stub(model_path, proto, **options)).converted()


def hf_ids(hf: tokenizers.Tokenizer, texts: list[str], special: bool = False) -> list[list[int]]:
    return [e.ids for e in hf.encode_batch(texts, add_special_tokens=special)]


def check_same_ids(path, texts: list[str]) -> HuggingFaceUnigramTokenizer:
    tok = Tokenizer.load(path)
    assert isinstance(tok, HuggingFaceUnigramTokenizer)
    hf = tokenizers.Tokenizer.from_file(str(path))
    ours, theirs = tok.encode_batch(texts), hf_ids(hf, texts)
    bad = [k for k in range(len(texts)) if ours[k] != theirs[k]]
    assert not bad, f"{len(bad)} texts differ, first {texts[bad[0]][:60]!r}: {ours[bad[0]][:12]} vs {theirs[bad[0]][:12]}"
    return tok


@pytest.fixture(scope="module")
def trained(corpus_texts, tmp_path_factory) -> dict:
    """.model files trained here (fixed seed: sentencepiece's training is deterministic
    with one thread), with the options that change the conversion."""
    folder = tmp_path_factory.mktemp("trained")
    text = [x for x in corpus_texts[:3000] if x.strip()]
    configs = {
        "byte_fallback": {"byte_fallback": True},
        "user_and_control": {"user_defined_symbols": ["<sep>", "Botchan", "ちゃん"], "control_symbols": ["<cls>", "<mask>"]},
        "nfkc_cf_no_dummy": {"normalization_rule_name": "nmt_nfkc_cf", "add_dummy_prefix": False,
                             "remove_extra_whitespaces": False},
        "identity": {"normalization_rule_name": "identity"},
    }
    paths = {}
    for name, options in configs.items():
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=out, model_type="unigram",
                                       vocab_size=1000, character_coverage=0.995, minloglevel=2, num_threads=1,
                                       seed_sentencepiece_size=100000, **options)
        paths[name] = folder / f"{name}.model"
        paths[name].write_bytes(out.getvalue())
    return paths


def _write(tmp_path, hf: tokenizers.Tokenizer, name: str = "tokenizer.json"):
    path = tmp_path / name
    hf.save(str(path))
    return path


# -- import: transformers' conversions ----------------------------------------------------
@pytest.mark.parametrize("how", ["spm_legacy", "spm_first", "t5", "t5-nonlegacy", "xlmr", "albert", "xlnet", "pegasus"])
@pytest.mark.parametrize("model", SPM_MODELS)
def test_converted_vendored_models_give_tokenizers_ids(data_file, corpus_texts, tmp_path, how, model):
    """Every corpus line for the two SentencePiece-style pipelines (and T5's), a third of
    them for the others (same components, other settings)."""
    path = _write(tmp_path, convert(data_file(f"sp_test_models/{model}"), how))
    lines = corpus_texts if how in ("spm_legacy", "t5-nonlegacy") else corpus_texts[model == SPM_MODELS[1]::3]
    check_same_ids(path, lines + EDGES)


@pytest.mark.parametrize("name", ["byte_fallback", "user_and_control", "nfkc_cf_no_dummy", "identity"])
def test_converted_trained_models_give_tokenizers_ids(trained, corpus_texts, tmp_path, name):
    for how in ("spm_legacy", "spm_first", "t5"):
        path = _write(tmp_path, convert(trained[name], how), f"{how}.json")
        check_same_ids(path, corpus_texts[::4] + EDGES + ["<sep>Botchan<cls>ちゃん", "x<mask> <sep> y"])


def test_post_processor_gives_bos_eos_and_post_process(data_file, corpus_texts, tmp_path):
    """``add_special_tokens=True`` is ``post_process(encode(text))``; a template of one
    token before and one after is ``add_bos``/``add_eos``."""
    model = data_file("sp_test_models/test_model.model")
    texts = corpus_texts[:200] + EDGES
    for how, bos, eos in (("t5", None, "</s>"), ("xlmr", "<s>", "</s>"), ("xlnet", None, None)):
        path = _write(tmp_path, convert(model, how), f"{how}.json")
        tok = Tokenizer.load(path)
        hf = tokenizers.Tokenizer.from_file(str(path))
        assert [tok.post_process(ids) for ids in tok.encode_batch(texts)] == hf_ids(hf, texts, special=True)
        named = json.loads(path.read_text("utf-8"))["post_processor"]["special_tokens"]
        assert tok.bos_id == (named[bos]["ids"][0] if bos else None)
        assert tok.eos_id == (named[eos]["ids"][0] if eos else None)
        if bos and eos:
            assert tok(texts[:5], add_bos=True, add_eos=True)["input_ids"] == hf_ids(hf, texts[:5], special=True)


def test_vocabulary_is_the_files(data_file, tmp_path):
    path = _write(tmp_path, convert(data_file("sp_test_models/test_model.model"), "xlmr"))
    tok, hf = Tokenizer.load(path), tokenizers.Tokenizer.from_file(str(path))
    assert tok.vocab_size == hf.get_vocab_size()
    assert tok.get_vocab() == hf.get_vocab()
    assert all(tok.id_to_piece(i) == hf.id_to_token(i) for i in range(0, tok.vocab_size, 7))
    assert tok.unk_id == json.loads(path.read_text("utf-8"))["model"]["unk_id"]
    ids = tok.encode("Hello world, this is ｔｅｓｔ.")
    assert tok.decode(ids) == "Hello world, this is test."


def test_pickle_and_save_round_trip(data_file, tmp_path):
    path = _write(tmp_path, convert(data_file("sp_test_models/test_ja_model.model"), "t5-nonlegacy"))
    tok = Tokenizer.load(path)
    again = pickle.loads(pickle.dumps(tok))
    assert isinstance(again, HuggingFaceUnigramTokenizer)
    assert again.encode_batch(EDGES) == tok.encode_batch(EDGES)
    tok.save_huggingface(tmp_path / "copy.json")
    assert (tmp_path / "copy.json").read_text("utf-8") == path.read_text("utf-8")


def test_what_is_not_available_is_refused(data_file, tmp_path):
    tok = Tokenizer.load(_write(tmp_path, convert(data_file("sp_test_models/test_model.model"), "t5")))
    assert tok.encode("x y", alpha=0.1, seed=1) == tok.encode_batch(["x y"], alpha=0.1, seed=1)[0]  # (exactness:
    # test_sentencepiece_sampling.py)
    for call in (lambda: tok.encode("x", alpha=0.1, return_offsets=True), lambda: tok.sample("x", 0.1, 2),
                 lambda: tok.nbest("x", 2),
                 lambda: tok.entropy("x"), lambda: tok.sample_batch(["x"], 0.1, 2)):
        with pytest.raises(NotImplementedError, match="tokenizer.json"):
            call()


# -- import: hand-written files for each quirk --------------------------------------------
_ALPHABET = list("ab cdAB  ▁\t\n") + ["é", "e\u0301", "ｶ", "ﾞ", "ﬁ", "Ａ", "\u3000", "𓀀", "☃", "<unk>", "<s>", "</s>",
                                          "<0x41>", "x", "ab", "\u200d", "🙂", "\r\n", "Σ", "İ"]


def random_texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(_ALPHABET, size=int(rng.integers(0, 14)))) for _ in range(n)]


def _small_json(precompiled: str, **changes) -> dict:
    """A small Unigram tokenizer.json: duplicates, control and byte pieces, a literal
    ``<unk>``, pieces across ``▁``."""
    vocab = [["<unk>", 0.0], ["<s>", 0.0], ["</s>", 0.0], ["▁", -2.0], ["a", -3.0], ["b", -3.5], ["ab", -4.0],
             ["▁a", -3.2], ["c", -4.5], ["d", -5.0], ["A", -6.0], ["é", -5.5], ["e", -6.5], ["カ", -7.0],
             ["ｶ", -7.5], ["▁ab", -5.0], ["a▁b", -2.0], ["fi", -6.0], ["f", -8.0], ["i", -8.0], ["B", -7.0],
             ["ab", -9.0], ["x", -6.0], ["<0x41>", 0.0], ["\t", -9.0], ["σ", -5.0], ["i\u0307", -4.0],
             ["<unk>x", -1.0]]
    vocab += [[f"<0x{b:02X}>", 0.0] for b in range(256) if b != 0x41]
    obj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 1, "content": "<s>", "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True},
                         {"id": 2, "content": "</s>", "single_word": False, "lstrip": True, "rstrip": True,
                          "normalized": False, "special": True},
                         {"id": 6, "content": "ab", "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": True, "special": False}],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": precompiled},
            {"type": "Replace", "pattern": {"Regex": "\\A +| +\\z"}, "content": ""},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True},
        "post_processor": None, "decoder": None,
        "model": {"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": False},
    }
    for key, value in changes.items():
        if key in ("unk_id", "byte_fallback", "vocab"):
            obj["model"][key] = value
        else:
            obj[key] = value
    return obj


@pytest.fixture(scope="module")
def charsmap(data_file) -> str:
    spec = SentencePieceTokenizer.from_file(data_file("sp_test_models/test_ja_model.model")).spec
    import base64

    return base64.b64encode(spec.precompiled_charsmap).decode("ascii")


VARIANTS = {
    "as_is": {},
    "byte_fallback": {"byte_fallback": True},
    "always": {"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": False}},
    "legacy_add_prefix_space": {"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True,
                                                  "str_rep": "▁"}},
    "pegasus_first": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}]}},
    "never_split_isolated": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": False},
        {"type": "Split", "pattern": {"Regex": "ab|<s>"}, "behavior": "Isolated", "invert": False},
        {"type": "Split", "pattern": {"String": "c"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"String": "d"}, "behavior": "MergedWithNext", "invert": False}]}},
    "llama_legacy": {"pre_tokenizer": None, "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}},
    "albert_like": {"normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"String": "``"}, "content": "\""}, {"type": "NFKD"}, {"type": "StripAccents"},
        {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}},
    "first_after_strip": {"normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Strip", "strip_left": True, "strip_right": False}, {"type": "Lowercase"}, {"type": "StripAccents"},
        {"type": "Prepend", "prepend": "c"}, {"type": "Replace", "pattern": {"Regex": "\\Acx|b+\\z"}, "content": ""}]}},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_hand_written_files_give_tokenizers_ids(charsmap, tmp_path, variant):
    """Duplicated pieces (the last wins), literal ``<unk>`` next to unknown characters
    (fused), byte fallback with a missing byte piece, added tokens with lstrip/rstrip and
    normalized ones, ``first`` after normalizers that drop or insert characters at the
    start, WhitespaceSplit, Split behaviors, legacy fields."""
    obj = _small_json(charsmap, **VARIANTS[variant])
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(obj, ensure_ascii=False), "utf-8")
    check_same_ids(path, EDGES + random_texts(1500, seed=12))


def test_precompiled_is_tokenizers_grapheme_rule(data_file, corpus_texts):
    """The normalizer alone, on its two paths (plain, and with alignments), against
    ``tokenizers.normalizers.Precompiled``."""
    for model in SPM_MODELS:
        blob = SentencePieceTokenizer.from_file(data_file(f"sp_test_models/{model}")).spec.precompiled_charsmap
        theirs = tokenizers.normalizers.Precompiled(blob)
        (ours,) = _normalizer_steps({"type": "Precompiled", "precompiled_charsmap":
                                     __import__("base64").b64encode(blob).decode()}, "test")
        texts = corpus_texts[::5] + EDGES + random_texts(800, seed=3)
        for t in texts:
            want = theirs.normalize_str(t)
            assert ours.plain(t) == want, t
            assert "".join(ours.aligned(list(t), list(range(len(t))))[0]) == want, t


# -- export -----------------------------------------------------------------------------
def _sentencepiece_differs(text: str) -> bool:
    """Texts where tokenizers' pipeline is known to differ from SentencePiece (see
    ``to_sentencepiece_tokenizer_json``): control/unknown/byte piece names written in the
    text, half-width katakana with sound marks (grapheme rule of Precompiled)."""
    if any(name in text for name in ("<s>", "</s>", "<unk>", "<0x", "<pad>", "<cls>", "<mask>", "<sep>")):
        return True
    return any("\uff61" <= c <= "\uff9f" for c in text) or any(
        len(g) > 1 and (g[0] == "\r" or unicodedata.normalize("NFKC", g[0]) != g[0]) for g in regex.findall(r"\X", text))


@pytest.mark.parametrize("which", SPM_MODELS + ["byte_fallback", "user_and_control", "nfkc_cf_no_dummy", "identity"])
def test_export_gives_sentencepieces_ids_in_tokenizers(data_file, trained, corpus_texts, tmp_path, which):
    model = data_file(f"sp_test_models/{which}") if which.endswith(".model") else trained[which]
    tok, sp = Tokenizer.load(model), spm.SentencePieceProcessor(model_file=str(model))
    path = tmp_path / "tokenizer.json"
    save_sentencepiece_huggingface(tok, path)
    hf = tokenizers.Tokenizer.from_file(str(path))
    texts = corpus_texts[:: 1 if which in SPM_MODELS else 3] + EDGES
    plain = [t for t in texts if not _sentencepiece_differs(t)]
    assert hf_ids(hf, plain) == sp.encode(plain) == tok.encode_batch(plain)
    # ... and our import of the file is tokenizers on every text, the differing ones included.
    assert Tokenizer.load(path).encode_batch(texts) == hf_ids(hf, texts)


def test_export_works_in_transformers(data_file, tmp_path):
    from transformers import PreTrainedTokenizerFast

    model = data_file("sp_test_models/test_model.model")
    tok, sp = Tokenizer.load(model), spm.SentencePieceProcessor(model_file=str(model))
    path = tmp_path / "tokenizer.json"
    save_sentencepiece_huggingface(tok, path)
    fast = PreTrainedTokenizerFast(tokenizer_file=str(path), unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    assert (fast.unk_token_id, fast.bos_token_id, fast.eos_token_id) == (sp.unk_id(), sp.bos_id(), sp.eos_id())
    text = "I saw a girl with a telescope."
    assert fast(text, add_special_tokens=False)["input_ids"] == sp.encode(text)
    assert fast.decode(sp.encode(text)) == sp.decode(sp.encode(text))


def test_export_is_atomic_and_refuses_what_it_cannot_write(data_file, trained, tmp_path):
    tok = Tokenizer.load(data_file("sp_test_models/test_model.model"))
    path = tmp_path / "tokenizer.json"
    path.write_text("old")
    save_sentencepiece_huggingface(tok, path)
    assert json.loads(path.read_text("utf-8"))["model"]["type"] == "Unigram"
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["a b c d e f g h"] * 50), model_writer=out,
                                   model_type="unigram", vocab_size=12, minloglevel=2, treat_whitespace_as_suffix=True)
    suffix = SentencePieceTokenizer(out.getvalue())
    with pytest.raises(ValueError, match="treat_whitespace_as_suffix"):
        to_sentencepiece_tokenizer_json(suffix)


# -- refusals ------------------------------------------------------------------------------
def _refused(tmp_path, obj, match):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(obj, ensure_ascii=False), "utf-8")
    with pytest.raises(ValueError, match=match):
        Tokenizer.load(path)


def test_what_cannot_be_reproduced_is_refused_by_name(charsmap, tmp_path):
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE({"a": 0, "b": 1, "ab": 2}, [("a", "b")]))
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
    _refused(tmp_path, json.loads(bpe.to_str()), "its model is 'BPE'")
    _refused(tmp_path, _small_json(charsmap, normalizer={"type": "BertNormalizer"}), "normalizer 'BertNormalizer'")
    _refused(tmp_path, _small_json(charsmap, pre_tokenizer={"type": "Whitespace"}), "pre-tokenizer 'Whitespace'")
    _refused(tmp_path, _small_json(charsmap, normalizer={"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}),
             "regular expression")
    _refused(tmp_path, _small_json(charsmap, normalizer={"type": "Replace", "pattern": {"Regex": "a*"}, "content": ""}),
             "can match empty text")
    _refused(tmp_path, _small_json(charsmap, unk_id=None), "Metaspace.*needs an unk_id")
    _refused(tmp_path, _small_json(charsmap, unk_id=10_000), "unk_id")
    obj = _small_json(charsmap)
    obj["added_tokens"][0]["single_word"] = True
    _refused(tmp_path, obj, "single_word")
    obj = _small_json(charsmap)
    obj["added_tokens"].append(dict(obj["added_tokens"][0]))
    _refused(tmp_path, obj, "added token '<s>' appears twice")
    obj = _small_json(charsmap, normalizer={"type": "NFKC"})
    _refused(tmp_path, obj, "prepend_scheme 'first' after a Unicode normalization form")
    obj = _small_json(charsmap, pre_tokenizer=None, normalizer=None)
    _refused(tmp_path, obj, "spaces can reach the model")
    obj = _small_json(charsmap)
    obj["model"]["alpha"] = 0.1
    _refused(tmp_path, obj, "samples")


def test_scores_are_read_as_tokenizers_reads_them(data_file, tmp_path):
    """serde_json's default parser is not correctly rounded; tokenizers segments with the
    scores it reads.  Here "ab" ties "a" + "b" exactly as written, but tokenizers reads the
    score of "ab" one ulp low, so it splits; so does the import."""
    from viterbisample.huggingface_tokenizer import serde_json_f64

    path = _write(tmp_path, convert(data_file("sp_test_models/test_model.model"), "spm_legacy"))
    written = json.loads(path.read_text("utf-8"), parse_float=str)["model"]["vocab"]
    read = json.loads(tokenizers.Tokenizer.from_file(str(path)).to_str())["model"]["vocab"]
    assert [serde_json_f64(s) for _, s in written] == [s for _, s in read]
    assert sum(float(s) != r for (_, s), (_, r) in zip(written, read)) > 0  # the case exists
    obj = {"version": "1.0", "added_tokens": [], "normalizer": None, "post_processor": None, "decoder": None,
           "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": True},
           "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": False, "vocab": [
               ["<unk>", 0.0], ["a", -0.5], ["b", -3.3499213856351084], ["ab", -3.8499213856351084]]}}
    tie = tmp_path / "tie.json"
    tie.write_text(json.dumps(obj), "utf-8")
    assert -0.5 + -3.3499213856351084 == -3.8499213856351084
    assert Tokenizer.load(tie).encode("ab") == tokenizers.Tokenizer.from_file(str(tie)).encode("ab").ids == [1, 2]
