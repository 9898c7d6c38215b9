"""``normalize.SentencePieceNormalizer`` and ``charsmap``: SentencePiece's normalizer,
compared with the sentencepiece package (the ``test`` extra).

The reference is sentencepiece's own ``normalize(..., with_offsets=True)`` on bytes, which
gives the normalized bytes and, for each of them, the input byte it came from (plus one
final entry, the input length consumed).  Ours is the same with every ``▁`` written as one
space byte that keeps the offset of its first byte, and without the final entry
(``sentencepiece_form_as_ours``).  The character maps of the built-in rules come from
``SentencePieceNormalizer(rule_name=...).serialized_normalizer_spec()``, no training needed.
"""

from __future__ import annotations

import base64
import doctest
import itertools
import json
import pickle
import struct

import numpy as np
import pytest
import sentencepiece as spm
from hypothesis import given, settings
from hypothesis import strategies as st

from test_spm_import import BASIC, META, USER_DEFINED, _int_field, _len_field, _model
from viterbisample import Tokenizer, charsmap, normalize
from viterbisample.charsmap import CharsMap
from viterbisample.io.sentencepiece import convert, import_sentencepiece, parse_model_proto
from viterbisample.normalize import SentencePieceNormalizer

RULES = ["nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf", "identity"]
MODEL_FILES = ["test_model.model", "test_ja_model.model"]
FLAGS = ("add_dummy_prefix", "remove_extra_whitespaces", "escape_whitespaces")
FLAG_SETS = [dict(zip(FLAGS, values)) for values in itertools.product([True, False], repeat=3)]

TEXTS = [
    "", " ", "   ", "\t", "\u3000",
    "Hello world", "  Hello   world  ", " \t a \t ", "a  \t\t b\t", "a\r\nb\n",
    "Ｈｅｌｌｏ　Ｗｏｒｌｄ！ １２３ ＡＢＣ",  # full-width forms
    "e\u0301cole\u0300 n\u0303o A\u030a",  # NFD accents
    "ﾊﾝｶｸｶﾀｶﾅ ｶﾞｷﾞｸﾞ ﾊﾟ",  # half-width katakana, with (half-width) voicing marks
    "ﬁ ﬂ ﬃ ﬀ ǅ Ⅻ ㈱ ① ² ½ ™ ㌔",  # ligatures and compatibility characters
    "a\x01b\x07c\x1bd\x7fe\x00f",  # control characters, NUL
    "\x01 \x02 a \x03 ",
    "▁", "▁▁", "a▁b", "▁a", "a▁", "a ▁ b ▁", "▁▁a▁ ▁",  # U+2581 in the input
    "😀 👍🏽 👨\u200d👩\u200d👧 🇯🇵",  # emoji, ZWJ sequences, flags
    "漢字かな交じり文。「吾輩は猫である」", "한국어 텍스트", "中文，标点！",
    "Straße İstanbul ΣΑΣ ﬆ",  # case folding material for the _cf rules
    "\u200b\u200dzero\u2060width\ufeff", "\ufffd literal replacement character",
    "x" * 300, "  " * 100 + "y",
    "ﷺ" * 50 + " ﷻ " * 30,  # 3 bytes become 33: more than the first guess of the room needed
]
INVALID_UTF8 = [
    b"\xff", b"a\x80b", b"\xe3\x81", b"\xe3\x81 a", b"\xc0\xaf", b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b" \xff \xfe ", b"\xe2\x96", b"\xe2\x96\x81\xe2\x96",
    b"ab\xff\xe2\x96c\xed\xa0\x80\xc0\xaf", "é".encode()[:1] + "漢".encode(),
]


def sentencepiece_form_as_ours(normalized: bytes, offsets: list[int]) -> tuple[bytes, list[int]]:
    """SentencePiece's (bytes, norm_to_orig) in our form: each ``▁`` is one space byte with
    the offset of its first byte; the final entry (input consumed) is dropped."""
    out, out_offsets, i = bytearray(), [], 0
    while i < len(normalized):
        if normalized[i : i + 3] == META.encode():
            out.append(0x20)
            step = 3
        else:
            out.append(normalized[i])
            step = 1
        out_offsets.append(offsets[i])
        i += step
    return bytes(out), out_offsets


