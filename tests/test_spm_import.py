"""``io.sentencepiece``: reading SentencePiece ``.model`` files and Viterbi parity with SentencePiece.

The parity tests need the sentencepiece package (in the ``test`` extra; never a runtime
dependency) and the SentencePiece test models in ``tests/data/sp_test_models``.
The reader and conversion tests build small models with a protobuf writer of their own.
"""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from viterbisample import Tokenizer
from viterbisample.io.sentencepiece import (
    BYTE,
    CONTROL,
    NORMAL,
    UNKNOWN,
    UNUSED,
    USER_DEFINED,
    import_sentencepiece,
    load_sentencepiece,
    parse_model_proto,
    read_sentencepiece,
    sentencepiece_input,
)

MODEL_FILES = ["test_model.model", "test_ja_model.model"]
META = "\u2581"


# -- a minimal protobuf writer, for hand-built models ------------------------------------
def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _len_field(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _int_field(field: int, v: int) -> bytes:
    return _key(field, 0) + _varint(v)


def _piece(piece: str | bytes, score: float, ptype: int | None = None) -> bytes:
    raw = piece.encode("utf-8") if isinstance(piece, str) else piece
    msg = _len_field(1, raw) + _key(2, 5) + struct.pack("<f", score)
    if ptype is not None:
        msg += _int_field(3, ptype)
    return _len_field(1, msg)


def _model(pieces, trainer: bytes = b"", normalizer: bytes = _len_field(1, b"identity")) -> bytes:
    out = b"".join(_piece(*p) for p in pieces)
    if trainer:
        out += _len_field(2, trainer)
    return out + _len_field(3, normalizer)


BASIC = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL),
         (META + "ab", -1.0), ("a", -2.0), ("b", -3.0), (META, -4.0)]


# -- the reader --------------------------------------------------------------------------
def test_reads_pieces_scores_types_and_specs():
    trainer = _int_field(3, 1) + _int_field(35, 1) + _int_field(43, -1) + _int_field(24, 0)
    normalizer = (_len_field(1, b"nmt_nfkc") + _len_field(2, b"any map bytes") + _int_field(3, 0)
                  + _int_field(4, 1))
    info = parse_model_proto(_model(BASIC, trainer, normalizer))
    assert info.precompiled_charsmap == b"any map bytes"  # read as is; checked when converted
    assert [p.piece for p in info.pieces] == [p[0].encode() for p in BASIC]
    assert [p.type for p in info.pieces] == [UNKNOWN, CONTROL, CONTROL] + [NORMAL] * 4
    assert info.pieces[4].score == -2.0
    assert info.byte_fallback and not info.add_dummy_prefix and info.remove_extra_whitespaces
    assert info.normalizer_name == "nmt_nfkc" and info.model_type == 1


