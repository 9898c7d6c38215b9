"""Sampling and n-best with a SentencePiece model's ids are exact for SentencePiece's own
lattice: against exhaustive enumeration of that lattice (built here from the
``sentencepiece`` package's view of the model: its normalizer, its pieces, its scores),
against ``sentencepiece``'s own sampler (two-sample chi-square) and its n-best.

The reference lattice is SentencePiece's rule, written out: at each character, every
NORMAL or user-defined piece that starts there (a user-defined one scored
length * max score - 0.1, the max at least FLT_MIN > 0), and one unknown node scored min score - 10 where no piece is
that one character; a path's ids are then SentencePiece's: a run of unknown characters
one ``<unk>``, or with ``byte_fallback`` the byte pieces of each.
"""

from __future__ import annotations

import io
import math
from collections import Counter

import numpy as np
import pytest
import sentencepiece as spm
from scipy.stats import chi2

from reference import chi_square_gof, total_variation, tv_bound
from viterbisample.sentencepiece_lattice import UNKNOWN_SYMBOL
from viterbisample.sentencepiece_tokenizer import SentencePieceTokenizer

N = 20000
RESULTS: list[tuple] = []  # (test, model, text, alpha, statistic, dof, p), printed by the last test
# "🧠x": a user-defined symbol holding a character that has no piece of its own
USER_SYMBOLS = ["<sep>", "Botchan", "ちゃん", "🧠x"]
CONFIGS = {
    "nmt_nfkc": {},
    "byte_fallback": {"byte_fallback": True},
    "user_symbols": {"user_defined_symbols": USER_SYMBOLS},
}
# Short texts with hundreds of segmentations, some with characters outside the
# vocabulary (runs of them, merged into one <unk>, or spelled in byte pieces).
TEXTS = ["It was certainly", " nothing 🙂🚀 of", "吾輩は猫である。名前はまだ無い。どこで生れたか", "Botchan 🧠x🧠☃x ちゃん"]
ALPHAS = [0.0, 1e-3, 0.1, 0.5, 1.0, 3.0]


@pytest.fixture(scope="module")
def models(data_file) -> dict[str, bytes]:
    en = data_file("corpora/en_botchan.txt").read_text("utf-8").split("\n")
    ja = data_file("corpora/ja_wagahaiwa_nekodearu.txt").read_text("utf-8").split("\n")
    text = [x for x in (en[:1500] + ja[:400]) if x.strip()]
    out = {}
    for name, options in CONFIGS.items():
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=buf, model_type="unigram",
                                       vocab_size=2000, character_coverage=0.98, minloglevel=2, num_threads=2,
                                       **options)
        out[name] = buf.getvalue()
    out["test_model"] = data_file("sp_test_models/test_model.model").read_bytes()
    return out


# -- the reference: SentencePiece's lattice, enumerated ------------------------------------


def reference_paths(sp: spm.SentencePieceProcessor, text: str, user: list[str],
                    nodes: dict | None = None) -> dict[tuple[int, ...], float]:
    """Every segmentation of SentencePiece's lattice of ``text`` as SentencePiece's ids,
    with its score (float64 sum of the float32 scores); ``nodes``, if given, receives
    each one's number of lattice nodes (an unknown character is one)."""
    s = sp.normalize(text)
    size = sp.get_piece_size()
    special = [sp.is_unknown(i) or sp.is_control(i) or sp.is_unused(i) or sp.is_byte(i) for i in range(size)]
    normal = [sp.get_score(i) for i in range(size) if not special[i] and sp.id_to_piece(i) not in user]
    # SentencePiece's max score starts at FLT_MIN, the least positive float.
    max_score, unk_score = max(normal + [1.1754943508222875e-38]), min(normal) - 10.0
    pieces = {}
    for i in range(size):
        if not special[i]:
            p = sp.id_to_piece(i)
            pieces[p] = (i, len(p.encode()) * max_score - 0.1 if p in user else sp.get_score(i))
    longest = max(map(len, pieces))
    byte_fallback = sp.piece_to_id("<0x41>") != sp.unk_id()

    def unknown_ids(char: str) -> list[int]:
        if byte_fallback:
            return [sp.piece_to_id(f"<0x{b:02X}>") for b in char.encode()]
        return [-1]  # merged below

    out: dict[tuple[int, ...], float] = {}

    def walk(at: int, ids: list[int], score: float, count: int = 0) -> None:
        if at == len(s):
            merged: list[int] = []
            for i in ids:
                if i == -1:
                    if merged and merged[-1] == -1:
                        continue
                merged.append(i)
            key = tuple(sp.unk_id() if i == -1 else i for i in merged)
            assert key not in out  # distinct paths, distinct id sequences
            out[key] = score
            if nodes is not None:
                nodes[key] = count
            return
        single = False
        for end in range(at + 1, min(len(s), at + longest) + 1):
            hit = pieces.get(s[at:end])
            if hit is not None:
                single |= end == at + 1
                walk(end, ids + [hit[0]], score + hit[1], count + 1)
        if not single:
            walk(at + 1, ids + unknown_ids(s[at]), score + unk_score, count + 1)

    walk(0, [], 0.0)
    return out


