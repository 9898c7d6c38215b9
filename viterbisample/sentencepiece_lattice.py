"""SentencePiece's lattice, for sampling and the other questions of q_alpha asked of a
SentencePiece model (``SentencePieceTokenizer``).

SentencePiece builds the lattice of a normalized text from its pieces, plus one unknown
node, scored min score - 10, for each character that has no piece of its own; a
character that has one is never spelled any other way.  The import's model
(``io.sentencepiece``) has every byte as a piece, so that Viterbi runs on any bytes: its
byte paths cost at least the unknown node's score and never win a Viterbi path, but they
would carry mass under q_alpha.  So the lattice passes run on another vocabulary over
another text, built so that the lattice is SentencePiece's, edge for edge:

* ``SentencePieceLattice``: the pieces SentencePiece matches (NORMAL and USER_DEFINED)
  with the import's ids and scores, and two marker bytes that no UTF-8 text contains,
  ``MARK_LEAD`` (0xFF) scored as the unknown node and ``MARK_REST`` (0xFE) scored 0, with
  the ids of the import's byte pieces 0xFF and 0xFE;
* ``mark_unknown``: the text with each character that has no piece (and each byte that
  starts no valid UTF-8 character) replaced, byte for byte, by 0xFF then 0xFE.  No piece
  contains a marker, so a marked character has one path, of the unknown node's score,
  and positions, lengths and token counts stay those of the text;
* ``unmark``: after a pass, each marker token becomes the import's byte piece of the
  byte it replaced, and ``SentencePieceTokenizer`` maps those as it maps Viterbi's: one
  ``<unk>`` per run of unknown characters, or the model's byte pieces with
  ``byte_fallback``.

Not every byte is a piece here, so the linear-domain proof runs over characters
(``steps``; ``logmath.linear_domain_weights``).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from numba import njit

from .charsmap import character_length
from .model import KernelArrays, Model
from .trie import Trie, build_trie, child

MARK_LEAD = 0xFF  # the first byte of an unknown character
MARK_REST = 0xFE  # its other bytes


class SentencePieceLattice:
    """The vocabulary of SentencePiece's lattice, in the import's numbering (see the
    module docstring): what ``engine.Engine`` and the lattice kernels read of a model.

    ``model``: the import's ``Model``; ``matched``: for each of its ids, whether
    SentencePiece matches that piece in text (NORMAL and USER_DEFINED pieces);
    ``unknown_score``: the score of SentencePiece's unknown node.
    """

    def __init__(self, model: Model, matched: np.ndarray, unknown_score: float) -> None:
        s = model.num_special
        self.num_special = s
        self.lead_id = model.piece_id(bytes([MARK_LEAD]))
        self.rest_id = model.piece_id(bytes([MARK_REST]))
        ids = np.flatnonzero(matched)
        pieces = [model.piece_bytes(i) for i in ids.tolist()] + [bytes([MARK_LEAD]), bytes([MARK_REST])]
        ids = ids.tolist() + [self.lead_id, self.rest_id]
        self.trie: Trie = build_trie(pieces, ids)
        self.suffix_trie: Trie = build_trie(pieces, ids, reverse=True)
        scores = model.scores.copy()
        scores[self.lead_id] = unknown_score
        scores[self.rest_id] = 0.0
        self.scores = scores
        self.lengths = model.lengths
        self.decode_table = model.decode_table
        # The import's byte piece of each byte: what a marker token stood for.
        self.byte_piece = np.array([model.piece_id(bytes([b])) for b in range(256)], np.int32)
        # A character crosses as one of its one-character pieces, or as the markers of
        # up to four bytes.
        single = [i for i, p in zip(ids[:-2], pieces[:-2]) if _one_character(p)]
        steps = np.full((len(single) + 1, 4), -1, np.int64)
        steps[:-1, 0] = single
        steps[-1] = [self.lead_id, self.rest_id, self.rest_id, self.rest_id]
        self.steps = steps

    @cached_property
    def kernel_arrays(self) -> KernelArrays:
        return KernelArrays(self.trie, self.suffix_trie, self.scores, self.lengths, self.num_special, self.steps)

    def mark(self, data: bytes) -> bytes:
        """``mark_unknown`` of one text's bytes (the same object when nothing is unknown)."""
        if not data:
            return data
        buf = np.frombuffer(data, np.uint8)
        out = np.empty_like(buf)
        t = self.trie
        if mark_unknown(t.base, t.check, t.value, buf, 0, len(data), out) == 0:
            return data
        return out.tobytes()

    def mark_batch(self, texts: list[bytes], packed: tuple) -> list[bytes]:
        """``mark`` of each text, ``packed`` their ``text.pack``: one kernel call, and a
        new bytes object only for the texts that have an unknown character."""
        buf, starts, ends = packed
        if not len(buf):
            return texts
        out = np.empty_like(buf)
        changed = np.zeros(len(starts), np.bool_)
        t = self.trie
        if not mark_items(t.base, t.check, t.value, buf, starts, ends, out, changed):
            return texts
        return [out[a:b].tobytes() if c else d for d, a, b, c in zip(texts, starts.tolist(), ends.tolist(),
                                                                       changed.tolist())]

    def unmark(self, ids: np.ndarray, offsets: np.ndarray, buf: np.ndarray, starts: np.ndarray,
               draws: int = 1) -> np.ndarray:
        """``unmark`` in place: ``ids``/``offsets`` the outputs of the texts
        ``buf[starts[t]:]`` (unmarked), ``draws`` consecutive outputs per text."""
        unmark(ids, offsets, self.lengths, buf, starts, draws, self.lead_id, self.rest_id, self.byte_piece)
        return ids


