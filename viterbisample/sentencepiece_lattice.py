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
  with the import's ids and scores, and one byte that no UTF-8 text contains,
  ``MARK`` (0xFF), scored as the unknown node, with the id of the import's byte piece
  0xFF;
* ``mark_unknown``: the text with each character that has no piece (and each byte that
  starts no valid UTF-8 character) replaced by ``MARK``.  No piece contains it, so an
  unknown character is one edge of the unknown node's score, as in SentencePiece, and
  counts one token in every statistic;
* ``unmark``: after a pass, each marker token becomes the import's byte pieces of the
  character it replaced, as Viterbi spells that character, and ``SentencePieceTokenizer``
  maps those as it maps Viterbi's: one ``<unk>`` per run of unknown characters, or the
  model's byte pieces with ``byte_fallback``.

Not every byte is a piece here, so the linear-domain proof runs over characters
(``steps``; ``logmath.linear_domain_weights``).

The same lattice over characters rather than bytes (``CharacterLattice``) serves the
hot passes, Viterbi and sampling of batches and of one text: each character of the
text becomes one symbol (``character_items``), each piece the symbols of its characters,
and the trie is walked one step per character instead of one per byte (three per
character of CJK text).  Its edges, ids and scores are the byte lattice's, so the paths
and their probabilities are too; its lengths count characters, so the linear domain's
weights differ, and a sample keyed by (seed, epoch, index) is drawn over this form in
every entry point.  The questions that count bytes (entropy per byte, calibration,
n-best, sampling without replacement) keep the byte form.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from numba import njit

from .charsmap import character_length
from .kernel_cache import direct_call
from .model import KernelArrays, Model
from .trie import Trie, build_symbol_trie, build_trie, child

MARK = 0xFF  # an unknown character
UNKNOWN_SYMBOL = 1  # an unknown character in the character form (0 is the trie's padding)


