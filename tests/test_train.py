"""The trainer: its building blocks against brute force, then whole runs and bad input."""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
from viterbisample import Tokenizer, lattice, train
from viterbisample.cli import main
from viterbisample.logmath import linear_domain_weights
from viterbisample.text import pack
from viterbisample.train import Trainer, read_units
from viterbisample.train.seeds import seed_pieces
from viterbisample.train.substrings import count_substrings

CORPUS_LINES = 1500  # of Botchan: trains in well under a second


@pytest.fixture(scope="module")
def en_units(en_lines):
    return read_units(en_lines[100 : 100 + CORPUS_LINES])


@pytest.fixture(scope="module")
def en_file(tmp_path_factory, en_lines) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "botchan.txt"
    path.write_bytes(b"\n".join(en_lines[100 : 100 + CORPUS_LINES]) + b"\n")
    return path


# -- frequent substrings -------------------------------------------------------------------


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def closed_substrings_reference(units, weights, max_len, min_count, whole_characters):
    """Every substring (2..max_len bytes, within a unit) with its weighted count, kept if
    frequent and right-closed: no one continuation (the next byte, or with
    ``whole_characters`` the next character) follows all of its occurrences and fits in
    max_len.  Whole characters: starts and ends on character boundaries."""
    count: Counter[bytes] = Counter()
    after: dict[bytes, set[bytes | None]] = defaultdict(set)
    for unit, w in zip(units, weights):
        for i in range(len(unit)):
            if whole_characters and _is_continuation(unit[i]):
                continue
            for j in range(i + 1, min(len(unit), i + max_len) + 1):
                if whole_characters and j < len(unit) and _is_continuation(unit[j]):
                    continue
                s = unit[i:j]
                count[s] += w
                k = j + 1
                while whole_characters and k < len(unit) and _is_continuation(unit[k]):
                    k += 1
                after[s].add(unit[j:k] if j < len(unit) else None)
    out = {}
    for s, c in count.items():
        if len(s) < 2 or c < min_count:
            continue
        nexts = after[s]
        only = next(iter(nexts)) if len(nexts) == 1 else None
        if only is None or len(s) + len(only) > max_len or count[s + only] < c:
            out[s] = c
    return out


