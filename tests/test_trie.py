"""The double-array trie: every piece found at every position, forward and backward."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from viterbisample.trie import WHOLE_CHARACTERS, build_trie, prefix_matches


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