class SentencePieceLattice:
    """The vocabulary of SentencePiece's lattice, in the import's numbering (see the
    module docstring): what ``engine.Engine`` and the lattice kernels read of a model.

    ``model``: the import's ``Model``; ``matched``: for each of its ids, whether
    SentencePiece matches that piece in text (NORMAL and USER_DEFINED pieces);
    ``unknown_score``: the score of SentencePiece's unknown node.
    """

    def __init__(self, model: Model, matched: np.ndarray, unknown_score: float) -> None:
        self.num_special = model.num_special
        self.mark_id = model.piece_id(bytes([MARK]))
        ids = np.flatnonzero(matched).tolist()
        pieces = [model.piece_bytes(i) for i in ids]
        single = {p for p in pieces if _one_character(p)}
        # An unknown character inside a longer piece (a user-defined symbol) cannot be
        # marked, or the piece would not match: it gets an unknown node of its own, an
        # id past the model's (``first_unknown_id``), spelled as the marker is.
        inside = sorted({c.encode() for p in pieces if len(p) > 1 for c in p.decode("utf-8", "ignore")} - single)
        self.first_unknown_id = len(model)
        unknown_ids = list(range(len(model), len(model) + len(inside)))
        # A character crosses as one of its one-character pieces, or as an unknown node.
        steps = [i for i, p in zip(ids, pieces) if p in single] + unknown_ids + [self.mark_id]
        self.steps = np.array(steps, np.int64)[:, None]  # (logmath.linear_domain_weights)
        keys, values = pieces + inside + [bytes([MARK])], ids + unknown_ids + [self.mark_id]
        self.trie: Trie = build_trie(keys, values)
        self.suffix_trie: Trie = build_trie(keys, values, reverse=True)
        scores = np.concatenate([model.scores, np.full(len(inside), unknown_score)])
        scores[self.mark_id] = unknown_score
        self.scores = scores
        self.lengths = np.concatenate([model.lengths, np.array([len(c) for c in inside], np.int32)])
        self.decode_table = model.decode_table + inside
        self._known_ascii = bytes(b for b in range(128) if bytes([b]) in single)
        # The import's byte piece of each byte: what a marked character is spelled with.
        self.byte_piece = np.array([model.piece_id(bytes([b])) for b in range(256)], np.int32)
        self.characters = CharacterLattice(keys[:-1], values[:-1], self.mark_id, scores, self.lengths, self.steps,
                                           self.num_special)

    @cached_property
    def kernel_arrays(self) -> KernelArrays:
        return KernelArrays(self.trie, self.suffix_trie, self.scores, self.lengths, self.num_special, self.steps)

    def mark(self, data: bytes) -> bytes:
        """``mark_unknown`` of one text's bytes (the same object when nothing is unknown):
        the per-call path, without Numba's dispatch, and without a kernel for ASCII text
        whose every character is a piece."""
        if data.isascii() and not data.translate(None, self._known_ascii):
            return data
        buf = np.frombuffer(data, np.uint8)
        out = np.empty(len(data), np.uint8)
        t = self.trie
        size, replaced = (_mark_one or _compiled_mark_one())(t.base, t.check, t.value, buf, 0, len(data), out, 0)
        return data if replaced == 0 else out[:size].tobytes()

    def mark_batch(self, texts: list[bytes], packed: tuple) -> list[bytes]:
        """``mark`` of each text, ``packed`` their ``text.pack``: one kernel call, and a
        new bytes object only for the texts that have an unknown character."""
        buf, starts, ends = packed
        out = np.empty_like(buf)
        out_ends = np.empty_like(ends)
        changed = np.zeros(len(starts), np.bool_)
        t = self.trie
        if not mark_items(t.base, t.check, t.value, buf, starts, ends, out, out_ends, changed):
            return texts
        out_starts = np.concatenate([[0], out_ends[:-1]]).tolist()
        return [out[a:b].tobytes() if c else d
                for d, a, b, c in zip(texts, out_starts, out_ends.tolist(), changed.tolist())]

    def mark_packed(self, packed: tuple) -> tuple:
        """``mark`` of packed texts (``text.pack``'s form): the same tuple when nothing is
        unknown, else the marked texts packed back to back."""
        buf, starts, ends = packed
        out = np.empty(max(1, len(buf)), np.uint8)
        out_ends = np.empty_like(ends)
        changed = np.zeros(len(starts), np.bool_)
        t = self.trie
        if not mark_items(t.base, t.check, t.value, buf, starts, ends, out, out_ends, changed):
            return packed
        out_starts = np.zeros_like(out_ends)
        out_starts[1:] = out_ends[:-1]
        return out, out_starts, out_ends

    def unmark(self, ids: np.ndarray, offsets: np.ndarray, packed: tuple, draws: int = 1
               ) -> tuple[np.ndarray, np.ndarray]:
        """``unmark``: ``ids``/``offsets`` the outputs of the marked texts, ``draws``
        consecutive outputs per text, ``packed`` the texts unmarked (``text.pack``)."""
        buf, starts, ends = packed
        return unmark(ids, offsets, self.lengths, buf, starts, ends, draws, self.mark_id, self.first_unknown_id,
                      self.byte_piece)


