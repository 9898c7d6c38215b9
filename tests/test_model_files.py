"""Damaged and hostile model files: every one is refused with a ``ValueError`` that names
the file and the problem (never another exception type, never a crash).

Covers the JSON model file (``io.model_file``), the score range every way of building a model
enforces (``Model``), and the SentencePiece importer on malformed protobuf (hand-built
here, so these tests need no data files).
"""

from __future__ import annotations

import json
import random
import struct
from importlib import resources

import numpy as np
import pytest

from viterbisample import Tokenizer
from viterbisample.model import MAX_ABS_SCORE, Model
from viterbisample.io.model_file import dumps, load, loads
from viterbisample.io.sentencepiece import BYTE, CONTROL, NORMAL, UNKNOWN, convert, parse_model_proto

BYTES = [bytes([b]) for b in range(256)]
EXTRA = [b"ab", "é".encode(), b"\xff\xfe", b"the "]


def small_model(specials=("<pad>", "<bos>", "<eos>")) -> Model:
    rng = np.random.default_rng(3)
    return Model(BYTES + EXTRA, rng.uniform(-12, -1, 256 + len(EXTRA)), specials)


def file_data(model: Model | None = None) -> dict:
    return json.loads(dumps(model or small_model()))


def refused(text: str, match: str, source: str = "m.json") -> None:
    with pytest.raises(ValueError, match=match) as info:
        loads(text, source)
    assert str(info.value).startswith(f"{source}: not a valid viterbisample model: ")


# -- the score range, in Model itself ---------------------------------------------------
@pytest.mark.parametrize("bad", [MAX_ABS_SCORE * (1 + 1e-15), -1e5, 1e300, float("inf"), float("nan")])
def test_from_pieces_refuses_scores_out_of_range(bad):
    scores = [-5.0] * 256
    scores[7] = bad
    with pytest.raises(ValueError, match=r"score 7 is .*must be finite with \|score\| <= 10000"):
        Tokenizer.from_pieces(BYTES, scores)


def test_scores_at_the_limit_and_python_ints_are_fine():
    scores = [-MAX_ABS_SCORE, MAX_ABS_SCORE] + [-5] * 254  # ints, as from a JSON file
    tok = Tokenizer.from_pieces(BYTES, scores)
    assert tok.model.piece_scores[:3].tolist() == [-1e4, 1e4, -5.0]


def test_an_int_too_large_for_a_float_is_a_value_error():
    with pytest.raises(ValueError, match="too large for a float"):
        Model(BYTES, [10**400] + [-5.0] * 255)


# -- scores in the file -------------------------------------------------------------------
@pytest.mark.parametrize("score, shown", [
    (1e5, "100000.0"),
    (-10001, "-10001"),
    (10**400, r"10{39}\.\.\. \(401 characters\)"),  # too large for a float
    (-(10**4000), r"-10{38}\.\.\. \(4002 characters\)"),
], ids=["1e5", "-10001", "10**400", "-10**4000"])
def test_file_scores_out_of_range(score, shown):
    data = file_data()
    data["pieces"][258][1] = score
    refused(json.dumps(data), rf"score of piece 258 is {shown}; .*\|score\| <= 10000")


def test_a_json_float_beyond_the_double_range_reads_as_inf_and_is_refused():
    data = file_data()
    data["pieces"][3][1] = 0.5
    text = json.dumps(data).replace("0.5", "1e400")
    refused(text, "score of piece 3 is Infinity")


def test_json_integer_scores_in_range_load():
    data = file_data()
    data["pieces"][258][1] = -7
    assert loads(json.dumps(data)).piece_scores[258] == -7.0


# -- the header ---------------------------------------------------------------------------
@pytest.mark.parametrize("version, shown", [
    (True, "true"), (1.0, "1.0"), (2.0, "2.0"), ("1", '"1"'), (None, "null"), (3, "3"), (0, "0"),
])
def test_version_must_be_exactly_the_integer_1_or_2(version, shown):
    data = file_data()
    data["version"] = version
    refused(json.dumps(data), f"declares format version {shown} but this release reads versions 1 and 2")