def distribution(paths: dict[tuple[int, ...], float], alpha: float) -> dict[tuple[int, ...], float]:
    top = max(paths.values())
    weights = {k: math.exp(alpha * (v - top)) for k, v in paths.items()}
    total = math.fsum(weights.values())
    return {k: w / total for k, w in weights.items()}


def two_sample_p(a: Counter, b: Counter, min_expected: float = 5.0) -> tuple[float, int, float]:
    """Chi-square test that two samples come from one distribution (a 2 x K table,
    cells whose expected count is below ``min_expected`` in either sample pooled)."""
    na, nb = sum(a.values()), sum(b.values())
    cells, pool = [], [0, 0]
    for k in set(a) | set(b):
        both = a.get(k, 0) + b.get(k, 0)
        if both * min(na, nb) / (na + nb) < min_expected:
            pool[0] += a.get(k, 0)
            pool[1] += b.get(k, 0)
        else:
            cells.append((a.get(k, 0), b.get(k, 0)))
    if sum(pool):
        cells.append(tuple(pool))
    stat = 0.0
    for ca, cb in cells:
        both = ca + cb
        ea, eb = both * na / (na + nb), both * nb / (na + nb)
        stat += (ca - ea) ** 2 / ea + (cb - eb) ** 2 / eb
    dof = len(cells) - 1
    return stat, dof, float(chi2.sf(stat, dof)) if dof > 0 else 1.0


def _pair(data: bytes):
    return SentencePieceTokenizer(data), spm.SentencePieceProcessor(model_proto=data)


def _user(name: str) -> list[str]:
    return USER_SYMBOLS if name == "user_symbols" else []


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS) + ["test_model"])
@pytest.mark.parametrize("text", TEXTS)
def test_reference_lattice_is_sentencepieces(models, name, text):
    """The enumeration is SentencePiece's lattice: its best path is sentencepiece's
    Viterbi ids, and its best few are sentencepiece's n-best."""
    tok, sp = _pair(models[name])
    paths = reference_paths(sp, text, _user(name))
    assert len(paths) <= 50000
    ranked = sorted(paths, key=lambda k: -paths[k])
    assert list(ranked[0]) == sp.encode(text)
    theirs = sp.nbest_encode(text, nbest_size=5)
    assert [paths[tuple(p)] for p in theirs] == pytest.approx([paths[k] for k in ranked[:5]], abs=1e-4)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_samples_follow_sentencepieces_q_alpha(models, name, alpha):
    tok, sp = _pair(models[name])
    dofs = []
    for k, text in enumerate(TEXTS):
        q = distribution(reference_paths(sp, text, _user(name)), alpha)
        # n draws from one pass, and n texts of one batch (keyed by index)
        one_pass = Counter(map(tuple, tok.sample(text, alpha, N, seed=7 + k)))
        batch = Counter(map(tuple, tok.encode_batch([text] * N, alpha=alpha, seed=70 + k)))
        for how, observed in (("sample", one_pass), ("encode_batch", batch)):
            assert set(observed) <= set(q), f"{how}: a sample that is not a path of SentencePiece's lattice"
            stat, dof, p = chi_square_gof(observed, q)
            RESULTS.append((f"vs enumeration, {how}", name, text, alpha, stat, dof, p))
            dofs.append(dof)
            assert p > 1e-4, (text, how, stat, dof)
            assert total_variation(observed, q) < tv_bound(q, N)
    assert max(dofs) >= (1 if alpha >= 3.0 else 10), dofs  # the tests have cells to fail in


