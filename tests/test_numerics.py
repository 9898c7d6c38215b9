"""Every pass at the edges of its numeric domain (ALGORITHMS.md section 4, "When the
linear domain is safe"): alpha from 1e-3 to the largest double and inf, pieces of 64
bytes, runs of one character, scores spread over the whole range a model may hold.

The references here are plain-Python dynamic programs over the lattice that keep no
alpha in their values (best and worst scores, shortest and longest paths), so they
hold at any alpha; enumeration gives exact distributions where alpha is moderate."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference import (
    chi_square_gof,
    entropy,
    exact_distribution,
    log_partition_dp,
    path_score,
    total_variation,
    tv_bound,
)
from viterbisample import Tokenizer
from viterbisample.model import MAX_PIECE_BYTES

MAX_ABS_SCORE = 1e4  # the validated range of a model's scores
ALPHABET = [b"a", b"b", "\u00e9".encode()]  # one two-byte character: pieces may split it
BIG = 1.7976931348623157e308


def lattice_extremes(tok: Tokenizer, data: bytes) -> tuple[float, int, int]:
    """(best score, fewest tokens, most tokens) over the paths of ``data``, by DPs
    that hold no alpha."""
    table = {p: tok.model.num_special + i for i, p in enumerate(tok.model.pieces)}
    longest = max(len(p) for p in tok.model.pieces)
    n = len(data)
    best = [-math.inf] * (n + 1)
    fewest = [math.inf] * (n + 1)
    most = [-math.inf] * (n + 1)
    best[0], fewest[0], most[0] = 0.0, 0, 0
    for j in range(1, n + 1):
        for i in range(max(0, j - longest), j):
            pid = table.get(data[i:j])
            if pid is None or best[i] == -math.inf:
                continue
            best[j] = max(best[j], best[i] + float(tok.model.scores[pid]))
            fewest[j] = min(fewest[j], fewest[i] + 1)
            most[j] = max(most[j], most[i] + 1)
    return best[n], int(fewest[n]), int(most[n])


@st.composite
def models_and_texts(draw):
    """A model whose pieces over a three-character alphabet reach 64 bytes (runs of one
    byte among them), with scores anywhere in [-1e4, 1e4], and a text of runs."""
    spread = draw(st.sampled_from([1.0, 30.0, 1e3, MAX_ABS_SCORE]))
    score = st.floats(-spread, min(spread, 50.0), allow_nan=False)
    units = st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=MAX_PIECE_BYTES // 2)
    runs = st.integers(2, MAX_PIECE_BYTES).map(lambda k: b"a" * k)
    extra = draw(st.lists(st.one_of(units.map(b"".join), runs), max_size=14, unique=True))
    extra = [p for p in extra if len(p) > 1 and len(p) <= MAX_PIECE_BYTES]
    pieces = [bytes([b]) for b in range(256)] + extra
    scores = [-20.0] * 256 + [draw(score) for _ in extra]
    for unit in (b"a", b"b", b"\xc3", b"\xa9"):
        scores[unit[0]] = draw(score)
    tok = Tokenizer.from_pieces(pieces, scores)
    parts = draw(st.lists(st.one_of(st.sampled_from(ALPHABET), runs), min_size=0, max_size=10))
    return tok, b"".join(parts)[:160]


alphas = st.one_of(
    st.floats(-3.0, 308.0).map(lambda e: 10.0**e),
    st.sampled_from([0.0, 5.0, 10.0, 15.0, 20.0, 1e300, BIG, math.inf]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=models_and_texts(), alpha=alphas)
def test_every_pass_stays_sound_at_any_alpha(case, alpha):
    tok, text = case
    best, fewest, most = lattice_extremes(tok, text)
    viterbi = tok.encode(text)
    assert tok.decode_bytes(viterbi) == text and path_score(tok, viterbi) == best
    samples = tok.sample(text, alpha, 6, seed=7) + tok.encode_batch([text] * 3, alpha=alpha, seed=8)
    for ids in samples:
        assert tok.decode_bytes(ids) == text
        if alpha >= 1e300:  # beyond any score difference: only best paths remain
            assert path_score(tok, ids) == best
    if alpha == math.inf:
        assert all(ids == viterbi for ids in samples)
    st_ = tok.stats_batch([text], alpha)
    h0 = tok.entropy(text, 0.0)
    h = float(st_["entropy"][0])
    tol = 1e-9 * max(1.0, h0)
    assert -tol <= h <= h0 + tol
    assert h <= tok.entropy(text, alpha / 2) + tol  # H falls as alpha grows
    length = float(st_["expected_length"][0])
    assert fewest - 1e-9 * most <= length <= most + 1e-9 * most
    if 0.0 < alpha < 1e3 and len(text) <= 40:
        assert tok.log_partition(text, alpha) == pytest.approx(log_partition_dp(tok, text, alpha), rel=1e-9, abs=1e-9)


# -- chi-square where large alphas still leave several paths likely ----------------------

def near_tied_model(byte_score: float, with_long_run: bool) -> Tokenizer:
    """Pieces of one to four bytes over "ab" scored about -1 per byte, each off by up to
    0.1 (seeded), so that many paths of a text stay within a few nats of each other even
    at alpha 20; bytes scored ``byte_score``.  A 64-byte run of "a" makes the longest
    piece 64 bytes, which with a low byte score puts alpha 5-20 in the log domain."""
    rng = np.random.default_rng(1)
    grams = [bytes(g) for k in (2, 3, 4) for g in itertools.product(b"ab", repeat=k)]
    pieces = [bytes([b]) for b in range(256)] + grams
    scores = [byte_score] * 256 + [-len(g) + rng.uniform(-0.1, 0.1) for g in grams]
    if with_long_run:
        pieces.append(b"a" * 64)
        scores.append(-64.0)
    return Tokenizer.from_pieces(pieces, scores)


@pytest.mark.parametrize("alpha", [5.0, 10.0, 20.0])
@pytest.mark.parametrize("byte_score, with_long_run, linear, text", [
    (-1.02, False, True, b"abaababbab"),
    (-3.3, True, False, b"aabaabbaabab"),
])
def test_chi_square_at_large_alpha_in_both_domains(alpha, byte_score, with_long_run, linear, text):
    tok = near_tied_model(byte_score, with_long_run)
    assert (len(tok._weights(alpha)) > 0) == linear
    q = exact_distribution(tok, text, alpha)
    likely = sorted(q.values(), reverse=True)
    assert likely[3] > 0.01, "several paths must stay likely"
    n = 20000
    observed = Counter(map(tuple, tok.sample(text, alpha, n, seed=21)))
    batch = Counter(map(tuple, tok.encode_batch([text] * n, alpha=alpha, seed=22)))
    for counts in (observed, batch):
        stat, dof, p = chi_square_gof(counts, q)
        assert dof >= 3 and p > 1e-4, (stat, dof, p)
        assert total_variation(counts, q) < tv_bound(q, n)
    st_ = tok.stats_batch([text], alpha)
    assert st_["entropy"][0] == pytest.approx(entropy(q), rel=1e-9, abs=1e-12)
    assert st_["log_z"][0] == pytest.approx(log_partition_dp(tok, text, alpha), rel=1e-12)


def test_long_piece_over_low_bytes_at_alpha_2():
    """The model of the issue: 64 bytes of "a" as one piece scored -10, bytes -8."""
    tok = Tokenizer.from_pieces([bytes([b]) for b in range(256)] + [b"a" * 64], [-8.0] * 256 + [-10.0])
    text = b"a" * 64
    assert len(tok._weights(2.0)) == 0
    q = {(256 + 3,): 1.0}  # exp(2 * (-10 + 8 * 64)) dominates every other path
    for ids in tok.sample(text, 2.0, 50, seed=0):
        assert tuple(ids) in q
    for alpha in (1e-3, 0.01, 0.02):  # small alphas: every path, and the linear domain
        for ids in tok.sample(text * 3 + b"a" * 5, alpha, 20, seed=1):
            assert tok.decode_bytes(ids) == text * 3 + b"a" * 5


@pytest.mark.parametrize("text, alpha", [
    ("CYRILLIC CAPITAL LETTER ", 10.0),
    ("    >>> s = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'", 8.0),
])
def test_texts_that_broke_the_old_sampler(default_tok, text, alpha):
    for a in (alpha, 15.0, 40.0, 1e3, 1e306, 1e307, 1e308):
        for ids in default_tok.sample(text, a, 20, seed=0):
            assert default_tok.decode(ids) == text
    best = path_score(default_tok, default_tok.encode(text))
    for a in (1e300, 1e306, BIG):
        assert path_score(default_tok, default_tok.encode(text, alpha=a, seed=3)) == best


def test_entropy_and_length_on_long_text_at_large_alpha(default_tok, en_lines):
    text = b" ".join(en_lines)[:30_000]
    h0 = default_tok.entropy(text, 0.0)
    last = h0
    for alpha in (1.0, 10.0, 100.0, 1000.0, 3000.0, 1e4, 1e14, 1e300, math.inf):
        h = default_tok.entropy(text, alpha)
        assert -1e-9 <= h <= last + 1e-9 * h0, alpha
        last = h
    viterbi = len(default_tok.encode(text))
    assert default_tok.expected_length(text, 1e14) == pytest.approx(viterbi, abs=1e-6)
    assert default_tok.expected_length(text, math.inf) == pytest.approx(viterbi, abs=1e-6)


def test_infinite_alpha_is_viterbi_everywhere(default_tok, en_lines):
    lines = en_lines[:50]
    viterbi = default_tok.encode_batch(lines)
    assert default_tok.encode_batch(lines, alpha=math.inf, seed=3) == viterbi
    assert [default_tok.encode(x, alpha=math.inf) for x in lines] == viterbi
    for line, rows in zip(lines, default_tok.sample_batch(lines, math.inf, 3)):
        assert rows == [default_tok.encode(line)] * 3
    ids, offsets = default_tok.sample_batch_arrays(lines, math.inf, 2)
    assert len(offsets) == 2 * len(lines) + 1
    assert ids[offsets[2] : offsets[3]].tolist() == viterbi[1]


@pytest.mark.parametrize("alpha", [5.0, 8.0, 10.0, 15.0, 20.0, 40.0, 1e3, 1e306])
def test_real_lines_round_trip_at_large_alpha(default_tok, en_lines, ja_lines, alpha):
    """The corpus sweep of ``benchmarks/sweep_alphas.py`` on the vendored lines."""
    lines = en_lines[:1500] + ja_lines[:300]
    ids, offsets = default_tok.encode_batch_arrays(lines, alpha=alpha, seed=5)
    decoded = [default_tok.decode_bytes(ids[offsets[k] : offsets[k + 1]]) for k in range(len(lines))]
    wrong = [k for k, line in enumerate(lines) if decoded[k] != line]
    assert wrong == []


def test_chi_square_on_a_real_model_at_alpha_10(default_tok):
    """The shipped model (log domain at alpha 10): a word whose segmentations stay
    close enough at alpha 10 for four of them to be seen."""
    text = b"lattice"
    assert len(default_tok._weights(10.0)) == 0
    q = exact_distribution(default_tok, text, 10.0)
    n = 20000
    observed = Counter(map(tuple, default_tok.sample(text, 10.0, n, seed=4)))
    stat, dof, p = chi_square_gof(observed, q)
    assert dof >= 3 and p > 1e-4, (stat, dof, p)
    assert total_variation(observed, q) < tv_bound(q, n)


def test_shipped_model_switches_domain_where_the_readme_says(default_tok):
    """README: the shipped model samples in the linear domain up to alpha 1.51."""
    assert len(default_tok._weights(1.51)) > 0
    assert len(default_tok._weights(1.52)) == 0