def test_skips_unknown_fields_of_every_wire_type():
    extra = (_int_field(9, 12345) + _key(10, 1) + b"\0" * 8 + _key(11, 5) + b"\0" * 4
             + _len_field(12, b"anything"))
    data = extra + _model(BASIC, trainer=extra + _int_field(3, 1), normalizer=extra) + extra
    assert parse_model_proto(data).pieces == parse_model_proto(_model(BASIC)).pieces


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (_key(1, 2) + _varint(100) + b"xx", "claims 100 bytes"),
    (b"\xff" * 11, "varint"),
    (b"\x80", "ends inside a varint"),
    (_key(0, 0) + b"\0", "field number 0"),
    (_key(7, 3), "start-group"),
    (_key(7, 6), "invalid"),
    (_key(7, 5) + b"\0\0", "ends inside a 4-byte field"),
    (_int_field(1, 5), "expected length-delimited"),
    (_len_field(3, b""), "no pieces"),
    (_model(BASIC, normalizer=b"")[: -2], "no normalizer_spec"),
    (_model([("", -1.0)]), "empty"),
    (_model([("a", float("nan"))]), "finite"),
    (_model([("a", -1.0, 9)]), "unknown type 9"),
    (_len_field(1, _len_field(1, b"a") + _int_field(2, 3)), "expected 32-bit"),
    (_model(BASIC, normalizer=_int_field(2, 1)), "precompiled_charsmap"),
])
def test_malformed_bytes_raise_value_error(data, message):
    with pytest.raises(ValueError, match=message):
        parse_model_proto(data, "bad.model")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_sentencepiece(tmp_path / "nope.model")
    with pytest.raises(IsADirectoryError):
        load_sentencepiece(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.model"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_sentencepiece(path)


@pytest.mark.parametrize("name", MODEL_FILES)
def test_truncated_real_model_raises_value_error(data_file, name):
    data = data_file(f"sp_test_models/{name}").read_bytes()
    rng = random.Random(1)
    # The start, the end, random places, and piece boundaries (a well-formed prefix that
    # lacks the normalizer spec); a sample of each, since a late cut parses most of the file.
    cuts = set(range(0, 200)) | set(range(len(data) - 10, len(data)))
    cuts |= {rng.randrange(len(data)) for _ in range(40)}
    boundaries, pos = [], 0
    while data[pos] == 0x0A:  # field 1, length-delimited: one more piece
        n, k = 0, 0
        while True:
            b = data[pos + 1 + k]
            n |= (b & 0x7F) << 7 * k
            k += 1
            if b < 0x80:
                break
        pos += 1 + k + n
        boundaries.append(pos)
    cuts |= set(rng.sample(boundaries, 40)) | {boundaries[-1]}
    for cut in sorted(cuts):
        with pytest.raises(ValueError, match="not a valid SentencePiece model"):
            parse_model_proto(data[:cut], name)


def test_random_bytes_raise_value_error():
    rng = random.Random(7)
    for n in [1, 2, 5, 17, 100, 1000, 10000]:
        for _ in range(20):
            data = bytes(rng.randrange(256) for _ in range(n))
            with pytest.raises(ValueError, match="SentencePiece"):
                load_bytes(data)


def load_bytes(data: bytes) -> Tokenizer:
    from viterbisample.io.sentencepiece import convert

    return convert(parse_model_proto(data, "random"), "random").tokenizer


# -- the conversion ----------------------------------------------------------------------
def test_mapping_of_a_small_model():
    from viterbisample.io.sentencepiece import convert

    pieces = BASIC + [
        (" ab", -0.5),            # duplicate of "▁ab" after conversion, higher score: kept
        (META + "b", -9.0), (" b", -8.0),  # duplicate, the first is lower: " b" kept at -8
        ("<0x41>", 0.0, BYTE), ("<0xC3>", 0.0, BYTE),
        ("zz", -0.1, UNUSED),
        ("<mask>", 0.0, USER_DEFINED),
        ("<pad>", 0.0, CONTROL),
    ]
    imp = convert(parse_model_proto(_model(pieces)), "small")
    tok = imp.tokenizer
    assert tok.special_tokens == ("<unk>", "<s>", "</s>", "<pad>")
    model = tok.model
    score = {p: s for p, s in zip(model.pieces, model.piece_scores.tolist())}
    assert score[b" ab"] == -0.5 and score[b" b"] == -8.0 and score[b"a"] == -2.0
    assert b"zz" not in score and b"<0x41>" not in score
    unk = -9.0 - 10.0  # min NORMAL score - 10
    assert score[b"A"] == unk and score[b"\xc3"] == unk and score[b"\xff"] == unk
    assert score[b"\xa9"] == 0.0  # continuation byte: a whole unknown character costs unk
    assert score[b"<mask>"] == pytest.approx(6 * 1.1754943508222875e-38 - 0.1)
    assert tok.encode("<mask>") == [tok.piece_to_id(b" "), tok.piece_to_id(b"<mask>")]
    # Every byte is a piece, so the normalized bytes of any input round-trip.
    data = bytes(range(256)) * 2
    normalized = tok.model.normalizer.normalize(data)
    assert tok.decode_bytes(tok.encode(data)) == normalized
    assert tok.decode_bytes(tok.encode(normalized)) == normalized
    # Id maps.
    n_sp = len(pieces)
    assert imp.id_of_spm.shape == (n_sp,) and imp.spm_id_of.shape == (tok.vocab_size,)
    for i, p in enumerate(pieces):
        name, ptype = p[0], (p[2] if len(p) > 2 else NORMAL)
        our = int(imp.id_of_spm[i])
        if ptype == UNUSED:
            assert our == -1
        elif ptype in (UNKNOWN, CONTROL):
            assert tok.special_tokens[our] == name
            assert imp.spm_id_of[our] == i
        elif ptype == BYTE:
            assert tok.id_to_bytes(our) == bytes([int(name[3:5], 16)])
        else:
            assert tok.id_to_bytes(our) == name.replace(META, " ").encode()
    assert imp.to_spm_ids([tok.piece_to_id(b" ab")]) == [7]
    assert imp.to_spm_ids([tok.piece_to_id(b"A")]) == [10]  # the BYTE piece <0x41>
    assert imp.to_spm_ids([tok.piece_to_id(b"B")]) == [-1]


def test_unknown_characters_cost_one_penalty_each():
    from viterbisample.io.sentencepiece import convert

    tok = convert(parse_model_proto(_model(BASIC)), "small").tokenizer
    ids = tok.encode("ab☃é")
    assert tok.decode(ids) == " ab☃é"
    total = sum(tok.score(i) for i in ids)
    assert total == pytest.approx(-1.0 + 2 * (-14.0))


@pytest.mark.parametrize("pieces, trainer, message", [
    (BASIC, _int_field(3, 2), "BPE model"),
    ([("<unk>", 0.0, UNKNOWN), ("a", 0.0, USER_DEFINED)], b"", "no NORMAL pieces"),
    (BASIC + [("<0xZZ>", 0.0, BYTE)], b"", "<0xNN>"),
    (BASIC + [("<s>", 0.0, CONTROL)], b"", "appears twice"),
    (BASIC + [(b"\xff<x>", 0.0, CONTROL)], b"", "not valid UTF-8"),
    (BASIC + [("x" * 65, -1.0)], b"", "65 bytes long"),
])
def test_models_that_cannot_be_imported(pieces, trainer, message):
    from viterbisample.io.sentencepiece import convert

    with pytest.raises(ValueError, match=message):
        convert(parse_model_proto(_model(pieces, trainer)), "m.model")


def test_sentencepiece_input():
    assert sentencepiece_input("Hello world") == " Hello world"
    assert sentencepiece_input("  a   b  ") == " a b"
    assert sentencepiece_input("") == "" and sentencepiece_input("   ") == ""
    assert sentencepiece_input("a\tb") == " a\tb"  # only U+0020 is collapsed
    assert sentencepiece_input("a  b", remove_extra_whitespaces=False) == " a  b"
    assert sentencepiece_input("a b", treat_whitespace_as_suffix=True) == "a b "


@pytest.mark.parametrize("name", MODEL_FILES)
def test_real_models_load(data_file, name):
    path = data_file(f"sp_test_models/{name}")
    imp = import_sentencepiece(path)
    info = read_sentencepiece(path)
    assert imp.tokenizer.special_tokens == ("<unk>", "<s>", "</s>")
    assert len(imp.id_of_spm) == len(info.pieces)
    # No duplicates or unused pieces in these models: NORMAL ids are SentencePiece's.
    normal = [i for i, p in enumerate(info.pieces) if p.type == NORMAL]
    assert np.array_equal(imp.id_of_spm[normal], normal)
    assert np.array_equal(imp.spm_id_of[normal], normal)


# -- Viterbi parity with SentencePiece ---------------------------------------------------
def _spm_path_score(sp, ids, pieces, unk_score):
    """SentencePiece's Viterbi score of its own output, in float64.

    SentencePiece merges a run of unknown characters into one ``<unk>`` token; each of
    the characters was one lattice node scored ``unk_score``.
    """
    unk = sp.unk_id()
    return sum(unk_score * len(p) if i == unk else float(sp.get_score(i))
               for i, p in zip(ids, pieces))


@pytest.mark.parametrize("model_name", MODEL_FILES)
@pytest.mark.parametrize("corpus", ["en_lines", "ja_lines"])
def test_viterbi_parity_with_sentencepiece(request, data_file, model_name, corpus):
    import sentencepiece as spm
    model_path = data_file(f"sp_test_models/{model_name}")
    lines = [x.decode("utf-8") for x in request.getfixturevalue(corpus) if x]
    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    imp = import_sentencepiece(model_path)
    tok = imp.tokenizer
    # Every line as it is: the imported tokenizer normalizes it as SentencePiece does.
    texts = [sp.normalize(x).replace(META, " ") for x in lines]
    if corpus == "ja_lines":  # full-width forms: 827 of its 2,344 lines
        changed = sum(t != imp.input_for(x) for t, x in zip(texts, lines))
        assert changed >= 800, f"only {changed} lines are changed by the character map"
    sp_ids = sp.encode(lines)
    sp_pieces = sp.encode(lines, out_type=str)
    ours = tok.encode_batch(lines, num_threads=1)
    normal_scores = [p.score for p in imp.source.pieces if p.type == NORMAL]
    unk_score = min(normal_scores) - 10.0
    scores = tok.model.scores
    same_tokens = 0
    for text, a, b, bp in zip(texts, ours, sp_ids, sp_pieces):
        # Both spell the same bytes ...
        assert tok.decode_bytes(a) == text.encode("utf-8")
        assert "".join(bp).replace(META, " ") == text
        # ... with the same Viterbi score (float32 scores summed in float64 on both sides).
        s_ours = float(scores[a].sum())
        s_sp = _spm_path_score(sp, b, bp, unk_score)
        assert s_ours == pytest.approx(s_sp, rel=1e-6, abs=1e-4), (text, s_ours, s_sp)
        # Tokens: SentencePiece's, with each <unk> run spelled as our byte pieces.
        expanded = []
        for i, p in zip(b, bp):
            if i == sp.unk_id():
                expanded += [tok.piece_to_id(bytes([c])) for c in p.encode("utf-8")]
            else:
                expanded.append(int(imp.id_of_spm[i]))
        same_tokens += expanded == a
    # Exact score ties may be broken differently; with float32 scores they are rare.
    assert same_tokens >= 0.99 * len(texts), f"{same_tokens} of {len(texts)} lines tokenized alike"


def test_corrupted_real_model_loads_or_raises_value_error(data_file):
    """Random byte flips anywhere in a real file: a clean error or a valid model."""
    from viterbisample.io.sentencepiece import convert

    data = data_file("sp_test_models/test_model.model").read_bytes()
    rng = random.Random(3)
    for _ in range(100):
        buf = bytearray(data)
        for _ in range(rng.choice([1, 3, 20])):
            buf[rng.randrange(len(buf) if rng.random() < 0.2 else 16000)] = rng.randrange(256)
        try:
            tok = convert(parse_model_proto(bytes(buf), "flipped"), "flipped").tokenizer
        except ValueError:
            continue
        text = b"any text \xff"
        assert tok.decode_bytes(tok.encode(text)) == tok.model.normalizer.normalize(text)
