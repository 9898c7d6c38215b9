"""The double-array trie: every piece found at every position, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viterbisample.trie import (
    WHOLE_CHARACTERS,
    best_suffix_match,
    build_symbol_trie,
    build_trie,
    prefix_matches,
    suffix_mass_terms,
)
from viterbisample.utf8 import character_boundary, character_end_step


def assert_walks_find_exactly_the_pieces(pieces: list[bytes], text: bytes, reverse: bool) -> None:
    """At every position of ``text``, the walk lists exactly the pieces that start there
    (forward) or end there (``reverse``), shortest first, against plain string tests."""
    trie = build_trie(pieces, range(len(pieces)), reverse=reverse)
    arr = np.frombuffer(text + b"\0", np.uint8)[: len(text)]
    ids = np.zeros(trie.max_len, np.int32)
    ends = np.zeros(trie.max_len, np.int64)
    for i in range(len(text)):
        if reverse:  # pieces ending at i + 1, walking backward
            k = prefix_matches(trie.base, trie.check, trie.value, arr, i, -1, -1, ids, 0, ends)
            expected = {(j, i + 1 - len(p)) for j, p in enumerate(pieces) if text[: i + 1].endswith(p)}
        else:
            k = prefix_matches(trie.base, trie.check, trie.value, arr, i, len(text), 1, ids, 0, ends)
            expected = {(j, i + len(p)) for j, p in enumerate(pieces) if text.startswith(p, i)}
        found = [(int(ids[m]), int(ends[m])) for m in range(k)]
        assert sorted(found) == sorted(expected)
        lengths = [abs(e - (i + 1 if reverse else i)) for _, e in found]
        assert lengths == sorted(lengths), "shortest first"


# NUL bytes matter: pieces are sorted as NUL-padded strings, which ties b"a" with b"a\0".
piece = st.lists(st.sampled_from(b"\x00ab\xff"), min_size=1, max_size=5).map(bytes)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(piece, min_size=1, max_size=40, unique=True),
       text=st.lists(st.sampled_from(b"\x00ab\xff"), max_size=12).map(bytes), reverse=st.booleans())
def test_prefix_matches_finds_exactly_the_pieces(pieces, text, reverse):
    assert_walks_find_exactly_the_pieces(pieces, text, reverse)


# Whole characters: the walk stops after one byte inside characters; the text may hold
# any bytes (broken sequences, stray continuation bytes).
chars = st.sampled_from(["a", "é", "あ", "い", "𝄞"]).map(lambda c: c.encode())
char_piece = st.lists(chars, min_size=2, max_size=3).map(b"".join)
any_bytes = st.lists(st.sampled_from(list(b"a\xc3\xa9\xe3\x81\x82\x84\xf0\x9d\x84\x9e\x80\xff")),
                     max_size=14).map(bytes)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(char_piece, max_size=20, unique=True), text=any_bytes,
       reverse=st.booleans(), broken=st.booleans())
def test_whole_character_tries_stop_early_and_miss_nothing(pieces, text, reverse, broken):
    pieces = [bytes([b]) for b in range(256)] + ["é".encode(), "あ".encode()] + pieces
    if broken:  # a piece that ends inside a character: no early stop then
        pieces.append(b"\xe3\x81")
    pieces = list(dict.fromkeys(pieces))
    assert (build_trie(pieces, range(len(pieces)), reverse=reverse).value[0] == WHOLE_CHARACTERS) != broken
    assert_walks_find_exactly_the_pieces(pieces, text, reverse)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(piece, min_size=1, max_size=30, unique=True),
       text=st.lists(st.sampled_from(b"\x00ab\xff"), min_size=1, max_size=12).map(bytes),
       data=st.data())
def test_fused_viterbi_step_equals_walk_then_max(pieces, text, data):
    """``best_suffix_match`` (walk and max in one) against ``prefix_matches`` and a loop,
    ties included (scores drawn from a few values, so exact ties are common)."""
    trie = build_trie(pieces, range(len(pieces)), reverse=True)
    scores = np.array(data.draw(st.lists(st.sampled_from([-1.0, -2.0, -3.5]), min_size=len(pieces),
                                         max_size=len(pieces))))
    best = np.array(data.draw(st.lists(st.sampled_from([0.0, -1.0, -2.0, -np.inf]),
                                       min_size=len(text) + 1, max_size=len(text) + 1)))
    arr = np.frombuffer(text, np.uint8)
    ids = np.zeros(trie.max_len, np.int32)
    ends = np.zeros(trie.max_len, np.int64)
    for i in range(len(text)):
        k = prefix_matches(trie.base, trie.check, trie.value, arr, i, -1, -1, ids, 0, ends)
        top, arg = -np.inf, -1
        for m in range(k):
            if best[ends[m]] + scores[ids[m]] >= top:
                top, arg = best[ends[m]] + scores[ids[m]], int(ids[m])
        assert best_suffix_match(trie.base, trie.check, trie.value, arr, i, -1, scores, best, 0, -1) == (top, arg)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(piece, min_size=1, max_size=30, unique=True),
       text=st.lists(st.sampled_from(b"\x00ab\xff"), min_size=1, max_size=12).map(bytes),
       data=st.data())
def test_fused_sampler_step_equals_walk_then_sums(pieces, text, data):
    """``suffix_mass_terms`` against ``prefix_matches`` and a loop of running sums."""
    trie = build_trie(pieces, range(len(pieces)), reverse=True)
    weights = np.array(data.draw(st.lists(st.floats(0.01, 1.0), min_size=len(pieces), max_size=len(pieces))))
    mass = np.array(data.draw(st.lists(st.floats(0.0, 2.0), min_size=len(text) + 1, max_size=len(text) + 1)))
    arr = np.frombuffer(text, np.uint8)
    ids, ends = np.zeros(trie.max_len, np.int32), np.zeros(trie.max_len, np.int64)
    got_ids, got_terms = np.zeros(trie.max_len, np.int32), np.zeros(trie.max_len)
    for i in range(len(text)):
        k = prefix_matches(trie.base, trie.check, trie.value, arr, i, -1, -1, ids, 0, ends)
        sums = np.cumsum([mass[ends[m]] * weights[ids[m]] for m in range(k)]) if k else np.zeros(0)
        count, total = suffix_mass_terms(trie.base, trie.check, trie.value, arr, i, -1, weights, mass, 0, -1,
                                         got_ids, got_terms)
        assert count == k and list(got_ids[:k]) == list(ids[:k])
        np.testing.assert_allclose(got_terms[:k], sums, rtol=1e-15)
        assert total == (sums[-1] if k else 0.0)


def early_stops(trie, arr) -> list[int]:
    """The ``stop`` the passes give the fused walks at each position (lattice/forward.py): the
    single byte only where, by ``character_end_step``, no character ends."""
    stops, pending = [], -1
    for i in range(len(arr)):
        ends, pending = character_end_step(arr[i], pending)
        stops.append(i - 1 if trie.value[0] == WHOLE_CHARACTERS and not ends else -1)
    return stops


@settings(max_examples=300, deadline=None)
@given(text=any_bytes)
def test_character_end_step_is_the_walks_boundary_test(text):
    """Read forward, the O(1) state machine says a character ends exactly where the
    backward walk's own test (which looks back over the character) says so."""
    arr = np.frombuffer(text + b"\0", np.uint8)[: len(text)]
    pending = -1
    for i in range(len(text)):
        ends, pending = character_end_step(arr[i], pending)
        assert ends == character_boundary(arr, i, -1, -1)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(char_piece, max_size=20, unique=True), text=any_bytes, data=st.data())
