"""The double-array trie: every piece found at every position, forward and backward."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from viterbisample.trie import build_trie, prefix_matches

# NUL bytes matter: pieces are sorted as NUL-padded strings, which ties b"a" with b"a\0".
piece = st.lists(st.sampled_from(b"\x00ab\xff"), min_size=1, max_size=5).map(bytes)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(piece, min_size=1, max_size=40, unique=True),
       text=st.lists(st.sampled_from(b"\x00ab\xff"), max_size=12).map(bytes), reverse=st.booleans())
def test_prefix_matches_finds_exactly_the_pieces(pieces, text, reverse):
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
