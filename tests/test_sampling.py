"""Exactness of the perfect sampler, Viterbi and log Z against exhaustive enumeration
(ALGORITHMS.md section 8) and, on texts too long to enumerate, plain-Python dynamic
programs (both in ``reference.py``), on realistic vocabularies built from the test
corpora (``conftest.py``, ``tests/data``)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from reference import (
    argmax_path,
    chi_square_gof,
    count_paths,
    edges_from,
    exact_distribution,
    log_partition_dp,
    log_partition_reference,
    path_score,
    segmentations,
    token_count_moments,
    total_variation,
    tv_bound,
    viterbi_dp_reference,
    viterbi_reference,
)
from viterbisample import Tokenizer

N_SAMPLES = 50000
RESULTS: list[tuple] = []  # (text, alpha, path, statistic, dof, p), printed by the last test


# (vocabulary fixture, text); each has hundreds to thousands of segmentations.
CASES = [
    ("en_tok", b"It was certainly"),
    ("en_tok", b" nothing of the"),
    ("en_tok", b"schoolmaster"),
    ("ja_tok", "名前はまだ".encode()),
    ("ja_tok", "猫である".encode()),
]
ALPHAS = [0.0, 0.1, 0.5, 1.0, 3.0]
# (vocabulary fixture, text) whose best score is reached by several paths: only the tie
# rule decides Viterbi.
TIED_CASES = [
    ("en_tok_equal", b" nothing of the"),
    ("en_tok_equal", b"schoolmaster"),
    ("en_tok_rounded", b"It was certainly"),
    ("en_tok_rounded", b"schoolmaster"),
    ("ja_tok_rounded", "猫である".encode()),
]


@pytest.mark.parametrize("name,text", CASES)
def test_cases_have_many_segmentations(request, name, text):
    n = len(segmentations(request.getfixturevalue(name), text))
    assert 100 <= n <= 20000, n


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name,text", CASES)
def test_samples_follow_q_alpha(request, name, text, alpha):
    tok = request.getfixturevalue(name)
    q = exact_distribution(tok, text, alpha)
    exp_len, var_len = token_count_moments(q)
    # Two ways in: n draws from one forward pass, and n texts of one batch.
    one_pass = Counter(map(tuple, tok.sample(text, alpha, N_SAMPLES, seed=11)))
    batch = Counter(map(tuple, tok.encode_batch([text] * N_SAMPLES, alpha=alpha, seed=12)))
    for how, observed in (("sample", one_pass), ("encode_batch", batch)):
        assert set(observed) <= set(q), "a sample is not a segmentation of the text"
        stat, dof, p = chi_square_gof(observed, q)
        RESULTS.append((text.decode(), alpha, how, stat, dof, p))
        assert dof >= 3
        assert p > 1e-4, (how, stat, dof)
        # Exact draws exceed tv_bound with probability < 1e-6; a biased sampler misses
        # by far more on these texts.
        assert total_variation(observed, q) < tv_bound(q, N_SAMPLES)
        mean_len = sum(len(k) * c for k, c in observed.items()) / N_SAMPLES
        assert abs(mean_len - exp_len) < 5 * math.sqrt(var_len / N_SAMPLES) + 1e-12


def test_chi_square_rejects_a_slightly_wrong_alpha(en_tok):
    """The test has power: samples at alpha = 0.5 fail against q at alpha = 0.6."""
    text = b"It was certainly"
    observed = Counter(map(tuple, en_tok.sample(text, 0.5, N_SAMPLES, seed=3)))
    _, _, p = chi_square_gof(observed, exact_distribution(en_tok, text, 0.6))
    assert p < 1e-6


@pytest.mark.parametrize("alpha", [30.0, 200.0])
def test_large_alpha_takes_the_log_domain_path_and_stays_exact(en_tok, alpha):
    text = b"It was certainly"
    assert len(en_tok._weights(alpha)) == 0  # the linear domain is not provably exact here
    q = exact_distribution(en_tok, text, alpha)
    observed = Counter(map(tuple, en_tok.sample(text, alpha, 4000, seed=5)))
    mode = argmax_path(q)
    assert list(mode) == en_tok.encode(text)
    assert abs(observed[mode] / 4000 - q[mode]) < 5 * math.sqrt(q[mode] * (1 - q[mode]) / 4000) + 1e-9
    assert set(observed) <= set(q)


@pytest.mark.parametrize("name,text", CASES)
def test_viterbi_and_log_partition_match_enumeration(request, name, text):
    tok = request.getfixturevalue(name)
    # The documented tie rule: best score, then the longer last piece, recursively.
    assert tok.encode(text) == viterbi_reference(tok, text)
    paths = segmentations(tok, text)
    some = paths[:: max(1, len(paths) // 7)]
    for alpha in ALPHAS:
        log_z = log_partition_reference(tok, text, alpha)
        assert tok.log_partition(text, alpha) == pytest.approx(log_z, abs=1e-9)
        for p in some:
            assert tok.log_prob(text, p, alpha) == pytest.approx(alpha * path_score(tok, p) - log_z, abs=1e-9)


def test_viterbi_tie_rule_with_equal_scores():
    tok = Tokenizer.from_pieces([bytes([b]) for b in range(256)] + [b"ab", b"bc", b"abc", b"ca"], [-1.0] * 260)
    for text in (b"abc", b"abca", b"abcabc", b"bcab"):
        assert tok.encode(text) == viterbi_reference(tok, text)
        assert tok.nbest(text, 1)[0][0] == tok.encode(text)


@pytest.mark.parametrize("name,text", TIED_CASES)
def test_viterbi_tie_rule_on_real_pieces_with_tied_scores(request, name, text):
    tok = request.getfixturevalue(name)
    scores = [path_score(tok, p) for p in segmentations(tok, text)]
    assert scores.count(max(scores)) >= 2, "the best score is tied"
    assert tok.encode(text) == viterbi_reference(tok, text)
    assert tok.nbest(text, 1)[0][0] == tok.encode(text)


@pytest.mark.parametrize("name,lines", [
    ("en_tok", "en_held_out"), ("en_tok_equal", "en_held_out"), ("en_tok_rounded", "en_held_out"),
    ("ja_tok", "ja_held_out"), ("ja_tok_rounded", "ja_held_out"),
])
def test_viterbi_matches_the_reference_dp_on_held_out_lines(request, name, lines):
    tok, lines = request.getfixturevalue(name), request.getfixturevalue(lines)
    assert tok.encode_batch(lines) == [viterbi_dp_reference(tok, x) for x in lines]


@pytest.mark.parametrize("name,text", CASES)
def test_edge_count_matches_enumeration(request, name, text):
    tok = request.getfixturevalue(name)
    assert int(tok.count_edges_batch([text])[0]) == sum(map(len, edges_from(tok, text)))


@pytest.mark.parametrize("name", ["en_tok", "run_tok"])
def test_long_runs_do_not_overflow(request, name):
    tok = request.getfixturevalue(name)
    text = b"a" * 5000
    for alpha in (0.0, 1.0):
        lz = tok.log_partition(text, alpha)
        assert math.isfinite(lz)
        for ids in tok.sample(text, alpha, 3, seed=1):
            assert tok.decode_bytes(ids) == text
    # alpha = 0 counts paths, exactly with Python ints (about 1.99 ** 5000 for run_tok).
    assert tok.log_partition(text, 0.0) == pytest.approx(math.log(count_paths(tok, text)), rel=1e-12)
    assert tok.log_partition(text, 1.0) == pytest.approx(log_partition_dp(tok, text, 1.0), rel=1e-12)


def test_invalid_utf8_and_empty_text(en_tok):
    for text in (b"", b"\xff", b"\xe3\x81", b"\x80abc\xfe"):
        assert en_tok.decode_bytes(en_tok.encode(text)) == text
        for ids in en_tok.sample(text, 0.5, 5, seed=2):
            assert en_tok.decode_bytes(ids) == text


def test_zz_print_chi_square_table():
    """Shows the statistics of the sampling tests (run pytest with -s to see them)."""
    assert RESULTS, "the sampling tests ran first"
    print("\ntext\talpha\tpath\tchi2\tdof\tp")
    for text, alpha, how, stat, dof, p in RESULTS:
        print(f"{text}\t{alpha}\t{how}\t{stat:.1f}\t{dof}\t{p:.3f}")


@pytest.mark.parametrize("name", ["default_tok", "run_tok", "ja_tok"])
@pytest.mark.parametrize("alpha", [None, 0.1, 1.0, 8.0, 1e5])
def test_ring_of_recent_positions_gives_what_whole_arrays_give(request, name, alpha, en_lines):
    """Batches keep only a ring of the last best scores, ratios or relative masses
    (``lattice.ring_size``); on texts many rings long, Viterbi and the samplers (their
    choices and log Z, in either domain) equal the same passes over whole arrays."""
    import numpy as np

    from viterbisample import lattice
    from viterbisample.rng import stream_key

    tok = request.getfixturevalue(name)
    text = {"run_tok": b"a" * 700 + b"b" + b"a" * 300,
            "ja_tok": "吾輩は猫である。名前はまだ無い。どこで生れたか頓と見当がつかぬ。".encode() * 12,
            "default_tok": b" ".join(en_lines[:40])}[name]
    m, trie = tok.model, tok.model.suffix_trie
    buf = np.frombuffer(text, np.uint8)
    n, max_len = len(text), trie.max_len
    ring = lattice.ring_size(max_len)
    assert ring > max_len and n > 20 * ring
    mids, mstarts = lattice.match_buffers(max_len)
    results = []
    for mask, size in ((-1, n + 1), (ring - 1, ring)):
        mass = np.empty(size)
        bp = np.empty((2, n + 1), np.int32)
        if alpha is None:
            lattice.viterbi_pass(trie.base, trie.check, trie.value, m.scores, buf, 0, n, mass, mask,
                                 bp[0], mids, mstarts)
            results.append((bp[0].tolist(), None))
            continue
        weights = tok._weights(alpha)
        states = np.array([stream_key(np.uint64(3), np.uint64(0), np.uint64(0), np.uint64(d))
                           for d in range(2)], np.uint64)
        if len(weights):
            log_z = lattice.linear_sample_pass(trie.base, trie.check, trie.value, weights, max_len, buf, 0, n, mass,
                                               mask, 2, states, bp, np.empty(max_len), mids)
        else:
            rel = np.empty(size)
            lattice.tempered_pass(trie.base, trie.check, trie.value, m.scores, alpha, buf, 0, n, mass, rel, mask,
                                  2, states, bp, np.empty(max_len), mids, mstarts)
            log_z = (mass[n & mask], rel[n & mask])
        results.append((bp[:, 1:].tolist(), log_z))  # bp[:, 0] is never written
    assert results[0] == results[1]