def test_fused_walks_with_the_passes_early_stop_find_what_prefix_matches_finds(pieces, text, data):
    """On whole-character tries and any bytes, both fused walks given the passes' stop
    agree with ``prefix_matches`` (which stops early by itself) followed by a loop."""
    pieces = list(dict.fromkeys([bytes([b]) for b in range(256)] + pieces))
    trie = build_trie(pieces, range(len(pieces)), reverse=True)
    assert trie.value[0] == WHOLE_CHARACTERS
    scores = np.array(data.draw(st.lists(st.sampled_from([-1.0, -2.0, -3.5]), min_size=len(pieces),
                                         max_size=len(pieces))))
    best = np.array(data.draw(st.lists(st.sampled_from([0.0, -1.0, -2.0]),
                                       min_size=len(text) + 1, max_size=len(text) + 1)))
    arr = np.frombuffer(text + b"\0", np.uint8)[: len(text)]
    ids, ends = np.zeros(trie.max_len, np.int32), np.zeros(trie.max_len, np.int64)
    got_ids, got_terms = np.zeros(trie.max_len, np.int32), np.zeros(trie.max_len)
    for i, stop in enumerate(early_stops(trie, arr)):
        k = prefix_matches(trie.base, trie.check, trie.value, arr, i, -1, -1, ids, 0, ends)
        top, arg = -np.inf, -1
        for m in range(k):
            if best[ends[m]] + scores[ids[m]] >= top:
                top, arg = best[ends[m]] + scores[ids[m]], int(ids[m])
        assert best_suffix_match(trie.base, trie.check, trie.value, arr, i, stop, scores, best, 0, -1) == (top, arg)
        count, _ = suffix_mass_terms(trie.base, trie.check, trie.value, arr, i, stop, scores, best, 0, -1,
                                     got_ids, got_terms)
        assert count == k and list(got_ids[:k]) == list(ids[:k])