def assert_same(ours: SentencePieceNormalizer, reference, data: bytes) -> None:
    """Our normalize and normalize_with_offsets of ``data`` against SentencePiece's."""
    want, want_offsets = sentencepiece_form_as_ours(*reference.normalize(data, with_offsets=True))
    got, got_offsets = ours.normalize_with_offsets(data)
    assert got == want, (data, got, want)
    assert got_offsets.dtype == np.int64 and got_offsets.tolist() == want_offsets, data
    assert ours.normalize(data) == want, data


@pytest.fixture(scope="module")
def rule_specs() -> dict[str, bytes]:
    """The serialized NormalizerSpec of each built-in rule."""
    return {rule: spm.SentencePieceNormalizer(rule_name=rule).serialized_normalizer_spec()
            for rule in RULES}


def spec_fields(spec: bytes):
    """The NormalizerSpec fields as our reader sees them (wrapped into a ModelProto)."""
    return parse_model_proto(_model(BASIC, normalizer=spec))


def ours_for(spec: bytes, **flags) -> SentencePieceNormalizer:
    return SentencePieceNormalizer(spec_fields(spec).precompiled_charsmap, **flags)


@pytest.fixture(scope="module")
def nmt_nfkc(rule_specs) -> tuple[SentencePieceNormalizer, object]:
    return ours_for(rule_specs["nmt_nfkc"]), spm.SentencePieceNormalizer(rule_name="nmt_nfkc")


def corpus_lines(data_file) -> list[bytes]:
    return [line for name in ["en_botchan.txt", "ja_wagahaiwa_nekodearu.txt"]
            for line in data_file(f"corpora/{name}").read_bytes().splitlines()]


# -- the built-in rules ----------------------------------------------------------------------
@pytest.mark.parametrize("rule", RULES)
def test_builtin_rules_match_sentencepiece(rule_specs, rule):
    blob = spec_fields(rule_specs[rule]).precompiled_charsmap
    assert (blob == b"") == (rule == "identity")
    for flags in FLAG_SETS:
        ours = SentencePieceNormalizer(blob, **flags)
        reference = spm.SentencePieceNormalizer(rule_name=rule, **flags)
        for data in [t.encode() for t in TEXTS] + INVALID_UTF8:
            assert_same(ours, reference, data)


@pytest.mark.parametrize("rule", RULES)
def test_builtin_rules_on_the_corpora(rule_specs, data_file, rule):
    ours = ours_for(rule_specs[rule])
    reference = spm.SentencePieceNormalizer(rule_name=rule)
    for line in corpus_lines(data_file):
        assert_same(ours, reference, line)


@pytest.mark.parametrize("rule", ["nmt_nfkc", "nfkc_cf", "identity"])
@pytest.mark.parametrize("flags", FLAG_SETS[::2])
def test_batches_are_normalized_as_texts_are(rule_specs, data_file, rule, flags):
    """``normalize_batch`` (one kernel call) equals ``normalize`` text by text, also for
    texts that grow past the room first guessed (U+FDFA becomes 33 bytes under NFKC)."""
    ours = ours_for(rule_specs[rule], **flags)
    texts = corpus_lines(data_file)[:3000] + [t.encode() for t in TEXTS] + INVALID_UTF8
    texts += ["\ufdfa" * 40, "a\ufdfa", "\ufdfa \ufdfa  "]
    texts = [t.encode() if isinstance(t, str) else t for t in texts]
    assert ours.normalize_batch(texts) == [ours.normalize(t) for t in texts]
    assert ours.normalize_batch([]) == []


@pytest.mark.parametrize("rule", RULES)
def test_the_map_alone_matches_sentencepiece(rule_specs, rule):
    """``CharsMap.apply``: SentencePiece with every whitespace rule off."""
    charsmap = CharsMap.parse(spec_fields(rule_specs[rule]).precompiled_charsmap)
    reference = spm.SentencePieceNormalizer(
        rule_name=rule, add_dummy_prefix=False, remove_extra_whitespaces=False,
        escape_whitespaces=False)
    for data in [t.encode() for t in TEXTS] + INVALID_UTF8:
        assert charsmap.apply(data) == reference.normalize(data), data