class CharacterLattice:
    """``SentencePieceLattice`` over characters (see the module docstring): what
    ``engine.Engine`` and the lattice kernels read, with symbols for positions.

    ``pieces``/``ids``: the byte lattice's keys but its marker, UTF-8; ``mark_id``: the
    id of the unknown node of a character no piece holds; ``scores``, ``byte_lengths``,
    ``steps``, ``num_special``: the byte lattice's arrays.  Each character of the pieces
    is a symbol from 2 up, in code point order; any other character, and any byte that
    starts no valid UTF-8 character, is ``UNKNOWN_SYMBOL``, whose one piece is the
    unknown node.  A piece that is not valid UTF-8 cannot match in the byte form either
    (the marker replaces such bytes) and is left out.

    One more symbol, ``word_break`` (the last), no text's character: its one piece,
    ``break_id`` (past every other id), is the only edge across it, so a text made of
    words joined by it has the lattice of the words side by side, and q_alpha over it is
    the product of the words' (``tokenizers`` segments each word alone).  It scores what
    the linear domain's rate gives a one-symbol piece, so no weight changes.
    """

    def __init__(self, pieces: list[bytes], ids: list[int], mark_id: int, scores: np.ndarray,
                 byte_lengths: np.ndarray, steps: np.ndarray, num_special: int) -> None:
        texts, kept = [], []
        for piece, i in zip(pieces, ids):
            try:
                texts.append(piece.decode("utf-8"))
            except UnicodeDecodeError:
                continue
            kept.append(i)
        characters = sorted({c for t in texts for c in t})
        symbol = {c: k + 2 for k, c in enumerate(characters)}
        self.alphabet = len(characters) + 3
        self.word_break = self.alphabet - 1
        # Indexed by code point; at least the 128 of ASCII, read without a bounds test.
        self.symbol_of = np.full(max(128, ord(characters[-1]) + 1 if characters else 0), UNKNOWN_SYMBOL, np.int32)
        for c, k in symbol.items():
            self.symbol_of[ord(c)] = k
        self.break_id = len(scores)
        sequences = [[symbol[c] for c in t] for t in texts] + [[UNKNOWN_SYMBOL], [self.word_break]]
        lengths = np.array([len(q) for q in sequences], np.int64)
        data = np.array([k for q in sequences for k in q], np.int32)
        self.suffix_trie: Trie = build_symbol_trie(data, lengths, np.array(kept + [mark_id, self.break_id]),
                                                   self.alphabet, reverse=True)
        # Pieces the lattice does not hold keep their byte lengths: they only enter the
        # linear domain's rate (logmath.linear_domain_weights), where any positive length serves.
        self.lengths = np.append(byte_lengths, 1).astype(np.int32)
        self.lengths[kept] = lengths[:-2]
        self.lengths[mark_id] = 1
        rate = float(np.max(scores[num_special:] / self.lengths[num_special:-1])) if len(scores) > num_special else 0.0
        self.scores = np.append(scores, rate)
        self.steps = np.concatenate([steps, np.full((1, steps.shape[1]), -1, steps.dtype)])
        self.steps[-1, 0] = self.break_id
        self.num_special = num_special

    def of_packed(self, packed: tuple) -> tuple:
        """The symbols of packed texts (``text.pack``'s form), packed the same way: an
        int32 buffer, starts and ends."""
        buf, starts, ends = packed
        out = np.empty(max(1, len(buf)), np.int32)
        out_ends = np.empty_like(ends)
        character_items(self.symbol_of, buf, starts, ends, out, out_ends)
        out_starts = np.zeros_like(out_ends)
        out_starts[1:] = out_ends[:-1]
        return out, out_starts, out_ends

    def of_words(self, packed: tuple, words_per_text: np.ndarray) -> tuple:
        """``of_packed`` of texts given as their words (``packed``: all words, in order;
        ``words_per_text``: how many belong to each text), the words of a text joined by
        ``word_break`` (``join_words``)."""
        symbols, starts, ends = self.of_packed(packed)
        size = int((ends - starts).sum()) + len(starts)
        out = np.empty(max(1, size), np.int32)
        out_ends = np.empty(len(words_per_text), np.int64)
        join_words(symbols, starts, ends, words_per_text, self.word_break, out, out_ends)
        out_starts = np.zeros_like(out_ends)
        out_starts[1:] = out_ends[:-1]
        return out, out_starts, out_ends

    def of(self, data: bytes) -> np.ndarray:
        """The symbols of one text's bytes, without Numba's dispatch (the per-call path)."""
        out = np.empty(max(1, len(data)), np.int32)
        ends = np.empty(1, np.int64)
        # The compiled call takes exactly these types: a read-only uint8 buffer, int64 bounds.
        buf = np.frombuffer(data if type(data) is bytes else bytes(data), np.uint8)
        (_characters_one or _compiled_characters_one())(self.symbol_of, buf, _ZERO, np.array([len(data)], np.int64),
                                                        out, ends)
        return out[: ends[0]]


_ZERO = np.zeros(1, np.int64)
_characters_one = None  # character_items, called without Numba's dispatch
_mark_one = None  # mark_unknown for one text's bytes, called without Numba's dispatch


def _compiled_characters_one():
    global _characters_one
    table, buf = np.ones(128, np.int32), np.frombuffer(b"a", np.uint8)
    _characters_one = direct_call(character_items, table, buf, _ZERO, _ZERO + 1, np.empty(1, np.int32),
                                  np.empty(1, np.int64))
    return _characters_one


def _compiled_mark_one():
    global _mark_one
    t = build_trie([b"a"], [0])
    buf = np.frombuffer(b"a", np.uint8)
    _mark_one = direct_call(mark_unknown, t.base, t.check, t.value, buf, 0, 1, np.empty(1, np.uint8), 0)
    return _mark_one