@pytest.mark.parametrize("alpha", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("name", ["nmt_nfkc", "byte_fallback", "test_model"])
def test_samples_match_sentencepieces_own_sampler(models, name, alpha):
    """Two-sample chi-square: ours against ``sentencepiece``'s sampler (nbest_size=-1,
    its forward-filtering backward-sampling), and both against the enumeration."""
    tok, sp = _pair(models[name])
    spm.set_random_generator_seed(1234)
    dofs = []
    for k, text in enumerate(TEXTS[:3]):
        ours = Counter(map(tuple, tok.sample(text, alpha, N, seed=100 + k)))
        theirs = Counter(tuple(sp.encode(text, enable_sampling=True, alpha=alpha, nbest_size=-1)) for _ in range(N))
        stat, dof, p = two_sample_p(ours, theirs)
        RESULTS.append(("vs sentencepiece's sampler", name, text, alpha, stat, dof, p))
        dofs.append(dof)
        assert p > 1e-4, (text, stat, dof)
        q = distribution(reference_paths(sp, text, _user(name)), alpha)
        assert chi_square_gof(theirs, q)[2] > 1e-4, "sentencepiece's own sampler"
    assert max(dofs) >= 3, dofs


@pytest.mark.parametrize("alpha", [0.0, 0.1, 1.0, 1e308])
@pytest.mark.parametrize("name", ["nmt_nfkc", "byte_fallback", "test_model"])
def test_huggingface_files_sample_their_lattice(models, name, alpha, tmp_path):
    """A ``tokenizer.json`` written from the model (as transformers converts it), loaded
    back, samples q_alpha over ``tokenizers``' lattice: each word's alone, the words side
    by side.  In these models no piece holds ``▁`` but at its start, so that lattice is
    SentencePiece's and the enumeration above is the reference; the draws are keyed by
    text index alone, and alpha 1e308 gives ``tokenizers``' Viterbi ids."""
    from viterbisample import Tokenizer

    tok, sp = _pair(models[name])
    assert not any("\u2581" in sp.id_to_piece(i)[1:] for i in range(sp.get_piece_size()))
    path = tmp_path / "tokenizer.json"
    tok.save_huggingface(path)
    hf = Tokenizer.load(path)
    texts = TEXTS[:3]
    if alpha > 1e300:
        assert hf.encode_batch(texts * 3, alpha=alpha, seed=1) == sp.encode(texts * 3)
        return
    batch = hf.encode_batch(texts * 2, alpha=alpha, seed=12, epoch=3, first_index=40)
    assert [hf.encode(t, alpha, 12, epoch=3, index=40 + k) for k, t in enumerate(texts * 2)] == batch
    dofs = []
    for k, text in enumerate(texts):
        q = distribution(reference_paths(sp, text, []), alpha)
        observed = Counter(map(tuple, hf.encode_batch([text] * N, alpha=alpha, seed=200 + k)))
        assert set(observed) <= set(q), "a sample that is not a path of the lattice"
        stat, dof, p = chi_square_gof(observed, q)
        RESULTS.append(("tokenizer.json vs enumeration", name, text, alpha, stat, dof, p))
        dofs.append(dof)
        assert p > 1e-4, (text, stat, dof)
        assert total_variation(observed, q) < tv_bound(q, N)
    assert max(dofs) >= 3, dofs


def test_huggingface_files_calibrate_on_their_words(models, tmp_path):
    """Calibration on a ``tokenizer.json`` runs over the words: a text's q_alpha is the
    product of its words', so with the lattices equal (as above) it finds the alpha the
    SentencePiece model finds on whole texts; ``extra_tokens=`` samples at that alpha,
    and the loader wrapper calibrates the same way."""
    from viterbisample import SubwordRegularization, Tokenizer

    tok, sp = _pair(models["nmt_nfkc"])
    path = tmp_path / "tokenizer.json"
    tok.save_huggingface(path)
    hf = Tokenizer.load(path)
    texts = [x for x in TEXTS[:3] for _ in range(3)]
    a = hf.alpha_for_length(texts, 0.2)
    assert a == pytest.approx(tok.alpha_for_length(texts, 0.2), rel=1e-6)
    assert hf.alpha_for_entropy(texts, 0.1) == pytest.approx(tok.alpha_for_entropy(texts, 0.1), rel=1e-6)
    assert hf.encode_batch(texts, extra_tokens=0.2, seed=3) == hf.encode_batch(texts, alpha=a, seed=3)
    assert hf.encode(texts[0], extra_tokens=0.2, seed=3) == hf.encode(texts[0], alpha=hf.alpha_for_length(
        texts[:1], 0.2), seed=3)
    loader = SubwordRegularization(hf, extra_tokens=0.2, calibration_texts=texts, seed=3, padding=False)
    assert loader.alpha == pytest.approx(a)
    with pytest.raises(ValueError, match="one of"):
        hf.encode(texts[0], alpha=0.1, extra_tokens=0.2)


def test_a_wrong_alpha_is_detected(models):
    """The tests above can fail: samples at alpha 0.5 against q at 0.6 are rejected."""
    tok, sp = _pair(models["nmt_nfkc"])
    text = TEXTS[0]
    observed = Counter(map(tuple, tok.sample(text, 0.5, N, seed=3)))
    assert chi_square_gof(observed, distribution(reference_paths(sp, text, []), 0.6))[2] < 1e-6
    theirs = Counter(tuple(sp.encode(text, enable_sampling=True, alpha=0.6, nbest_size=-1)) for _ in range(N))
    assert two_sample_p(observed, theirs)[2] < 1e-6


@pytest.mark.parametrize("name", list(CONFIGS) + ["test_model"])
def test_nbest_is_the_exact_k_best(models, name):
    tok, sp = _pair(models[name])
    for text in TEXTS:
        paths = reference_paths(sp, text, _user(name))
        scores = sorted(paths.values(), reverse=True)
        found = tok.nbest(text, 25)
        assert len(found) == min(25, len(paths))
        assert len({tuple(ids) for ids, _ in found}) == len(found)
        for ids, score in found:
            assert paths[tuple(ids)] == pytest.approx(score, abs=1e-9)
        assert [s for _, s in found] == pytest.approx(scores[: len(found)], abs=1e-9)
        assert found[0][0] == sp.encode(text)
    everything = tok.nbest(TEXTS[0], 10**6)
    assert {tuple(ids) for ids, _ in everything} == set(reference_paths(sp, TEXTS[0], _user(name)))


@pytest.mark.parametrize("name", ["nmt_nfkc", "byte_fallback"])
@pytest.mark.parametrize("alpha", [0.0, 1e-3, 0.3, 1.0, 5.0, 1e3, 1e308])
def test_entropy_length_and_log_partition_match_enumeration(models, name, alpha):
    """Statistics of q_alpha over SentencePiece's lattice; the expected length counts
    its nodes (an unknown character is one, whatever its bytes)."""
    tok, sp = _pair(models[name])
    for text in TEXTS:
        nodes: dict = {}
        paths = reference_paths(sp, text, [], nodes)
        top = max(paths.values())
        log_z = alpha * top + math.log(math.fsum(math.exp(alpha * (v - top)) for v in paths.values()))
        q = distribution(paths, alpha)
        entropy = -math.fsum(p * math.log(p) for p in q.values() if p > 0)
        length = math.fsum(p * nodes[k] for k, p in q.items())
        assert tok.log_partition(text, alpha) == pytest.approx(log_z, rel=1e-9, abs=1e-6)
        assert tok.entropy(text, alpha) == pytest.approx(entropy, rel=1e-6, abs=1e-9)
        assert tok.expected_length(text, alpha) == pytest.approx(length, rel=1e-9)


@pytest.mark.parametrize("alpha", [50.0, 1e5, 1e308, math.inf])
def test_large_alpha_gives_the_best_path(models, alpha):
    tok, sp = _pair(models["nmt_nfkc"])
    lines = ["The quick brown fox", "吾輩は猫である。名前はまだ無い。", "emoji 🙂🚀🧠 mixed ☃", "x" * 300]
    assert tok.encode_batch(lines, alpha=alpha, seed=1) == sp.encode(lines)
    assert [tok.encode(x, alpha, seed=2) for x in lines] == sp.encode(lines)


def test_keyed_samples_are_the_same_one_at_a_time_and_in_batches(models):
    tok, _ = _pair(models["byte_fallback"])
    lines = TEXTS * 5 + ["", " ", "🙂", "a\u0301"]
    batch = tok.encode_batch(lines, alpha=0.3, seed=5, epoch=2, first_index=10)
    assert [tok.encode(x, 0.3, 5, epoch=2, index=10 + k) for k, x in enumerate(lines)] == batch
    ids, offsets = tok.encode_batch_arrays(lines, alpha=0.3, seed=5, epoch=2, first_index=10)
    assert [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])] == batch
    assert tok.encode_batch(lines, alpha=0.3, seed=5, epoch=3, first_index=10) != batch
    rows = tok.sample_batch(lines, 0.3, 4, seed=5, epoch=2, first_index=10)
    assert [r[0] for r in rows] == batch and all(len(r) == 4 for r in rows)
    assert [tok.decode(r) for r in batch] == [tok.decode(tok.encode(x)) for x in lines]