def test_known_answers(nmt_nfkc):
    ours, _ = nmt_nfkc
    assert ours.normalize("  Ｈｅｌｌｏ   ﬁ wörld  ".encode()) == " Hello fi wörld".encode()
    assert ours.normalize("a▁▁b▁".encode()) == b" a b"  # nmt_nfkc maps U+2581 to a space
    assert ours.normalize(b"a\xffb") == " a\ufffdb".encode()  # one U+FFFD per invalid byte
    assert ours.normalize(b"\xe3\x81") == " \ufffd\ufffd".encode()
    text, offsets = ours.normalize_with_offsets("  ｈｉ  x".encode())
    assert text == b" hi x" and offsets.tolist() == [2, 2, 5, 8, 10]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_random_text_nmt_nfkc(nmt_nfkc, text):
    ours, reference = nmt_nfkc
    assert_same(ours, reference, text.encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_nmt_nfkc(nmt_nfkc, data):
    ours, reference = nmt_nfkc
    assert_same(ours, reference, data)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(max_codepoint=0x7F), max_size=30), st.sampled_from(FLAG_SETS),
       st.booleans(), st.sampled_from(["nmt_nfkc", "nfkc_cf", "identity"]))
def test_ascii_shortcut_is_the_kernel(rule_specs, text, flags, suffix, rule):
    """``normalize`` skips the kernel for ASCII text the map leaves alone; both agree."""
    ours = ours_for(rule_specs[rule], treat_whitespace_as_suffix=suffix,
                    user_defined_symbols=[b"<m>", b"ab"], **flags)
    data = text.encode()
    assert ours.normalize(data) == ours.normalize_with_offsets(data)[0]


# -- the vendored models and models with user-defined symbols ---------------------------------
@pytest.mark.parametrize("name", MODEL_FILES)
def test_vendored_models_match_sentencepiece(data_file, name):
    path = data_file(f"sp_test_models/{name}")
    ours = import_sentencepiece(path).tokenizer.model.normalizer
    assert isinstance(ours, SentencePieceNormalizer) and ours.name == "nfkc"
    reference = spm.SentencePieceProcessor(model_file=str(path))
    for data in [t.encode() for t in TEXTS] + INVALID_UTF8 + corpus_lines(data_file):
        assert_same(ours, reference, data)


SYMBOLS = ["<mask>", "<ma", "ｈｅｌｌｏ", "a b", META + "x", "ﬁ", "  "]
SYMBOL_TEXTS = ["  ｈｅｌｌｏ  <mask>ﬁ a b ▁x  <ma", "a  b", "  x ", "<mas<mask>>", "ﬁﬁ ｈｅｌｌ",
                "   ", "x    y", META + "x" + META, "a b  a b"]


@pytest.mark.parametrize("suffix", [False, True])
@pytest.mark.parametrize("flags", FLAG_SETS[::3] + FLAG_SETS[1:2])
def test_user_defined_symbols_and_suffix(rule_specs, suffix, flags):
    """A hand-built model: user-defined pieces (matched on the input, copied unchanged),
    treat_whitespace_as_suffix from the trainer spec, and the nmt_nfkc map."""
    spec = rule_specs["nmt_nfkc"] + b"".join(
        _int_field(number, value) for number, value in zip((3, 4, 5), flags.values()))
    pieces = BASIC + [(s, 0.0, USER_DEFINED) for s in SYMBOLS]
    data = _model(pieces, trainer=_int_field(24, int(suffix)), normalizer=spec)
    reference = spm.SentencePieceProcessor(model_proto=data)
    imported = convert(parse_model_proto(data), "symbols.model")
    ours = imported.tokenizer.model.normalizer
    assert ours.treat_whitespace_as_suffix == suffix
    assert ours.user_defined_symbols == tuple(sorted(s.encode() for s in SYMBOLS))
    for text in SYMBOL_TEXTS + TEXTS:
        assert_same(ours, reference, text.encode())
    # The tokenizer normalizes like SentencePiece: a protected symbol stays one token.
    ids = imported.tokenizer.encode("ｈｅｌｌｏ")
    assert imported.tokenizer.id_to_bytes(ids[-1 if not suffix else 0]) == "ｈｅｌｌｏ".encode()