def test_version_2_records_the_normalizer_and_version_1_loads_as_identity():
    data = file_data()
    assert data["version"] == 2 and data["normalizer"] == {"kind": "identity"}
    assert loads(json.dumps(data)).normalizer.is_identity
    old = dict(data, version=1)
    del old["normalizer"]
    assert loads(json.dumps(old)).normalizer.is_identity
    missing = dict(data)
    del missing["normalizer"]
    refused(json.dumps(missing), "the 'normalizer' field is missing")


@pytest.mark.parametrize("normalizer, match", [
    ({"kind": "nfkc-magic"}, "unknown normalizer kind 'nfkc-magic'"),
    ({"kind": "identity", "table": "x"}, "the identity normalizer takes no parameters"),
    ("identity", "'normalizer' must be an object with a 'kind'"),
    ({}, "'normalizer' must be an object with a 'kind'"),
])
def test_bad_normalizers_are_refused(normalizer, match):
    data = file_data()
    data["normalizer"] = normalizer
    refused(json.dumps(data), match)


def test_missing_version():
    data = file_data()
    del data["version"]
    refused(json.dumps(data), "declares format version null")


def test_special_tokens_are_required():
    data = file_data()
    del data["special_tokens"]
    refused(json.dumps(data), "the 'special_tokens' field is missing")


def test_an_empty_special_token_list_is_kept():
    model = small_model(specials=())
    again = loads(dumps(model))
    assert again.special_tokens == () and again.piece_id(b"\x00") == 0 and again == model


def test_the_file_records_the_piece_count():
    model = small_model()
    head = dumps(model).splitlines()[0]
    assert f'"num_pieces": {len(model.pieces)}' in head
    assert loads(dumps(model)) == model


def test_lines_deleted_from_a_file_are_refused():
    model = small_model()
    lines = dumps(model).splitlines(keepends=True)
    # Whole piece lines from the middle: still valid JSON, and every byte still a piece.
    cut = "".join(lines[:258] + lines[260:])
    refused(cut, "the header says 260 pieces but the file has 258; it was cut or edited")


def test_a_50kb_deletion_from_the_shipped_model_is_refused():
    text = (resources.files("viterbisample") / "data" / "default_model.json").read_text("utf-8")
    lines = text.splitlines(keepends=True)
    start = len(lines) // 2
    end, removed = start, 0
    while removed < 50_000:
        removed += len(lines[end])
        end += 1
    refused("".join(lines[:start] + lines[end:]), "the header says 31997 pieces but the file has",
            "default_model.json")


def test_the_shipped_model_has_the_count():
    text = (resources.files("viterbisample") / "data" / "default_model.json").read_text("utf-8")
    head = json.loads(text.split("\n", 1)[0] + ' "pieces": []}')
    assert head["num_pieces"] == len(Tokenizer.default().model.pieces) == 31997


def test_files_from_before_the_count_still_load():
    model = small_model()
    data = file_data(model)
    del data["num_pieces"]
    assert loads(json.dumps(data)) == model


@pytest.mark.parametrize("count", [True, -1, "260", 260.0, None, 10**50])
def test_a_bad_piece_count(count):
    data = file_data()
    data["num_pieces"] = count
    match = ("the header says" if isinstance(count, int) and not isinstance(count, bool) and count >= 0
             else "'num_pieces' must be a count of pieces")
    refused(json.dumps(data), match)


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.json"
    data = file_data()
    data["version"] = True
    path.write_text(json.dumps(data), "utf-8")
    with pytest.raises(ValueError, match=r"broken\.json: not a valid viterbisample model: .*version true"):
        load(path)


def test_the_command_line_reports_a_huge_integer_score_in_one_line(tmp_path, run_python):
    data = file_data()
    data["pieces"][0][1] = 10**400
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data), "utf-8")
    r = run_python("-m", "viterbisample.cli", "encode", "--model", str(path), stdin=b"hello\n")
    assert r.returncode != 0
    assert r.stderr.startswith(b"vsample: error:") and b"huge.json" in r.stderr
    assert b"score of piece 0" in r.stderr and b"Traceback" not in r.stderr