def test_calibrated_sampling_and_offsets(models):
    tok, sp = _pair(models["nmt_nfkc"])
    lines = [x for x in TEXTS for _ in range(10)]
    base = sum(map(len, sp.encode(lines)))
    sampled = tok.encode_batch(lines, extra_tokens=0.2, seed=1)
    assert 1.0 < sum(map(len, sampled)) / base < 1.5
    ids, spans = tok.encode(TEXTS[1], 0.2, seed=4, return_offsets=True)
    assert len(spans) == len(ids) and spans[-1][1] == len(TEXTS[1])
    inputs = tok(TEXTS, alpha=0.2, seed=3, add_eos=True)
    assert inputs["input_ids"] == [r + [sp.eos_id()] for r in tok.encode_batch(TEXTS, alpha=0.2, seed=3)]


@pytest.mark.parametrize("name", ["byte_fallback", "user_symbols"])
def test_distinct_samples_are_paths_with_their_probabilities(models, name):
    """Without replacement: distinct paths of SentencePiece's lattice with their exact
    log q_alpha; asking for more than there are gives every path; the first draw is an
    exact sample (chi-square against the enumeration)."""
    tok, sp = _pair(models[name])
    for text in TEXTS:
        q = distribution(reference_paths(sp, text, _user(name)), 0.5)
        found = tok.sample_distinct(text, 0.5, 6, seed=4)
        assert len({tuple(ids) for ids, _, _ in found}) == len(found) == min(6, len(q))
        for ids, log_q, inclusion in found:
            assert math.exp(log_q) == pytest.approx(q[tuple(ids)], rel=1e-9, abs=1e-300)
            assert 0.0 < inclusion <= 1.0
        everything = tok.sample_distinct(text, 0.5, len(q) + 5, seed=5)
        assert {tuple(ids) for ids, _, _ in everything} == set(q)
        best = tok.sample(text, 0.5, 3, seed=6, replace=False, include_best=True)[0]
        assert best == sp.encode(text)
    q = distribution(reference_paths(sp, TEXTS[0], _user(name)), 0.5)
    firsts = tok.sample_distinct_batch([TEXTS[0]] * 4000, 0.5, 2, seed=8)
    observed = Counter(tuple(rows[0][0]) for rows in firsts)
    assert chi_square_gof(observed, q)[2] > 1e-4


