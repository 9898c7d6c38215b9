"""BytePiece model files (github.com/bojone/bytepiece, version 0.6.3): read and check.

A BytePiece model is a JSON object written by its ``Trainer.save``: one entry per piece,

    {"<base64 of the piece's bytes>": [id, "<the piece as text, for people>", count], ...}

sorted by (length, bytes), ids 3, 4, ... (0, 1 and 2 are ``<pad>``, ``<bos>``,
``<eos>``, never in the file).  BytePiece's ``Tokenizer`` reads only the key, the first
element (the id) and the last (the count); a piece's score is ``log(count) - log(total)``,
``total`` the sum of all counts, computed with NumPy as it does (so the floats, and the
Viterbi ties they decide, are the same).  Its trainer always adds the 256 single bytes
(``Trainer.prune_pieces``), and so does ``convert_to_bytepiece``.

What this module refuses, with a ``ValueError`` that names the problem (BytePiece itself
would load some of these and then misbehave, e.g. loop forever on an id it cannot map):

* a file that is not a JSON object of ``base64 -> [id, ..., count]`` entries;
* a key that is not strict base64 or decodes to nothing, or two keys that decode to the
  same bytes;
* ids that are not exactly 3, 4, ..., N + 2 (each once), counts that are not positive
  finite numbers;
* a piece over ``model.MAX_PIECE_BYTES`` (64) bytes;
* a piece holding a line feed followed by another byte than a line feed.  BytePiece
  tokenizes each line (``normalize``: the text after NFC, cut after every run of
  ``\\n``) on its own, so such a piece can never be produced, while a lattice over the
  whole text would use it.  Its trainer never makes one.

The tokenizer over these pieces is ``bytepiece_tokenizer.BytePieceTokenizer``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from typing import Any, NamedTuple

import numpy as np

from ..checks import read_file
from ..model import MAX_PIECE_BYTES

# BytePiece's ids 0..2, by the names its Tokenizer gives them.
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")

# The start of a BytePiece file: "{", a strict base64 key (padded to a multiple of 4, as
# b64encode writes it), then a list whose first element is an integer id.  A Hugging
# Face tokenizer.json starts {"version": "1.0" (a string value), our model files with
# {"format": ... (not base64 of 4k characters followed by a list of an int), and a
# SentencePiece .model is a binary proto (it starts with a field tag, not "{").
_HEAD = re.compile(
    rb'\A\s*\{\s*"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})"'
    rb"\s*:\s*\[\s*-?[0-9]"
)


def looks_like_bytepiece(data: bytes) -> bool:
    """Whether ``data`` (the first bytes of a file: 256 are plenty) starts like a
    BytePiece model file.  Cheap: a regular expression on its start, no parsing."""
    return _HEAD.match(bytes(data[:4096])) is not None


class BytePieceModelFile(NamedTuple):
    """The pieces of a BytePiece file in id order (piece k has id k + 3), their counts
    as the file gives them (int or float), and the file's name for messages."""

    pieces: tuple[bytes, ...]
    counts: tuple[int | float, ...]
    source: str


def parse_bytepiece(obj: Any, source: str = "<bytepiece model>") -> BytePieceModelFile:
    """The pieces and counts of a parsed BytePiece JSON object; ``ValueError`` naming
    ``source`` and the entry for anything BytePiece would not read the same way."""
    def fail(msg: str) -> ValueError:
        return ValueError(f"{source}: not a usable BytePiece model: {msg}")

    if not isinstance(obj, dict):
        raise fail(f"the JSON value is a {type(obj).__name__}, not an object of pieces")
    if not obj:
        raise fail("it has no pieces")
    by_id: dict[int, tuple[bytes, int | float]] = {}
    seen: dict[bytes, str] = {}
    for key, entry in obj.items():
        try:
            piece = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise fail(f"key {key!r:.40} is not base64 (BytePiece keys are base64 of the piece's bytes)") from None
        if not piece:
            raise fail(f"key {key!r} decodes to an empty piece")
        if piece in seen:
            raise fail(f"keys {seen[piece]!r} and {key!r} are the same piece {piece!r:.40}")
        seen[piece] = key
        if len(piece) > MAX_PIECE_BYTES:
            raise fail(f"piece {piece!r:.40}... is {len(piece)} bytes long; the limit is {MAX_PIECE_BYTES} bytes")
        if re.search(rb"\n[^\n]", piece):
            raise fail(
                f"piece {piece!r:.40} holds a line feed followed by another character; BytePiece cuts texts "
                "after line feeds, so it never uses it, and it cannot be loaded exactly"
            )
        if not isinstance(entry, list) or len(entry) < 2:
            raise fail(f"the entry of {key!r} is {entry!r:.60}, not a list [id, text, count]")
        pid, count = entry[0], entry[-1]
        if type(pid) is not int:
            raise fail(f"the id of {key!r} is {pid!r:.40}, not an integer")
        if isinstance(count, bool) or not isinstance(count, (int, float)) or not (0 < count < math.inf):
            raise fail(f"the count of {key!r} is {count!r:.40}, not a positive finite number")
        if pid in by_id:
            raise fail(f"id {pid} is given to two pieces ({by_id[pid][0]!r:.30} and {piece!r:.30})")
        by_id[pid] = (piece, count)
    n = len(by_id)
    if min(by_id) != 3 or max(by_id) != n + 2:
        raise fail(f"the {n} ids run from {min(by_id)} to {max(by_id)}; BytePiece numbers its pieces 3..{n + 2}")
    entries = [by_id[i] for i in range(3, n + 3)]
    return BytePieceModelFile(tuple(p for p, _ in entries), tuple(c for _, c in entries), source)


def bytepiece_scores(spec: BytePieceModelFile, file_order: list[int | float] | None = None) -> np.ndarray:
    """Each piece's log-probability as BytePiece computes it: ``np.log(count) -
    np.log(sum of counts)``.  ``file_order``: the counts in the file's order, which is
    the order BytePiece sums them in (it matters only for float counts)."""
    total = sum(spec.counts if file_order is None else file_order)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        try:
            log_total = np.log(total)
            scores = np.array([np.log(c) - log_total for c in spec.counts], np.float64)
        except (FloatingPointError, OverflowError, TypeError, AttributeError):
            raise ValueError(f"{spec.source}: the counts (total {total!r:.30}) have no finite logarithm") from None
    return scores


def read_bytepiece(path: str | os.PathLike) -> tuple[BytePieceModelFile, np.ndarray]:
    """Read and check a BytePiece model file: its pieces (id order) and their scores."""
    data = read_file(path, "BytePiece model file")
    return bytepiece_from_bytes(data, str(path))


def bytepiece_from_bytes(data: bytes, source: str = "<bytepiece model>") -> tuple[BytePieceModelFile, np.ndarray]:
    """``read_bytepiece`` of a file's contents."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{source}: not a BytePiece model (not UTF-8 JSON: {exc})") from None
    spec = parse_bytepiece(obj, source)
    return spec, bytepiece_scores(spec, [e[-1] for e in obj.values()])


def load_bytepiece(path: str | os.PathLike):
    """A ``BytePieceTokenizer`` with BytePiece's ids, Viterbi and decoding (see
    ``bytepiece_tokenizer``)."""
    from ..bytepiece_tokenizer import BytePieceTokenizer

    return BytePieceTokenizer.from_file(path)