def _one_character(piece: bytes) -> bool:
    try:
        return len(piece.decode("utf-8")) == 1
    except UnicodeDecodeError:
        return False


@njit(cache=True, nogil=True)
def mark_items(base, check, value, buf, starts, ends, out, changed):
    """``mark_unknown`` of each item ``buf[starts[t]:ends[t]]`` into the same place of
    ``out``, ``changed[t]`` whether it has an unknown character; returns whether any has."""
    for t in range(starts.shape[0]):
        changed[t] = mark_unknown(base, check, value, buf, starts[t], ends[t], out) > 0
    return changed.any()


@njit(cache=True, nogil=True)
def mark_unknown(base, check, value, buf, lo, hi, out):
    """Copy ``buf[lo:hi]`` to ``out[lo:hi]`` with every character that is not a piece of
    the trie (``base``/``check``/``value``, walked forward from the root over its bytes),
    and every byte that starts no valid UTF-8 character, replaced by ``MARK_LEAD``
    followed by ``MARK_REST`` for its other bytes; returns how many were replaced."""
    n = hi
    replaced = 0
    i = lo
    while i < n:
        k = character_length(buf, i, n)
        known = k > 0
        if not known:
            k = 1
        else:
            state = 0
            for j in range(i, i + k):
                state = child(base, check, state, buf[j])
                if state < 0:
                    break
            known = state > 0 and value[state] >= 0
        if known:
            for j in range(i, i + k):
                out[j] = buf[j]
        else:
            out[i] = MARK_LEAD
            for j in range(i + 1, i + k):
                out[j] = MARK_REST
            replaced += 1
        i += k
    return replaced


@njit(cache=True, nogil=True)
def unmark(ids, offsets, lengths, buf, starts, draws, lead_id, rest_id, byte_piece):
    """Each marker token of output r (``ids[offsets[r]:offsets[r + 1]]``, a path through
    the marked text ``r // draws``, which starts at ``buf[starts[r // draws]]`` unmarked)
    becomes ``byte_piece`` of the byte it replaced."""
    for r in range(offsets.shape[0] - 1):
        pos = starts[r // draws]
        for x in range(offsets[r], offsets[r + 1]):
            pid = ids[x]
            if pid == lead_id or pid == rest_id:
                ids[x] = byte_piece[buf[pos]]
            pos += lengths[pid]