def test_what_is_not_available_says_so(models):
    tok, _ = _pair(models["nmt_nfkc"])
    with pytest.raises(NotImplementedError, match="not available yet"):
        tok.log_prob(TEXTS[0], [1, 2])
    with pytest.raises(ValueError):
        tok.encode(TEXTS[0], alpha=-1.0)
    with pytest.raises(ValueError):
        tok.sample_batch(TEXTS, 0.5, -1)


def test_linear_domain_is_used_and_agrees_with_the_log_domain(models):
    """The fast linear sampler runs on SentencePiece's lattice (mass 0 inside characters)
    and draws what the log-domain sampler draws (the same streams, the same choices up
    to rounding)."""
    tok, _ = _pair(models["nmt_nfkc"])
    engine = tok._character_engine  # the lattice over characters, which samples
    assert engine.weights(0.5).size > 0 and tok._engine.weights(0.5).size > 0
    lines = [x for x in TEXTS * 50]
    fast = tok.encode_batch(lines, alpha=0.5, seed=9)
    engine._weights_cache[0.5] = np.zeros(0)  # force the log domain
    try:
        slow = tok.encode_batch(lines, alpha=0.5, seed=9)
    finally:
        engine._weights_cache.clear()
    same = sum(a == b for a, b in zip(fast, slow))
    assert same >= 0.99 * len(lines)