def test_random_damage_is_refused_or_loads_a_valid_model():
    """Byte flips, deletions, duplications and truncations of a small file: ``loads``
    either refuses with ValueError or returns a model that encodes and decodes."""
    text = dumps(small_model())
    rng = random.Random(5)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(400):
        raw = bytearray(text.encode("utf-8"))
        a = rng.randrange(len(raw))
        b = min(len(raw), a + rng.randint(1, 300))
        kind = rng.randrange(4)
        if kind == 0:
            raw[a] = rng.randrange(256)
        elif kind == 1:
            del raw[a:b]
        elif kind == 2:
            raw[b:b] = raw[a:b]
        else:
            del raw[a:]
        try:
            model = loads(raw.decode("utf-8", "replace"))
        except ValueError:
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        tok = Tokenizer(model)
        assert tok.decode_bytes(tok.encode(b"the \xff\xfe ab\xc3\xa9")) == b"the \xff\xfe ab\xc3\xa9"
    assert outcomes["refused"] > 300 and outcomes["loaded"] > 0


# -- SentencePiece protobuf ---------------------------------------------------------------
def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _spm_piece(piece: bytes, score: float, ptype: int = NORMAL) -> bytes:
    body = _len_field(1, piece) + _varint(2 << 3 | 5) + struct.pack("<f", score) + _varint(3 << 3) + _varint(ptype)
    return _len_field(1, body)


def _spm_model(pieces) -> bytes:
    return b"".join(_spm_piece(*p) for p in pieces) + _len_field(3, _len_field(1, b"identity"))


SPM_BASIC = [(b"<unk>", 0.0, UNKNOWN), (b"<s>", 0.0, CONTROL), (b"</s>", 0.0, CONTROL),
             ("\u2581ab".encode(), -1.0), (b"a", -2.0), (b"b", -3.0), (b"<0x41>", 0.0, BYTE)]


def import_bytes(data: bytes):
    return convert(parse_model_proto(data, "x.model"), "x.model")


def test_spm_score_out_of_range_names_the_sentencepiece_piece():
    data = _spm_model(SPM_BASIC[:4] + [(b"a", -3e38)])
    with pytest.raises(ValueError, match=r"x.model: cannot import .*piece 4 \(b'a'\) has the score -3"):
        import_bytes(data)


def test_spm_derived_byte_scores_out_of_range():
    # min score -9995: its unknown-byte score, -10005, is past the limit.
    data = _spm_model(SPM_BASIC[:4] + [(b"a", -9995.0)])
    with pytest.raises(ValueError, match=r"x.model: cannot import .*\|score\| <= 10000"):
        import_bytes(data)


@pytest.mark.parametrize("spelling", [b"<0x-1>", b"<0x 1>", b"<0x+1>", b"<0xg1>"])
def test_spm_byte_pieces_need_two_hex_digits(spelling):
    data = _spm_model(SPM_BASIC + [(spelling, 0.0, BYTE)])
    with pytest.raises(ValueError, match=r"x.model: cannot import .*not of the form <0xNN>"):
        import_bytes(data)


def test_spm_random_damage_is_a_value_error():
    good = _spm_model(SPM_BASIC + [(bytes([c]) * 2, -4.0 - c / 100) for c in range(97, 123)])
    assert import_bytes(good).tokenizer.vocab_size > 256
    rng = random.Random(11)
    for _ in range(2000):
        raw = bytearray(good)
        a = rng.randrange(len(raw))
        kind = rng.randrange(4)
        if kind == 0:
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif kind == 1:
            del raw[a : a + rng.randint(1, 40)]
        elif kind == 2:
            raw[a:a] = raw[a : a + rng.randint(1, 40)]
        else:
            del raw[a:]
        try:
            imp = import_bytes(bytes(raw))
        except ValueError as exc:
            assert str(exc).startswith("x.model: ")
            continue
        tok = imp.tokenizer
        assert tok.decode_bytes(tok.encode(b" ab a\xff")) == tok.model.normalizer.normalize(b" ab a\xff")