def test_absent_flags_take_the_proto_defaults(rule_specs):
    ours = convert(parse_model_proto(_model(BASIC, normalizer=_len_field(1, b"x"))), "m").tokenizer
    n = ours.model.normalizer
    assert (n.add_dummy_prefix, n.remove_extra_whitespaces, n.escape_whitespaces,
            n.treat_whitespace_as_suffix) == (True, True, True, False)
    assert n.charsmap.blob == b"" and ours.encode("a  b") == ours.encode(" a b")


def test_a_symbol_is_matched_up_to_its_first_nul():
    pieces = BASIC + [("<m>\0tail", 0.0, USER_DEFINED), ("\0x", 0.0, USER_DEFINED)]
    model = convert(parse_model_proto(_model(pieces)), "m").tokenizer.model
    assert model.normalizer.user_defined_symbols == (b"<m>",)


# -- the tokenizer of an imported model ----------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_FILES)
def test_encode_normalizes(data_file, name):
    path = data_file(f"sp_test_models/{name}")
    tok = import_sentencepiece(path).tokenizer
    reference = spm.SentencePieceProcessor(model_file=str(path))
    for text in TEXTS:
        normalized = reference.normalize(text).replace(META, " ").encode()
        assert tok.decode_bytes(tok.encode(text)) == normalized
    assert tok.encode("Ｈｅｌｌｏ　ｗｏｒｌｄ") == tok.encode("Hello world")


@pytest.mark.parametrize("name", MODEL_FILES)
def test_model_file_and_pickle_round_trips(data_file, tmp_path, name):
    tok = import_sentencepiece(data_file(f"sp_test_models/{name}")).tokenizer
    tok.save(tmp_path / "m.json")
    for back in [Tokenizer.load(tmp_path / "m.json"), pickle.loads(pickle.dumps(tok))]:
        assert back.model.normalizer == tok.model.normalizer
        assert isinstance(back.model.normalizer, SentencePieceNormalizer)
        for text in ["Ｈｅｌｌｏ　ｗｏｒｌｄ", "  漢字  ｶﾀｶﾅ ", "\x01a\tb "]:
            assert back.encode(text) == tok.encode(text)
            assert back.model.normalizer.normalize_with_offsets(text.encode())[1].tolist() == \
                tok.model.normalizer.normalize_with_offsets(text.encode())[1].tolist()


# -- to_json and from_json -------------------------------------------------------------------
def test_json_round_trip(rule_specs):
    ours = ours_for(rule_specs["nmt_nfkc_cf"], treat_whitespace_as_suffix=True,
                    escape_whitespaces=False, user_defined_symbols=[b"<m>", b"\xff\xfe", "é".encode()])
    fields = json.loads(json.dumps(ours.to_json()))
    assert fields["kind"] == "sentencepiece"
    assert fields["user_defined_symbols"] == ["<m>", "é", {"hex": "fffe"}]
    back = normalize.from_json(fields)
    assert back == ours and hash(back) == hash(ours) and back.to_json() == fields
    for data in [t.encode() for t in TEXTS] + INVALID_UTF8 + [b"<m>x\xff\xfe"]:
        assert back.normalize_with_offsets(data)[0] == ours.normalize_with_offsets(data)[0]
    assert back != ours_for(rule_specs["nmt_nfkc"]) != normalize.IDENTITY
    assert len(repr(ours)) < 300  # not the 240 KB map


def _fields(**changes):
    base = SentencePieceNormalizer(b"", user_defined_symbols=[b"<m>"]).to_json()
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("fields, message", [
    (_fields(add_dummy_prefix=None), r"missing \['add_dummy_prefix'\]"),
    (_fields(extra=1), r"unknown \['extra'\]"),
    (_fields(escape_whitespaces=1), "'escape_whitespaces' must be true or false"),
    (_fields(name=3), "'name' must be a string"),
    (_fields(precompiled_charsmap="not base64!"), "must be a base64 string"),
    (_fields(precompiled_charsmap=[1]), "must be a base64 string"),
    (_fields(precompiled_charsmap=base64.b64encode(b"\x08\0\0\0abc").decode()), "declares a double array"),
    (_fields(user_defined_symbols="<m>"), "must be a list"),
    (_fields(user_defined_symbols=[1]), "user-defined symbol 0"),
    (_fields(user_defined_symbols=[{"hex": "zz"}]), "user-defined symbol 0"),
    (_fields(user_defined_symbols=["\ud800"]), "user-defined symbol 0"),
    (_fields(user_defined_symbols=[""]), "must not be empty"),
])
def test_from_json_refuses_bad_fields(fields, message):
    with pytest.raises(ValueError, match=message):
        normalize.from_json(fields)


