"""Trainer building blocks: substring counts, EM, pruning to an exact size."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viterbisample.text import pack
from viterbisample.train.substrings import count_substrings
from viterbisample.train.trainer import Trainer

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpora"


def brute_counts(units, weights, max_len, min_count):
    found: Counter[bytes] = Counter()
    for u, w in zip(units, weights):
        for i in range(len(u)):
            for n in range(2, max_len + 1):
                if i + n <= len(u):
                    found[u[i : i + n]] += w
    return {k: v for k, v in found.items() if v >= min_count}


@settings(max_examples=60, deadline=None)
@given(units=st.lists(st.lists(st.sampled_from(b"abc\xff"), max_size=12).map(bytes), min_size=1, max_size=8),
       max_len=st.integers(2, 6), min_count=st.sampled_from([1.0, 2.0, 3.0]))
def test_substring_counts_match_brute_force(units, max_len, min_count):
    weights = np.arange(1, len(units) + 1, dtype=np.float64)
    buf, starts, ends = pack(units)
    pos, length, count, byte_counts = count_substrings(buf, starts, ends, weights, max_len, min_count)
    raw = buf.tobytes()
    got = {raw[p : p + n]: c for p, n, c in zip(pos.tolist(), length.tolist(), count.tolist())}
    assert got == brute_counts(units, weights.tolist(), max_len, min_count)
    expected_bytes = np.zeros(256)
    for u, w in zip(units, weights):
        for b in u:
            expected_bytes[b] += w
    assert np.array_equal(byte_counts, expected_bytes)


@pytest.fixture(scope="module")
def corpus():
    lines = (CORPORA / "en_botchan.txt").read_bytes().split(b"\n")[100:1600]
    c = Counter(x for x in lines if x)
    return list(c), np.array(list(c.values()), np.float64)


def test_trainer_reaches_the_exact_size_and_round_trips(corpus):
    units, counts = corpus
    tok = Trainer(1000, threads=2).run(units, counts)
    assert tok.vocab_size == 1000
    for u in units:
        assert tok.decode_bytes(tok.encode(u)) == u
    assert all(tok.model.piece_id(bytes([b])) is not None for b in range(256))


def test_trainer_is_deterministic_across_thread_counts(corpus):
    units, counts = corpus
    a = Trainer(600, threads=1).run(units, counts)
    b = Trainer(600, threads=2).run(units, counts)
    assert a.model == b.model


def test_em_increases_the_likelihood(corpus):
    units, counts = corpus
    trainer = Trainer(2000, threads=2)
    seen = []
    trainer.log = lambda message: seen.append(message)
    trainer.em_iterations = 3
    trainer.run(units, counts)
    first_round = [float(m.rsplit(" ", 1)[1]) for m in seen if m.startswith("round 1:")]
    assert len(first_round) == 3 and first_round[0] < first_round[1] < first_round[2]


def test_bad_sizes_and_empty_corpus(corpus):
    units, counts = corpus
    with pytest.raises(ValueError, match="vocab_size must be at least 259"):
        Trainer(100).run(units, counts)
    with pytest.raises(ValueError, match="corpus is empty"):
        Trainer(1000).run([], np.zeros(0))


def test_train_through_the_cli_round_trips_every_line(tmp_path):
    from viterbisample import Tokenizer
    from viterbisample.cli import main

    lines = (CORPORA / "en_botchan.txt").read_bytes().split(b"\n")[100:900] + [b"\xff\xfe odd bytes"]
    src = tmp_path / "train.txt"
    src.write_bytes(b"\n".join(lines) + b"\n")
    model = tmp_path / "m.json"
    assert main(["train", str(src), "--vocab-size", "700", "-o", str(model), "--split", "whitespace", "-q"]) == 0
    tok = Tokenizer.load(model)
    assert tok.vocab_size == 700
    for line in lines:
        assert tok.decode_bytes(tok.encode(line)) == line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "train.txt"]


def test_train_api_inputs_and_errors(tmp_path):
    from viterbisample import train

    texts = ["the cat sat on the mat", "the dog sat on the log"] * 50
    tok = train(texts, 265, split="gpt", user_pieces=["zebra"])
    assert tok.vocab_size == 265 and tok.piece_to_id("zebra") >= 0
    with pytest.warns(UserWarning, match="the corpus supports only"):
        small = train(texts, 1000)
    assert 259 < small.vocab_size < 1000
    with pytest.raises(ValueError, match="corpus is empty"):
        train(["", ""], 300)
    with pytest.raises(ValueError, match="vocab_size must be at least 259"):
        train(texts, 200)
    with pytest.raises(FileNotFoundError, match="training file not found"):
        train([tmp_path / "missing.txt"], 300)
    sampled = train(texts, 262, max_lines=20, seed=1)
    assert sampled.model == train(texts, 262, max_lines=20, seed=1).model


def test_seeds_from_a_sample_of_a_large_corpus(corpus, monkeypatch):
    from viterbisample.train import trainer as trainer_module

    units, counts = corpus
    monkeypatch.setattr(trainer_module, "SEED_SAMPLE_BYTES", 20_000)
    a = Trainer(500, threads=2).run(units, counts)
    b = Trainer(500, threads=1).run(units, counts)
    assert a.vocab_size == 500 and a.model == b.model
    for u in units[:50]:
        assert a.decode_bytes(a.encode(u)) == u