def _one_character(piece: bytes) -> bool:
    try:
        return len(piece.decode("utf-8")) == 1
    except UnicodeDecodeError:
        return False


@njit(cache=True, nogil=True)
def mark_items(base, check, value, buf, starts, ends, out, out_ends, changed):
    """``mark_unknown`` of each item ``buf[starts[t]:ends[t]]``, written back to back to
    ``out`` (item t ends at ``out_ends[t]``), ``changed[t]`` whether it has an unknown
    character; returns whether any has."""
    at = 0
    for t in range(starts.shape[0]):
        at, replaced = mark_unknown(base, check, value, buf, starts[t], ends[t], out, at)
        out_ends[t] = at
        changed[t] = replaced > 0
    return changed.any()


@njit(cache=True, nogil=True)
def mark_unknown(base, check, value, buf, lo, hi, out, at):
    """Write ``buf[lo:hi]`` to ``out[at:]`` with every character that is not a piece of
    the trie (``base``/``check``/``value``, walked forward from the root over its bytes),
    and every byte that starts no valid UTF-8 character, replaced by the one byte
    ``MARK``; returns (the end of what was written, how many were replaced)."""
    replaced = 0
    i = lo
    while i < hi:
        k = character_length(buf, i, hi)
        known = k > 0
        if not known:  # a byte that starts no character: one unknown, as SentencePiece reads it
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
                out[at] = buf[j]
                at += 1
        else:
            out[at] = MARK
            at += 1
            replaced += 1
        i += k
    return at, replaced


@njit(cache=True, nogil=True)
def character_items(symbol_of, buf, starts, ends, out, out_ends):
    """Each item ``buf[starts[t]:ends[t]]`` as symbols, one per character (``symbol_of``
    by code point, ``UNKNOWN_SYMBOL`` past its end) and one ``UNKNOWN_SYMBOL`` per byte
    that starts no valid UTF-8 character, as ``mark_unknown`` reads them, written back to
    back to ``out`` (item t ends at ``out_ends[t]``)."""
    at = 0
    for t in range(starts.shape[0]):
        i, hi = starts[t], ends[t]
        while i < hi:
            if buf[i] < 0x80:  # ASCII: the table has room for it (``CharacterLattice``)
                out[at] = symbol_of[buf[i]]
                i += 1
                at += 1
                continue
            k = character_length(buf, i, hi)
            if k == 0:
                out[at] = UNKNOWN_SYMBOL
                i += 1
            else:
                b = np.int64(buf[i])
                if k == 1:
                    code = b
                elif k == 2:
                    code = ((b & 0x1F) << 6) | (buf[i + 1] & 0x3F)
                elif k == 3:
                    code = ((b & 0x0F) << 12) | ((buf[i + 1] & 0x3F) << 6) | (buf[i + 2] & 0x3F)
                else:
                    code = ((b & 0x07) << 18) | ((buf[i + 1] & 0x3F) << 12) | ((buf[i + 2] & 0x3F) << 6) \
                        | (buf[i + 3] & 0x3F)
                out[at] = symbol_of[code] if code < symbol_of.shape[0] else UNKNOWN_SYMBOL
                i += k
            at += 1
        out_ends[t] = at


@njit(cache=True, nogil=True)
def join_words(symbols, starts, ends, words_per_text, word_break, out, out_ends):
    """The texts made of consecutive items (words) of ``symbols`` (``words_per_text[t]``
    of them for text t), each word after the first preceded by ``word_break``, back to
    back in ``out`` (text t ends at ``out_ends[t]``)."""
    at = 0
    w = 0
    for t in range(words_per_text.shape[0]):
        for k in range(words_per_text[t]):
            if k > 0:
                out[at] = word_break
                at += 1
            for i in range(starts[w], ends[w]):
                out[at] = symbols[i]
                at += 1
            w += 1
        out_ends[t] = at


