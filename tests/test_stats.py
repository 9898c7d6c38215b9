"""Entropy, marginals, expected length, n-best, sampling without replacement and alpha
calibration, each against brute-force enumeration of every segmentation (or, for texts
of thousands of bytes, plain-Python dynamic programs) from ``reference.py``."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from reference import (
    chi_square_gof,
    count_paths,
    edge_marginals,
    entropy,
    exact_distribution,
    log_partition_reference,
    path_score,
    piece_marginals,
    segmentations,
    token_count_moments,
    token_count_moments_dp,
)
from viterbisample import Tokenizer


TEXTS = [b" however", b"the world", b"It was certainly", b"nothing of the kind"]
ALPHAS = [0.0, 0.1, 0.5, 1.0, 3.0]


def test_texts_have_many_paths(en_tok):
    counts = [len(segmentations(en_tok, t)) for t in TEXTS]
    assert min(counts) >= 20 and max(counts) >= 500, counts


@pytest.mark.parametrize("alpha", ALPHAS)
def test_entropy_marginals_expected_length_match_enumeration(en_tok, alpha):
    for text in TEXTS:
        q = exact_distribution(en_tok, text, alpha)
        h = entropy(q)
        length, _ = token_count_moments(q)
        counts = piece_marginals(q)
        st = en_tok.stats_batch([text], alpha, piece_counts=True)
        assert st["log_z"][0] == pytest.approx(log_partition_reference(en_tok, text, alpha), abs=1e-9)
        assert st["entropy"][0] == pytest.approx(h, abs=1e-9)
        assert en_tok.entropy(text, alpha) == pytest.approx(h, abs=1e-9)
        assert en_tok.expected_length(text, alpha) == pytest.approx(length, abs=1e-9)
        got = en_tok.marginals(text, alpha)
        assert set(got) == set(counts)
        for i, c in counts.items():
            assert got[i] == pytest.approx(c, abs=1e-9)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_long_texts_match_the_reference_dp(en_tok, ja_tok, en_held_out, ja_held_out, alpha):
    """Texts of thousands of bytes, too long to enumerate: log Z, the expected length and
    the entropy at alpha = 0 (log of the exact path count) against plain-Python dynamic
    programs; the mean token count of 1,000 samples within 5 standard errors of the DP's."""
    for tok, text in ((en_tok, b" ".join(en_held_out[:40])), (ja_tok, max(ja_held_out, key=len))):
        assert len(text) > 2000
        log_z, mean, var = token_count_moments_dp(tok, text, alpha)
        assert tok.log_partition(text, alpha) == pytest.approx(log_z, rel=1e-12)
        assert tok.expected_length(text, alpha) == pytest.approx(mean, rel=1e-9)
        if alpha == 0.0:
            assert tok.entropy(text, alpha) == pytest.approx(math.log(count_paths(tok, text)), rel=1e-12)
        n = 1000
        lengths = [len(ids) for ids in tok.sample(text, alpha, n, seed=21)]
        assert abs(sum(lengths) / n - mean) < 5 * math.sqrt(var / n)


def test_edge_marginals_match_enumeration(en_tok):
    text, alpha = b"It was certainly", 0.5
    expected = edge_marginals(en_tok, exact_distribution(en_tok, text, alpha))
    got = en_tok.marginals(text, alpha, by="edge")
    assert len(got) == len(expected) == int(en_tok.count_edges_batch([text])[0])
    for start, end, i, p in got:
        assert p == pytest.approx(expected[(start, end, i)], abs=1e-9)


def test_entropy_at_alpha_zero_is_log_path_count(en_tok):
    text = b"nothing of the kind"
    assert en_tok.entropy(text, 0.0) == pytest.approx(math.log(count_paths(en_tok, text)), abs=1e-9)


def test_entropy_decreases_with_alpha(en_tok):
    hs = [en_tok.entropy(b"It was certainly", a) for a in (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)]
    assert all(a > b for a, b in zip(hs, hs[1:])), hs


