"""Entropy, marginals, expected length, n-best, sampling without replacement and alpha
calibration, each against brute-force enumeration of every segmentation."""

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


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    lines = (CORPORA / "en_botchan.txt").read_bytes().split(b"\n")[200:1500]
    pieces, scores = frequent_substrings(count_pretokens(lines), 1500, max_len=8)
    return Tokenizer.from_pieces(pieces, scores)






def exact(tok: Tokenizer, data: bytes, alpha: float):
    paths = all_paths(tok, data)
    logw = np.array([alpha * path_score(tok, p) for p in paths])
    log_z = float(np.logaddexp.reduce(logw))
    probs = np.exp(logw - log_z)
    return paths, probs, log_z


TEXTS = [b" however", b"the world", b"It was certainly", b"nothing of the kind"]
ALPHAS = [0.0, 0.1, 0.5, 1.0, 3.0]


def test_texts_have_many_paths(tok):
    counts = [len(all_paths(tok, t)) for t in TEXTS]
    assert min(counts) >= 20 and max(counts) >= 500, counts


@pytest.mark.parametrize("alpha", ALPHAS)
def test_entropy_marginals_expected_length_match_enumeration(tok, alpha):
    for text in TEXTS:
        paths, probs, log_z = exact(tok, text, alpha)
        entropy = float(-(probs * np.log(probs)).sum())
        length = float(sum(p * len(path) for p, path in zip(probs, paths)))
        counts: Counter[int] = Counter()
        for p, path in zip(probs, paths):
            for i in path:
                counts[i] += p
        st = tok.stats_batch([text], alpha, piece_counts=True)
        assert st["log_z"][0] == pytest.approx(log_z, abs=1e-9)
        assert st["entropy"][0] == pytest.approx(entropy, abs=1e-9)
        assert tok.entropy(text, alpha) == pytest.approx(entropy, abs=1e-9)
        assert tok.expected_length(text, alpha) == pytest.approx(length, abs=1e-9)
        got = tok.marginals(text, alpha)
        assert set(got) == set(counts)
        for i, c in counts.items():
            assert got[i] == pytest.approx(c, abs=1e-9)


def test_edge_marginals_match_enumeration(tok):
    text, alpha = b"It was certainly", 0.5
    paths, probs, _ = exact(tok, text, alpha)
    expected: Counter[tuple[int, int, int]] = Counter()
    for p, path in zip(probs, paths):
        at = 0
        for i in path:
            n = len(tok.id_to_bytes(i))
            expected[(at, at + n, i)] += p
            at += n
    got = tok.marginals(text, alpha, by="edge")
    assert len(got) == len(expected) == int(tok.count_edges_batch([text])[0])
    for start, end, i, p in got:
        assert p == pytest.approx(expected[(start, end, i)], abs=1e-9)


def test_entropy_at_alpha_zero_is_log_path_count(tok):
    text = b"nothing of the kind"
    assert tok.entropy(text, 0.0) == pytest.approx(math.log(len(all_paths(tok, text))), abs=1e-9)


def test_entropy_decreases_with_alpha(tok):
    hs = [tok.entropy(b"It was certainly", a) for a in (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)]
    assert all(a > b for a, b in zip(hs, hs[1:])), hs


def test_piece_counts_are_weighted_and_thread_independent(tok):
    lines = (CORPORA / "en_botchan.txt").read_bytes().split(b"\n")[2000:2600]
    w = np.arange(len(lines), dtype=np.float64) % 3 + 1
    a = tok.stats_batch(lines, 0.7, num_threads=1, text_weights=w, piece_counts=True)
    b = tok.stats_batch(lines, 0.7, num_threads=2, text_weights=w, piece_counts=True)
    np.testing.assert_allclose(a["counts"], b["counts"], rtol=1e-12)
    assert np.array_equal(a["entropy"], b["entropy"])
    # The weighted counts add up to the weighted expected lengths.
    assert a["counts"].sum() == pytest.approx(float((w * a["expected_length"]).sum()), rel=1e-9)


def test_nbest_matches_enumeration(tok):
    for text in TEXTS:
        paths = all_paths(tok, text)
        scores = sorted((path_score(tok, p) for p in paths), reverse=True)
        for k in (1, 5, 64, len(paths) + 10):
            got = tok.nbest(text, k)
            assert len(got) == min(k, len(paths))
            assert [s for _, s in got] == pytest.approx(scores[: len(got)], abs=1e-12)
            assert len({tuple(ids) for ids, _ in got}) == len(got)
            for ids, s in got:
                assert tok.decode_bytes(ids) == text
                assert path_score(tok, ids) == s
        assert tok.nbest(text, 1)[0][0] == tok.encode(text)


def test_nbest_with_ties_lists_every_tied_path():
    # All pieces score alike: every 3-token segmentation of "aaaa" ties.
    tok = Tokenizer.from_pieces([bytes([b]) for b in range(256)] + [b"aa", b"aaa"], [-1.0] * 258)
    text = b"aaaa"
    paths = all_paths(tok, text)
    by_score = Counter(path_score(tok, p) for p in paths)
    got = tok.nbest(text, len(paths))
    assert Counter(s for _, s in got) == by_score
    assert {tuple(ids) for ids, _ in got} == {tuple(p) for p in paths}
    assert got[0][0] == tok.encode(text)