@pytest.mark.parametrize("module", [charsmap, normalize])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0


def test_identity_rules_are_unchanged():
    assert normalize.from_json({"kind": "identity"}) is not None
    with pytest.raises(ValueError, match="takes no parameters"):
        normalize.from_json({"kind": "identity", "name": "x"})
    assert "sentencepiece" in normalize.KINDS


# -- malformed character maps ------------------------------------------------------------------
def _blob_parts(blob: bytes) -> tuple[np.ndarray, bytes]:
    (size,) = struct.unpack_from("<I", blob)
    return np.frombuffer(blob, "<u4", size // 4, 4).copy(), blob[4 + size :]


def _blob(units: np.ndarray, pool: bytes) -> bytes:
    data = units.astype("<u4").tobytes()
    return struct.pack("<I", len(data)) + data + pool


def _leaf_value_index(units: np.ndarray) -> int:
    """The index of a unit that holds a pool offset (a leaf child of a reachable unit)."""
    for i, u in enumerate(units.tolist()):
        if not u >> 31 and u >> 8 & 1:
            return i ^ ((u >> 10) << ((u & 512) >> 6))
    raise AssertionError("no leaf")


def test_malformed_maps_raise_value_error(rule_specs):
    blob = spec_fields(rule_specs["nmt_nfkc"]).precompiled_charsmap
    units, pool = _blob_parts(blob)
    size = 4 * len(units)
    root = units.copy()
    root[0] = (1 << 20) << 10  # children at unit 2**20, far past the end
    leaf = units.copy()
    leaf[_leaf_value_index(units)] = (1 << 31) | (len(pool) + 5)
    cases = [
        (b"\1\2\3", "3 bytes long"),
        (b"\0\0\0\0", "4 bytes long"),
        (struct.pack("<I", 0) + b"abcd", "declares a double array of 0 bytes"),
        (struct.pack("<I", 6) + b"x" * 20, "declares a double array of 6 bytes"),
        (blob[: len(blob) // 2], f"declares a double array of {size} bytes"),
        (blob[: 4 + size - 4], "declares a double array"),
        (blob[: 4 + size], "pool of 0 bytes"),
        (blob[: 4 + size + 100], "pool of 100 bytes"),
        (_blob(units, pool.replace(b"\0", b"x")), "no NUL-terminated string"),
        (_blob(root, pool), "its root points to units"),
        (_blob(units[:256], pool), "past the 256 units"),
        (_blob(leaf, pool), f"pool offset {len(pool) + 5}"),
    ]
    for data, message in cases:
        with pytest.raises(ValueError, match=message):
            CharsMap.parse(data)
        with pytest.raises(ValueError, match="precompiled_charsmap"):
            SentencePieceNormalizer(data)


def test_malformed_map_in_a_model_file_names_the_file(rule_specs):
    spec = _len_field(1, b"broken") + _len_field(2, b"\x10\0\0\0short")
    with pytest.raises(ValueError, match="broken.model: cannot import .*precompiled_charsmap"):
        convert(parse_model_proto(_model(BASIC, normalizer=spec)), "broken.model")


def test_damaged_maps_never_crash(rule_specs):
    """Random damage to a real map: ValueError at parse, or a map that every text can
    walk (an index out of range in the kernel would crash the process, not raise)."""
    blob = bytearray(spec_fields(rule_specs["nmt_nfkc"]).precompiled_charsmap)
    rng = np.random.default_rng(5)
    texts = [t.encode() for t in TEXTS] + INVALID_UTF8 + [bytes(range(256))]
    loaded = 0
    for _ in range(200):
        data = bytearray(blob)
        for at in rng.integers(4, len(data), rng.integers(1, 20)):
            data[at] = rng.integers(256)
        try:
            ours = SentencePieceNormalizer(bytes(data))
        except ValueError:
            continue
        loaded += 1
        for text in texts:
            out, offsets = ours.normalize_with_offsets(text)
            assert len(out) == len(offsets) and (offsets.size == 0 or offsets.max() <= len(text))
    assert loaded > 0