@njit(cache=True, nogil=True)
def split_words(ids, offsets, words_per_text, break_id, out, out_offsets):
    """The paths through ``join_words``' texts cut back into one path per word: output t
    (``ids[offsets[t]:offsets[t + 1]]``) holds ``words_per_text[t]`` words separated by
    ``break_id``.  Writes the words' ids to ``out`` and their bounds to ``out_offsets``;
    returns how many ids."""
    at = 0
    row = 0
    out_offsets[0] = 0
    for t in range(offsets.shape[0] - 1):
        if words_per_text[t] == 0:
            continue
        for x in range(offsets[t], offsets[t + 1]):
            if ids[x] == break_id:
                row += 1
                out_offsets[row] = at
            else:
                out[at] = ids[x]
                at += 1
        row += 1
        out_offsets[row] = at
    return at


@njit(cache=True, nogil=True)
def unmark(ids, offsets, lengths, buf, starts, ends, draws, mark_id, first_unknown_id, byte_piece):
    """The outputs with each unknown node (a marker token, or an id from
    ``first_unknown_id`` on) replaced by the byte pieces (``byte_piece``) of the
    character it stands for: output r (``ids[offsets[r]:offsets[r + 1]]``) is a
    path through the marked text ``r // draws``, whose unmarked bytes are
    ``buf[starts[r // draws]:ends[r // draws]]``.  Returns (ids, offsets)."""
    n_out = offsets.shape[0] - 1
    size = 0
    for r in range(n_out):  # the room: a marker token becomes its character's bytes
        pos, end = starts[r // draws], ends[r // draws]
        for x in range(offsets[r], offsets[r + 1]):
            unknown = ids[x] == mark_id or ids[x] >= first_unknown_id
            k = max(1, character_length(buf, pos, end)) if unknown else lengths[ids[x]]
            size += k if unknown else 1
            pos += k
    out = np.empty(size, np.int32)
    new_offsets = np.empty(n_out + 1, np.int64)
    new_offsets[0] = 0
    at = 0
    for r in range(n_out):
        pos, end = starts[r // draws], ends[r // draws]
        for x in range(offsets[r], offsets[r + 1]):
            pid = ids[x]
            if pid == mark_id or pid >= first_unknown_id:
                k = max(1, character_length(buf, pos, end))
                for j in range(pos, pos + k):
                    out[at] = byte_piece[buf[j]]
                    at += 1
                pos += k
            else:
                out[at] = pid
                at += 1
                pos += lengths[pid]
        new_offsets[r + 1] = at
    return out, new_offsets


@njit(cache=True, nogil=True)
def sentencepiece_ids(ids, offsets, spm_of, lengths, mark_id, first_unknown_id, unk_id, byte_ids, buf, starts, ends,
                      draws, out, out_offsets):
    """SentencePiece's ids of paths through marked texts, as its encoder emits them:
    each piece its id (``spm_of``), and each unknown node (a marker, or an id from
    ``first_unknown_id`` on) the byte
    pieces of the character's bytes (``byte_ids``, -1 for none: a model without
    ``byte_fallback``) or ``unk_id``, once for a run of unknown characters.  Output r
    (``ids[offsets[r]:offsets[r + 1]]``) is a path through text ``r // draws``, whose
    unmarked bytes are ``buf[starts[r // draws]:ends[r // draws]]``; its ids go to
    ``out[out_offsets[r]:out_offsets[r + 1]]`` (``out``: room for the texts' bytes,
    ``draws`` times).  Returns the number of ids written."""
    at = 0
    out_offsets[0] = 0
    # Without byte pieces an unknown character's bytes are not read: no need to follow them.
    spelled = (byte_ids >= 0).any()
    for r in range(offsets.shape[0] - 1):
        pos, end = starts[r // draws], ends[r // draws]
        in_unknown_run = False
        for x in range(offsets[r], offsets[r + 1]):
            pid = ids[x]
            if pid != mark_id and pid < first_unknown_id:
                out[at] = spm_of[pid]
                at += 1
                pos += lengths[pid]
                in_unknown_run = False
                continue
            if not spelled:
                if not in_unknown_run:
                    out[at] = unk_id
                    at += 1
                    in_unknown_run = True
                continue
            k = max(1, character_length(buf, pos, end))
            for j in range(pos, pos + k):
                b = byte_ids[buf[j]]
                if b >= 0:
                    out[at] = b
                    at += 1
                    in_unknown_run = False
                elif not in_unknown_run:
                    out[at] = unk_id
                    at += 1
                    in_unknown_run = True
            pos += k
        out_offsets[r + 1] = at
    return at