@pytest.mark.parametrize("alpha", [0.1, 1.0])
def test_sampling_without_replacement_is_exact(tok, alpha):
    """The first draw follows q_alpha; the ordered pair (first, second) follows the
    sequential law q(a) q(b) / (1 - q(a)), which is what Gumbel-top-k must give."""
    text = b"there"  # 16 paths: the 240 ordered pairs get enough draws to test
    paths, probs, _ = exact(tok, text, alpha)
    q = {tuple(p): float(pr) for p, pr in zip(paths, probs)}
    n = 8000
    first: Counter = Counter()
    pairs: Counter = Counter()
    for seed in range(n):
        got = tok.sample_distinct(text, alpha, 2, seed=seed)
        a, b = tuple(got[0][0]), tuple(got[1][0])
        assert a != b
        assert got[0][1] == pytest.approx(math.log(q[a]), abs=1e-9)
        first[a] += 1
        pairs[(a, b)] += 1
    stat, dof, p = chi_square(first, q, n)
    assert p > 1e-4, (stat, dof)
    pair_probs = {(a, b): q[a] * q[b] / (1 - q[a]) for a in q for b in q if a != b}
    stat, dof, p = chi_square(pairs, pair_probs, n)
    assert dof >= 5 and p > 1e-4, (stat, dof)


def test_sampling_without_replacement_returns_all_paths_when_k_exceeds_them(tok):
    text = b" however"
    paths = all_paths(tok, text)
    got = tok.sample_distinct(text, 0.5, len(paths) + 5, seed=3)
    assert {tuple(ids) for ids, _, _ in got} == {tuple(p) for p in paths}
    assert all(inc == 1.0 for _, _, inc in got)


def test_include_best_puts_viterbi_first(tok):
    text = b"nothing of the kind"
    for seed in range(20):
        got = tok.sample_distinct(text, 0.2, 4, seed=seed, include_best=True)
        assert got[0][0] == tok.encode(text) and got[0][2] == 1.0
        assert len({tuple(ids) for ids, _, _ in got}) == 4


def test_long_input_nbest_and_distinct_samples_are_exact_and_distinct(tok):
    text = (CORPORA / "en_botchan.txt").read_bytes()[20000:32000]
    assert len(text) >= 10000
    best = tok.nbest(text, 16)
    assert len({tuple(ids) for ids, _ in best}) == 16
    assert all(tok.decode_bytes(ids) == text for ids, _ in best)
    scores = [s for _, s in best]
    assert scores == sorted(scores, reverse=True)
    assert best[0][0] == tok.encode(text)
    for ids, s in best:
        assert path_score(tok, ids) == pytest.approx(s, abs=1e-9)
    got = tok.sample_distinct(text, 0.1, 8, seed=5)
    assert len({tuple(ids) for ids, _, _ in got}) == 8
    for ids, log_prob, _ in got:
        assert tok.decode_bytes(ids) == text
        assert log_prob == pytest.approx(tok.log_prob(text, ids, 0.1), abs=1e-6)


def test_alpha_for_entropy_inverts_entropy(tok):
    lines = [b"It was certainly", b"nothing of the kind", b" however"]
    n_bytes = sum(map(len, lines))
    for alpha in (0.05, 0.5, 2.0):
        bits = sum(tok.entropy(t, alpha) for t in lines) / n_bytes / math.log(2)
        assert tok.alpha_for_entropy(lines, bits) == pytest.approx(alpha, rel=1e-6)
    top = sum(tok.entropy(t, 0.0) for t in lines) / n_bytes / math.log(2)
    with pytest.raises(ValueError, match="above the maximum"):
        tok.alpha_for_entropy(lines, top * 1.01)


def test_alpha_for_length_hits_the_target(tok):
    lines = [b"It was certainly", b"nothing of the kind", b" however"]
    alpha = tok.alpha_for_length(lines, 0.25)
    viterbi = sum(len(tok.encode(t)) for t in lines)
    expected = sum(tok.expected_length(t, alpha) for t in lines)
    assert expected / viterbi - 1 == pytest.approx(0.25, abs=1e-6)


def test_bad_arguments(tok):
    with pytest.raises(ValueError, match="k must be >= 1"):
        tok.nbest("abc", 0)
    with pytest.raises(ValueError, match="split the text or lower k"):
        tok.nbest("abc" * 1000, 10**7)
    with pytest.raises(ValueError, match="alpha"):
        tok.entropy("abc", -1)
    with pytest.raises(ValueError, match="by must be"):
        tok.marginals("abc", 1.0, by="token")
    with pytest.raises(ValueError, match="bits_per_byte"):
        tok.alpha_for_entropy(["abc"], float("nan"))


def test_entropy_per_byte_instead_of_alpha(tok):
    x, lines = b"It was certainly", [b"It was certainly", b" however"]
    alpha = tok.alpha_for_entropy([x], 0.4)
    assert tok.encode(x, entropy_per_byte=0.4, seed=3) == tok.encode(x, alpha=alpha, seed=3)
    batch_alpha = tok.alpha_for_entropy(lines, 0.4)
    assert tok.encode_batch(lines, entropy_per_byte=0.4, seed=3) == tok.encode_batch(lines, alpha=batch_alpha, seed=3)
    with pytest.raises(ValueError, match="not both"):
        tok.encode(x, alpha=1.0, entropy_per_byte=0.4)