units_strategy = st.lists(
    st.lists(st.sampled_from([b"a", b"b", b"\x00", b"\xff", "é".encode(), "あ".encode(), "い".encode()]),
             max_size=14).map(b"".join),
    min_size=1, max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(units=units_strategy, max_len=st.integers(2, 12), min_count=st.sampled_from([1.0, 2.0, 3.0]),
       whole=st.booleans(), data=st.data())
def test_closed_substrings_match_brute_force(units, max_len, min_count, whole, data):
    weights = np.array(data.draw(st.lists(st.sampled_from([1.0, 2.0, 5.0]), min_size=len(units),
                                          max_size=len(units))))
    buf, starts, ends = pack(units)
    pos, length, count, byte_counts = count_substrings(buf, starts, ends, weights, max_len, min_count, whole)
    raw = buf.tobytes()
    got = [raw[p : p + n] for p, n in zip(pos.tolist(), length.tolist())]
    assert len(got) == len(set(got)), "each substring is reported once"
    assert dict(zip(got, count.tolist())) == closed_substrings_reference(
        units, weights.tolist(), max_len, min_count, whole)
    expected_bytes = np.zeros(256)
    for u, w in zip(units, weights):
        for b in u:
            expected_bytes[b] += w
    assert np.array_equal(byte_counts, expected_bytes)


def test_substring_counts_refuse_bad_offsets():
    buf, starts, ends = pack([b"abcabc", b"abc"])
    w = np.ones(2)
    with pytest.raises(ValueError, match="offsets"):
        count_substrings(buf, starts, ends + 5, w, 4, 2.0, True)
    with pytest.raises(ValueError, match="max_len"):
        count_substrings(buf, starts, ends, w, 65, 2.0, True)
    with pytest.raises(ValueError, match="one length"):
        count_substrings(buf, starts, ends, np.ones(3), 4, 2.0, True)


def test_seeds_respect_the_options(ja_lines):
    units = read_units(ja_lines[:300] + [b"abc123 abc456 abc123 \xff\xfe\xff\xfe %d" % i for i in range(60)])
    for whole, digits in [(True, False), (True, True), (False, False)]:
        seeds, counts = seed_pieces(units, 3000, 9, whole, digits)
        assert 0 < len(seeds) <= 3000 and len(set(seeds)) == len(seeds)
        assert all(2 <= len(p) <= 9 for p in seeds)
        values = counts * np.array([len(p) for p in seeds])
        assert np.all(values[:-1] >= values[1:]), "best count * length first"
        if whole:
            for p in seeds:
                p.decode("utf-8")  # raises if a seed splits a character
        else:
            assert any(not _valid(p) for p in seeds), "bytes of characters are seeds too"
        if digits:
            assert not any(set(p) & set(b"0123456789") for p in seeds)
        else:
            assert any(set(p) & set(b"0123456789") for p in seeds)


def _valid(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- the E-step and the pruning score --------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_expected_piece_counts_match_enumeration(en_tok, alpha):
    texts = [b"It was certainly", b"schoolmaster", b"nothing of the"]
    weights = np.array([1.0, 2.5, 0.5])
    st_ = en_tok.stats_batch(texts, alpha, text_weights=weights, piece_counts=True)
    expected = np.zeros(en_tok.vocab_size)
    for text, w in zip(texts, weights):
        for pid, c in reference.piece_marginals(reference.exact_distribution(en_tok, text, alpha)).items():
            expected[pid] += w * c
    np.testing.assert_allclose(st_["counts"], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("z_score, linear", [(-3.0, True), (-60.0, False)])
def test_expected_piece_counts_in_either_domain(z_score, linear):
    """The linear-domain pass is used when the weights allow it, the log-domain passes
    otherwise (a byte scored -60 with 16-byte pieces: exp(-60 * 16) would underflow);
    both are exact."""
    pieces = [bytes([b]) for b in range(256)] + [b"ab", b"abc", b"bc", b"abcdefghijklmnop"]
    scores = [-3.0] * 256 + [-2.0, -2.5, -1.5, -4.0]
    scores[ord("z")] = z_score
    tok = Tokenizer.from_pieces(pieces, scores)
    m = tok.model
    assert (linear_domain_weights(m.scores, m.lengths, 1.0, m.num_special, 16) is not None) == linear
    texts = [b"abcz", b"zabcabz", b"abcab", b"abcdefghijklmnopq"]
    st_ = tok.stats_batch(texts, 1.0, piece_counts=True)
    expected = np.zeros(tok.vocab_size)
    for t, text in enumerate(texts):
        dist = reference.exact_distribution(tok, text, 1.0)
        assert st_["log_z"][t] == pytest.approx(reference.log_partition_reference(tok, text, 1.0), rel=1e-12)
        assert st_["entropy"][t] == pytest.approx(reference.entropy(dist), abs=1e-9)
        for pid, c in reference.piece_marginals(dist).items():
            expected[pid] += c
    np.testing.assert_allclose(st_["counts"], expected, rtol=1e-9, atol=1e-12)


def test_alternative_scores_match_enumeration(en_tok):
    m = en_tok.model
    pieces = [p for p in m.pieces if len(p) > 1][:300] + [b"x"]
    buf, starts, ends = pack(pieces)
    out = np.empty(len(pieces))
    lattice.alternative_items(m.suffix_trie, m.scores, buf, starts, ends, out, 0, len(pieces))
    for piece, got in zip(pieces, out.tolist()):
        others = [reference.path_score(en_tok, ids) for ids in reference.segmentations(en_tok, piece)
                  if len(ids) > 1]
        if others:
            assert got == pytest.approx(max(others), abs=1e-9)
        else:
            assert got == -math.inf


# -- whole runs --------------------------------------------------------------------------


def test_trained_model_has_the_size_and_round_trips_every_line(en_units, en_lines):
    tok = train(en_lines[100 : 100 + CORPUS_LINES], 1000, progress=False)
    assert tok.vocab_size == 1000
    assert tok.special_tokens == ("<pad>", "<bos>", "<eos>")
    pieces = tok.model.pieces
    assert pieces[:256] == tuple(bytes([b]) for b in range(256))
    assert all(len(p) <= 24 and _valid(p) for p in pieces[256:])
    for i in range(len(en_units)):
        line = en_units.unit(i)
        assert tok.decode_bytes(tok.encode(line)) == line
    # Learnt pieces come most probable first.
    assert np.all(np.diff(tok.model.piece_scores[256:]) <= 0)
    # Compression on held-out lines of the same book: far better than bytes.
    held_out = en_lines[2000:2600]
    ids, _ = tok.encode_batch_arrays(held_out)
    assert sum(map(len, held_out)) / len(ids) > 2.5


def test_model_file_is_identical_for_any_thread_count(en_lines, tmp_path):
    lines = en_lines[100 : 100 + CORPUS_LINES]
    files = []
    for threads in (1, 2, 3):
        tok = train(lines, 700, num_threads=threads, progress=False)
        path = tmp_path / f"model-{threads}.json"
        tok.save(path)
        files.append(path.read_bytes())
    assert files[0] == files[1] == files[2]


def test_em_increases_the_likelihood(en_units):
    trainer = Trainer(2000, em_iterations=4, threads=2)
    trainer.run(en_units)
    first = [h["log_likelihood"] for h in trainer.history if h["round"] == 1]
    assert len(first) == 4
    assert first[0] < first[1] < first[2] < first[3]
    last = [h["log_likelihood"] for h in trainer.history if h["round"] == trainer.history[-1]["round"]]
    assert len(last) == 2 and last[0] < last[1]


def test_options(en_lines):
    lines = en_lines[100:1100]
    users = ["<user>", "ZZZ"]  # never in the corpus, kept anyway
    tok = train(lines, 800, user_pieces=users, special_tokens=["<s>", "</s>"], progress=False)
    assert tok.vocab_size == 800 and tok.special_tokens == ("<s>", "</s>")
    assert tok.model.pieces[256:258] == (b"<user>", b"ZZZ")
    assert tok.encode("<user>") == [tok.piece_to_id("<user>")]
    spaced = train(lines, 800, split="whitespace", progress=False)
    assert not any(b" " in p[1:] for p in spaced.model.pieces if len(p) > 1)
    whole = train(lines, 800, progress=False)
    assert any(b" " in p[1:] for p in whole.model.pieces), "without a split, pieces span spaces"
    digits = train(lines + [b"1984 2001 1984 2001 1984"] * 20, 800, split_digits=True, progress=False)
    assert not any(set(p) & set(b"0123456789") for p in digits.model.pieces if len(p) > 1)
    short = train(lines, 800, max_piece_bytes=4, progress=False)
    assert short.model.max_piece_len == 4
    sample_a = train(lines, 600, max_lines=300, seed=1, progress=False)
    sample_b = train(lines, 600, max_lines=300, seed=1, progress=False)
    sample_c = train(lines, 600, max_lines=300, seed=2, progress=False)
    assert sample_a.model == sample_b.model and sample_a.model != sample_c.model


def test_invalid_utf8_trains_on_bytes_losslessly():
    rng = np.random.default_rng(3)
    lines = [bytes(rng.integers(0, 256, 40, dtype=np.uint8)) for _ in range(300)]
    lines += [b"\xff\xfe caf\xc3\xa9 \xe3\x81 " * 3] * 50
    tok = train(lines, 300, progress=False)
    assert all(_valid(p) for p in tok.model.pieces if len(p) > 1)
    for line in lines:
        assert tok.decode_bytes(tok.encode(line)) == line
    raw = train(lines, 300, whole_characters=False, progress=False)
    assert any(not _valid(p) for p in raw.model.pieces)
    for line in lines:
        assert raw.decode_bytes(raw.encode(line)) == line


def test_progress_reports_every_phase_and_nothing_on_stdout(en_lines, capsys):
    seen: list[str] = []
    train(en_lines[100:600], 500, progress=seen.append)
    assert seen[0].startswith("read 500 lines")
    assert any(s.startswith("seeds:") for s in seen)
    assert any(s.startswith("round 1: EM") and "nats/byte" in s for s in seen)
    assert any("pruned to" in s for s in seen)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    train(en_lines[100:600], 500, progress=True)
    out = capsys.readouterr()
    assert out.out == "" and "seeds:" in out.err and "round 1: EM" in out.err


# -- bad input ---------------------------------------------------------------------------


def test_bad_input_raises_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        train([], 300)
    with pytest.raises(ValueError, match="empty"):
        train([b"", ""], 300)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\n\n")
    with pytest.raises(ValueError, match="empty"):
        train([empty], 300)
    with pytest.raises(ValueError, match="vocab_size must be at least 259"):
        train([b"abc"], 258)
    with pytest.raises(ValueError, match="at least 261"):
        train([b"abc"], 260, user_pieces=["xy", "zw"])
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        train([tmp_path / "missing.txt"], 300)
    with pytest.raises(IsADirectoryError):
        train([tmp_path], 300)
    with pytest.raises(ValueError, match="name of an existing file"):
        train([str(empty)], 300)
    with pytest.raises(ValueError, match="valid regex"):
        train([b"abc"], 300, split="(")
    with pytest.raises(ValueError, match="max_piece_bytes"):
        train([b"abc"], 300, max_piece_bytes=65)
    with pytest.raises(TypeError):
        train([b"abc"], "300")
    with pytest.raises(TypeError):
        train(b"abc", 300)
    with pytest.raises(TypeError, match="seed"):
        train([b"abc"], 300, max_lines=10, seed="x")


def test_a_corpus_too_small_for_the_size_warns_and_stops_at_what_it_supports():
    lines = [b"the cat sat on the mat", b"the dog sat on the log"] * 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tok = train(lines, 5000, progress=False)
    assert 259 < tok.vocab_size < 5000
    assert any(f"only {tok.vocab_size} ids" in str(w.message) for w in caught)
    for line in lines:
        assert tok.decode_bytes(tok.encode(line)) == line


# -- the command line --------------------------------------------------------------------


def test_cli_trains_end_to_end(en_file, tmp_path, capsys):
    model = tmp_path / "model.json"
    assert main(["train", str(en_file), "--vocab-size", "600", "-o", str(model), "--quiet"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    tok = Tokenizer.load(model)
    assert tok.vocab_size == 600
    assert tok.model == train([en_file], 600, progress=False).model
    ids_file = tmp_path / "ids.txt"
    assert main(["encode", str(en_file), "--model", str(model), "--format", "ids", "-o", str(ids_file)]) == 0
    back = tmp_path / "back.txt"
    assert main(["decode", str(ids_file), "--model", str(model), "-o", str(back)]) == 0
    assert back.read_bytes() == en_file.read_bytes()


def test_cli_errors_leave_no_model_file(tmp_path, capsys):
    model = tmp_path / "model.json"
    model.write_text("previous")
    assert main(["train", str(tmp_path / "missing.txt"), "--vocab-size", "600", "-o", str(model)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vsample: error:") and "missing.txt" in err and len(err.splitlines()) == 1
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert main(["train", str(empty), "--vocab-size", "600", "-o", str(model)]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["train", str(empty), "--vocab-size", "100", "-o", str(model)]) == 1
    assert "vocab_size" in capsys.readouterr().err
    assert model.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt", "model.json"]


def test_folded_products_equal_the_sum_of_logs():
    """``logmath.multiply_folded`` keeps a product of many factors, tiny and huge ones
    included, whose log equals the plain sum of logs (as log Z is kept per position)."""
    from viterbisample.logmath import log_of_product, multiply_folded

    rng = np.random.default_rng(5)
    factors = np.exp(rng.uniform(-300.0, 300.0, 5000))
    factors[::97] = 1e-250
    factors[::89] = 1e250
    log_part, run = 0.0, 1.0
    for f in factors.tolist():
        log_part, run = multiply_folded(log_part, run, f)
        assert 1e-200 <= run <= 1e200
    assert log_of_product(log_part, run) == pytest.approx(float(np.log(factors).sum()), rel=1e-12)