def test_piece_counts_are_weighted_and_thread_independent(en_tok, en_held_out):
    lines = en_held_out
    w = np.arange(len(lines), dtype=np.float64) % 3 + 1
    a = en_tok.stats_batch(lines, 0.7, num_threads=1, text_weights=w, piece_counts=True)
    b = en_tok.stats_batch(lines, 0.7, num_threads=2, text_weights=w, piece_counts=True)
    np.testing.assert_allclose(a["counts"], b["counts"], rtol=1e-12)
    assert np.array_equal(a["entropy"], b["entropy"])
    # The weighted counts add up to the weighted expected lengths.
    assert a["counts"].sum() == pytest.approx(float((w * a["expected_length"]).sum()), rel=1e-9)


def test_nbest_matches_enumeration(en_tok):
    for text in TEXTS:
        paths = segmentations(en_tok, text)
        scores = sorted((path_score(en_tok, p) for p in paths), reverse=True)
        for k in (1, 5, 64, len(paths) + 10):
            got = en_tok.nbest(text, k)
            assert len(got) == min(k, len(paths))
            assert [s for _, s in got] == pytest.approx(scores[: len(got)], abs=1e-12)
            assert len({tuple(ids) for ids, _ in got}) == len(got)
            for ids, s in got:
                assert en_tok.decode_bytes(ids) == text
                assert path_score(en_tok, ids) == s
        assert en_tok.nbest(text, 1)[0][0] == en_tok.encode(text)


def _assert_nbest_lists_every_path(tok, text):
    paths = segmentations(tok, text)
    got = tok.nbest(text, len(paths))
    assert Counter(s for _, s in got) == Counter(path_score(tok, p) for p in paths)
    assert {tuple(ids) for ids, _ in got} == {tuple(p) for p in paths}
    assert got[0][0] == tok.encode(text)


def test_nbest_with_ties_lists_every_tied_path():
    # All pieces score alike: every 3-token segmentation of "aaaa" ties.
    tok = Tokenizer.from_pieces([bytes([b]) for b in range(256)] + [b"aa", b"aaa"], [-1.0] * 258)
    _assert_nbest_lists_every_path(tok, b"aaaa")


@pytest.mark.parametrize("name,text", [("en_tok_equal", b" however"), ("en_tok_rounded", b"It was certainly")])
def test_nbest_with_ties_on_real_pieces_lists_every_tied_path(request, name, text):
    tok = request.getfixturevalue(name)
    scores = Counter(path_score(tok, p) for p in segmentations(tok, text))
    assert max(scores.values()) >= 2, "some scores are tied"
    _assert_nbest_lists_every_path(tok, text)


@pytest.mark.parametrize("alpha", [0.1, 1.0])
def test_sampling_without_replacement_is_exact(en_tok, alpha):
    """The first draw follows q_alpha; the ordered pair (first, second) follows the
    sequential law q(a) q(b) / (1 - q(a)), which is what Gumbel-top-k must give."""
    text = b"there"  # 16 paths: the 240 ordered pairs get enough draws to test
    q = exact_distribution(en_tok, text, alpha)
    assert len(q) == 16
    n = 8000
    first: Counter = Counter()
    pairs: Counter = Counter()
    for seed in range(n):
        got = en_tok.sample_distinct(text, alpha, 2, seed=seed)
        a, b = tuple(got[0][0]), tuple(got[1][0])
        assert a != b
        assert got[0][1] == pytest.approx(math.log(q[a]), abs=1e-9)
        first[a] += 1
        pairs[(a, b)] += 1
    stat, dof, p = chi_square_gof(first, q)
    assert p > 1e-4, (stat, dof)
    pair_probs = {(a, b): q[a] * q[b] / (1 - q[a]) for a in q for b in q if a != b}
    stat, dof, p = chi_square_gof(pairs, pair_probs)
    assert dof >= 5 and p > 1e-4, (stat, dof)


def test_sampling_without_replacement_returns_all_paths_when_k_exceeds_them(en_tok):
    text = b" however"
    paths = segmentations(en_tok, text)
    got = en_tok.sample_distinct(text, 0.5, len(paths) + 5, seed=3)
    assert {tuple(ids) for ids, _, _ in got} == {tuple(p) for p in paths}
    assert all(inc == 1.0 for _, _, inc in got)


