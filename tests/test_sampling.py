"""Exactness of the perfect sampler, Viterbi and log Z against exhaustive enumeration
(ALGORITHMS.md section 8), on realistic vocabularies built from the shared corpora."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from oracle import all_paths, chi_square, path_score
from viterbisample import Tokenizer
from viterbisample.train.seeds import count_pretokens, frequent_substrings

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpora"
N_SAMPLES = 50000
RESULTS: list[tuple] = []  # (text, alpha, path, statistic, dof, p), printed by the last test


@pytest.fixture(scope="module")
def en() -> Tokenizer:
    lines = (CORPORA / "en_botchan.txt").read_bytes().split(b"\n")[200:2200]
    pieces, scores = frequent_substrings(count_pretokens(lines), 3000, max_len=10)
    return Tokenizer.from_pieces(pieces, scores)


@pytest.fixture(scope="module")
def ja() -> Tokenizer:
    lines = (CORPORA / "ja_wagahaiwa_nekodearu.txt").read_bytes().split(b"\n")[20:800]
    pieces, scores = frequent_substrings(count_pretokens(lines), 3000, max_len=12)
    return Tokenizer.from_pieces(pieces, scores)






def exact(tok: Tokenizer, data: bytes, alpha: float) -> dict[tuple[int, ...], float]:
    paths = all_paths(tok, data)
    logw = np.array([alpha * path_score(tok, p) for p in paths])
    probs = np.exp(logw - np.logaddexp.reduce(logw))
    return dict(zip(paths, probs.tolist()))




def total_variation(observed: Counter, probs: dict, n: int) -> float:
    keys = set(probs) | set(observed)
    return 0.5 * sum(abs(observed.get(k, 0) / n - probs.get(k, 0.0)) for k in keys)


# (vocabulary, text); each has hundreds to thousands of segmentations.
CASES = [
    ("en", b"It was certainly"),
    ("en", b" nothing of the"),
    ("en", b"schoolmaster"),
    ("ja", "吾輩は".encode()),
    ("ja", "猫である".encode()),
]
ALPHAS = [0.0, 0.1, 0.5, 1.0, 3.0]


def _tok(request, name: str) -> Tokenizer:
    return request.getfixturevalue(name)


@pytest.mark.parametrize("name,text", CASES)
def test_cases_have_many_segmentations(request, name, text):
    n = len(all_paths(_tok(request, name), text))
    assert 100 <= n <= 20000, n


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name,text", CASES)
def test_samples_follow_q_alpha(request, name, text, alpha):
    tok = _tok(request, name)
    q = exact(tok, text, alpha)
    # Two ways in: n draws from one forward pass, and n texts of one batch.
    one_pass = Counter(map(tuple, tok.sample(text, alpha, N_SAMPLES, seed=11)))
    batch = Counter(map(tuple, tok.encode_batch([text] * N_SAMPLES, alpha=alpha, seed=12)))
    for how, observed in (("sample", one_pass), ("encode_batch", batch)):
        assert set(observed) <= set(q), "a sample is not a segmentation of the text"
        stat, dof, p = chi_square(observed, q, N_SAMPLES)
        RESULTS.append((text.decode(), alpha, how, stat, dof, p))
        assert dof >= 3
        assert p > 1e-4, (how, stat, dof)
        # Sampling error of the TV distance is about sqrt(cells / n); a biased sampler
        # misses by far more on these texts.
        assert total_variation(observed, q, N_SAMPLES) < 0.6 * math.sqrt(len(q) / N_SAMPLES) + 0.02
        mean_len = sum(len(k) * c for k, c in observed.items()) / N_SAMPLES
        exp_len = sum(len(k) * p_ for k, p_ in q.items())
        var_len = sum((len(k) - exp_len) ** 2 * p_ for k, p_ in q.items())
        assert abs(mean_len - exp_len) < 5 * math.sqrt(var_len / N_SAMPLES) + 1e-12


def test_chi_square_rejects_a_slightly_wrong_alpha(en):
    """The test has power: samples at alpha = 0.5 fail against q at alpha = 0.6."""
    text = b"It was certainly"
    observed = Counter(map(tuple, en.sample(text, 0.5, N_SAMPLES, seed=3)))
    _, _, p = chi_square(observed, exact(en, text, 0.6), N_SAMPLES)
    assert p < 1e-6


@pytest.mark.parametrize("alpha", [30.0, 200.0])
def test_large_alpha_takes_the_log_domain_path_and_stays_exact(en, alpha):
    text = b"It was certainly"
    _, log_domain = en._weights(alpha)
    assert log_domain
    q = exact(en, text, alpha)
    observed = Counter(map(tuple, en.sample(text, alpha, 4000, seed=5)))
    mode = max(q, key=q.get)
    assert list(mode) == en.encode(text)
    assert abs(observed[mode] / 4000 - q[mode]) < 5 * math.sqrt(q[mode] * (1 - q[mode]) / 4000) + 1e-9
    assert set(observed) <= set(q)


@pytest.mark.parametrize("name,text", CASES)
def test_viterbi_and_log_partition_match_enumeration(request, name, text):
    tok = _tok(request, name)
    paths = all_paths(tok, text)
    # The documented tie rule: best score, then the longer last piece, recursively.
    def key(p):
        return (path_score(tok, p), tuple(len(tok.id_to_bytes(i)) for i in reversed(p)))
    assert tuple(tok.encode(text)) == max(paths, key=key)
    for alpha in ALPHAS:
        logw = np.array([alpha * path_score(tok, p) for p in paths])
        assert tok.log_partition(text, alpha) == pytest.approx(float(np.logaddexp.reduce(logw)), abs=1e-9)
        some = paths[:: max(1, len(paths) // 7)]
        for p in some:
            assert tok.log_prob(text, list(p), alpha) == pytest.approx(
                alpha * path_score(tok, p) - float(np.logaddexp.reduce(logw)), abs=1e-9)


def test_viterbi_tie_rule_with_equal_scores():
    tok = Tokenizer.from_pieces([bytes([b]) for b in range(256)] + [b"ab", b"bc", b"abc", b"ca"], [-1.0] * 260)
    for text in (b"abc", b"abca", b"abcabc", b"bcab"):
        paths = all_paths(tok, text)
        def key(p):
            return (path_score(tok, p), tuple(len(tok.id_to_bytes(i)) for i in reversed(p)))
        assert tuple(tok.encode(text)) == max(paths, key=key)
        assert tok.nbest(text, 1)[0][0] == tok.encode(text)


def test_edge_count_matches_enumeration(en):
    text = b"It was certainly"
    edges = {(i, j) for i in range(len(text)) for j in range(i + 1, len(text) + 1)
             if en.model.piece_id(text[i:j]) is not None}
    assert int(en.count_edges_batch([text])[0]) == len(edges)


def test_long_runs_do_not_overflow(en):
    text = b"a" * 5000
    for alpha in (0.0, 1.0):
        lz = en.log_partition(text, alpha)
        assert math.isfinite(lz)
        for ids in en.sample(text, alpha, 3, seed=1):
            assert en.decode_bytes(ids) == text
    # alpha = 0 counts paths: with every run of 'a' up to the longest piece a piece,
    # the count follows a linear recurrence, computed here exactly with Python ints.
    runs = sorted(len(p) for p in en.model.pieces if p and set(p) == {ord("a")})
    count = [1] + [0] * 5000
    for j in range(1, 5001):
        count[j] = sum(count[j - r] for r in runs if r <= j)
    assert en.log_partition(text, 0.0) == pytest.approx(math.log(count[5000]), rel=1e-12)


def test_invalid_utf8_and_empty_text(en):
    for text in (b"", b"\xff", b"\xe3\x81", b"\x80abc\xfe"):
        assert en.decode_bytes(en.encode(text)) == text
        for ids in en.sample(text, 0.5, 5, seed=2):
            assert en.decode_bytes(ids) == text


def test_zz_print_chi_square_table():
    """Shows the statistics of the sampling tests (run pytest with -s to see them)."""
    assert RESULTS, "the sampling tests ran first"
    print("\ntext\talpha\tpath\tchi2\tdof\tp")
    for text, alpha, how, stat, dof, p in RESULTS:
        print(f"{text}\t{alpha}\t{how}\t{stat:.1f}\t{dof}\t{p:.3f}")