@pytest.mark.parametrize("max_fails, max_tries", [(255, 1024), (1, 1), (3, 16)])
def test_large_builds_find_exactly_what_a_dictionary_finds(monkeypatch, max_fails, max_tries):
    """20k numbered pieces (their digit nodes leave holes only single children fit) and
    20k random ones, forward and reversed, against dictionary lookups of every substring;
    and the layout the walks rely on (padding past every base, free root cell).  Also with
    the placement bounds lowered, so that cells leave the free list and searches give up."""
    from viterbisample import trie as trie_module

    monkeypatch.setattr(trie_module, "_MAX_FAILS", max_fails)
    monkeypatch.setattr(trie_module, "_MAX_TRIES", max_tries)
    rng = np.random.default_rng(7)
    numbered = [bytes([b]) for b in range(256)] + [b"zq%d" % i for i in range(1, 20001)]
    random_pieces = list(dict.fromkeys(rng.bytes(int(n)) for n in rng.integers(2, 9, 20000)))
    for pieces in (numbered, random_pieces):
        id_of = {p: i for i, p in enumerate(pieces)}
        longest = max(map(len, pieces))
        picks = rng.integers(0, len(pieces), 1500)
        text = b"".join(pieces[i] + rng.bytes(int(i % 3)) for i in picks)
        arr = np.frombuffer(text, np.uint8)
        for reverse in (False, True):
            trie = build_trie(pieces, range(len(pieces)), reverse=reverse)
            assert len(trie.base) == len(trie.check) == len(trie.value)
            assert int(trie.base.max()) + 255 < len(trie.base)
            assert trie.check[0] == -1 and trie.value[0] in (-1, WHOLE_CHARACTERS)
            assert int((trie.value >= 0).sum()) == len(pieces)
            assert_walks_find_what_a_dictionary_finds(trie, arr, reverse, longest, id_of, lambda a, b: text[a:b])


def assert_walks_find_what_a_dictionary_finds(trie, arr, reverse, longest, id_of, key) -> None:
    """At every position of ``arr``, the walk lists exactly the pieces of ``id_of`` among
    the spans that start there (or end there, ``reverse``), shortest first; ``key(a, b)``
    is the dictionary's key of ``arr[a:b]``."""
    ids = np.zeros(max(1, trie.max_len), np.int32)
    ends = np.zeros(max(1, trie.max_len), np.int64)
    for i in range(len(arr)):
        if reverse:
            k = prefix_matches(trie.base, trie.check, trie.value, arr, i, -1, -1, ids, 0, ends)
            spans = [(i + 1 - n, i + 1) for n in range(1, min(longest, i + 1) + 1)]
        else:
            k = prefix_matches(trie.base, trie.check, trie.value, arr, i, len(arr), 1, ids, 0, ends)
            spans = [(i, i + n) for n in range(1, min(longest, len(arr) - i) + 1)]
        expected = [(id_of[key(a, b)], a if reverse else b) for a, b in spans if key(a, b) in id_of]
        assert [(int(ids[m]), int(ends[m])) for m in range(k)] == expected


@pytest.mark.parametrize("alphabet", [3, 300, 70000])
def test_symbol_tries_find_exactly_what_a_dictionary_finds(alphabet):
    """Tries over symbols (a lattice over characters): every piece at every position of a
    symbol text, forward and backward, against dictionary lookups, with symbols up to
    the alphabet's last (the padding past every base must hold it), pieces that are
    prefixes of others and pieces one symbol long."""
    rng = np.random.default_rng(alphabet)
    top = alphabet - 1
    pieces = {(1,), (top,), (top, top), (1, top, 1)}
    while len(pieces) < 3000 and len(pieces) < (alphabet - 1) ** 2:
        n = int(rng.integers(1, 7))
        pieces.add(tuple(int(x) for x in rng.integers(max(1, top - 40), alphabet, n)))
    pieces = sorted(pieces, key=lambda p: (len(p), p))
    id_of = {p: i for i, p in enumerate(pieces)}
    lengths = np.array([len(p) for p in pieces])
    data = np.array([x for p in pieces for x in p], np.int32)
    longest = int(lengths.max())
    picks = rng.integers(0, len(pieces), 600)
    text = np.array([x for i in picks for x in pieces[i] + (top,) * int(i % 2)], np.int32)
    for reverse in (False, True):
        trie = build_symbol_trie(data, lengths, np.arange(len(pieces)), alphabet, reverse=reverse)
        assert int(trie.base.max()) + alphabet - 1 < len(trie.base) == len(trie.check) == len(trie.value)
        assert trie.value[0] == -1 and trie.max_len == longest
        assert_walks_find_what_a_dictionary_finds(trie, text, reverse, longest, id_of,
                                                  lambda a, b: tuple(text[a:b].tolist()))


def test_symbol_tries_refuse_symbols_outside_the_alphabet():
    for bad in ([0, 1], [1, 5]):
        with pytest.raises(ValueError, match="symbols must lie in"):
            build_symbol_trie(np.array(bad, np.int32), np.array([1, 1]), np.arange(2), 5)