@pytest.mark.parametrize("name", ["user_symbols", "byte_fallback"])
def test_characters_are_read_as_sentencepiece_reads_them(models, name):
    """The lattice over characters reads a text as the byte lattice's marker does: one
    symbol per valid UTF-8 character (strict: no overlong forms, surrogates or values past
    U+10FFFF), the same symbol for the same character, a symbol of its own for each
    character of a piece SentencePiece matches, and the unknown symbol for any other
    character and for each byte that starts no valid character (Python's
    ``surrogateescape`` marks exactly those bytes)."""
    tok, sp = _pair(models[name])
    user = _user(name)
    in_pieces = {c for i in range(sp.get_piece_size())
                 if not (sp.is_unknown(i) or sp.is_control(i) or sp.is_unused(i) or sp.is_byte(i))
                 for c in sp.id_to_piece(i).replace("\u2581", " ")}
    assert not user or set(user[-1]) <= in_pieces
    rng = np.random.default_rng(3)
    texts = [b"", b"a", "吾輩は猫 🙂🧠x ｱ".encode(), b"\xe3\x81", b"\xe3\x81a\xff\xc0\xaf", b"\xed\xa0\x80z",
             "\U0010ffff\x00\x7f".encode(), b"abc\xf4\x90\x80\x80", "e\u0301 \u2581".encode()]
    texts += [rng.bytes(int(n)) for n in rng.integers(0, 40, 200)]
    texts += [bytes(rng.choice(list("ab 猫🧠".encode()) + [0x80, 0xE3], int(n))) for n in rng.integers(0, 40, 200)]
    chars = tok._lattice.characters
    buf, starts, ends = chars.of_packed(
        (np.frombuffer(b"".join(texts) + b"\0", np.uint8), *_bounds(texts)))
    symbol_of: dict[str, int] = {}
    for t, data in enumerate(texts):
        got = buf[starts[t] : ends[t]].tolist()
        assert got == chars.of(data).tolist()
        read = data.decode("utf-8", "surrogateescape")
        assert len(got) == len(read)
        for c, symbol in zip(read, got):
            if "\udc80" <= c <= "\udcff" or c not in in_pieces:
                assert symbol == UNKNOWN_SYMBOL, (data, c)
            else:
                assert UNKNOWN_SYMBOL < symbol < chars.alphabet and symbol_of.setdefault(c, symbol) == symbol
    assert len(set(symbol_of.values())) == len(symbol_of)


def _bounds(texts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    ends = np.cumsum([len(t) for t in texts], dtype=np.int64)
    return ends - np.array([len(t) for t in texts], np.int64), ends


def test_zz_print_chi_square_table():
    """Shows the statistics of the sampling tests (run pytest with -s to see them)."""
    assert RESULTS, "the sampling tests ran first"
    print("\ntest\tmodel\ttext\talpha\tchi2\tdof\tp")
    for test, name, text, alpha, stat, dof, p in RESULTS:
        print(f"{test}\t{name}\t{text}\t{alpha}\t{stat:.1f}\t{dof}\t{p:.3f}")