def test_include_best_puts_viterbi_first(en_tok):
    text = b"nothing of the kind"
    for seed in range(20):
        got = en_tok.sample_distinct(text, 0.2, 4, seed=seed, include_best=True)
        assert got[0][0] == en_tok.encode(text) and got[0][2] == 1.0
        assert len({tuple(ids) for ids, _, _ in got}) == 4


def test_long_input_nbest_and_distinct_samples_are_exact_and_distinct(en_tok, en_lines):
    text = b"\n".join(en_lines)[20000:32000]
    assert len(text) >= 10000
    best = en_tok.nbest(text, 16)
    assert len({tuple(ids) for ids, _ in best}) == 16
    assert all(en_tok.decode_bytes(ids) == text for ids, _ in best)
    scores = [s for _, s in best]
    assert scores == sorted(scores, reverse=True)
    assert best[0][0] == en_tok.encode(text)
    for ids, s in best:
        assert path_score(en_tok, ids) == pytest.approx(s, abs=1e-9)
    got = en_tok.sample_distinct(text, 0.1, 8, seed=5)
    assert len({tuple(ids) for ids, _, _ in got}) == 8
    for ids, log_prob, _ in got:
        assert en_tok.decode_bytes(ids) == text
        assert log_prob == pytest.approx(en_tok.log_prob(text, ids, 0.1), abs=1e-6)


def test_alpha_for_entropy_inverts_entropy(en_tok):
    lines = [b"It was certainly", b"nothing of the kind", b" however"]
    n_bytes = sum(map(len, lines))
    for alpha in (0.05, 0.5, 2.0):
        bits = sum(en_tok.entropy(t, alpha) for t in lines) / n_bytes / math.log(2)
        assert en_tok.alpha_for_entropy(lines, bits) == pytest.approx(alpha, rel=1e-6)
    top = sum(en_tok.entropy(t, 0.0) for t in lines) / n_bytes / math.log(2)
    with pytest.raises(ValueError, match="above the maximum"):
        en_tok.alpha_for_entropy(lines, top * 1.01)


def test_alpha_for_length_hits_the_target(en_tok):
    lines = [b"It was certainly", b"nothing of the kind", b" however"]
    alpha = en_tok.alpha_for_length(lines, 0.25)
    viterbi = sum(len(en_tok.encode(t)) for t in lines)
    expected = sum(en_tok.expected_length(t, alpha) for t in lines)
    assert expected / viterbi - 1 == pytest.approx(0.25, abs=1e-6)


def test_bad_arguments(en_tok):
    with pytest.raises(ValueError, match="k must be >= 1"):
        en_tok.nbest("abc", 0)
    with pytest.raises(ValueError, match="split the text or lower k"):
        en_tok.nbest("abc" * 1000, 10**7)
    with pytest.raises(ValueError, match="alpha"):
        en_tok.entropy("abc", -1)
    with pytest.raises(ValueError, match="by must be"):
        en_tok.marginals("abc", 1.0, by="token")
    with pytest.raises(ValueError, match="bits_per_byte"):
        en_tok.alpha_for_entropy(["abc"], float("nan"))


def test_entropy_per_byte_instead_of_alpha(en_tok):
    x, lines = b"It was certainly", [b"It was certainly", b" however"]
    alpha = en_tok.alpha_for_entropy([x], 0.4)
    assert en_tok.encode(x, entropy_per_byte=0.4, seed=3) == en_tok.encode(x, alpha=alpha, seed=3)
    batch_alpha = en_tok.alpha_for_entropy(lines, 0.4)
    assert en_tok.encode_batch(lines, entropy_per_byte=0.4, seed=3) == en_tok.encode_batch(lines, alpha=batch_alpha, seed=3)
    with pytest.raises(ValueError, match="not both"):
        en_tok.encode(x, alpha=1.0, entropy_per_byte=0.4)
