"""The model file: versioned, human-readable JSON that stores any bytes losslessly.

Layout (one piece per line, so a diff or ``grep`` of a model is readable)::

    {"format": "viterbisample-unigram", "version": 2,
     "special_tokens": ["<pad>", "<bos>", "<eos>"], "normalizer": {"kind": "identity"},
     "num_pieces": 31997,
     "pieces": [
      ["the", -5.25],
      [{"hex": "e3"}, -11.0],
      ...
     ]}

A piece that is valid UTF-8 is written as a JSON string; any other piece as
``{"hex": "..."}``.  Scores are written with ``repr`` so they read back bit for bit.
Ids follow from the order: special tokens first, then pieces.  Loading goes through the
validating ``Model`` constructor; a malformed file raises ``ValueError`` naming the file
and the problem.  Writing is atomic: a temporary file in the same folder, then a rename.

What a file must hold, besides well-formed pieces (checked on load):

* ``"version"``: exactly the JSON integer 2, or 1 for files written before the
  normalizer was recorded (not ``2.0``, not ``true``);
* ``"normalizer"`` (version 2, required): the stage texts pass before segmentation
  (``normalize.py``); a version 1 file has none and loads with ``identity``;
* ``"special_tokens"``: required, since every piece id depends on how many there are
  (an empty list is written as ``[]``);
* scores: numbers, natural-log probabilities, finite with ``|score| <= 1e4``
  (``model.MAX_ABS_SCORE``); JSON integers are fine within that range;
* ``"num_pieces"``: the number of entries in ``"pieces"``, so that a file that lost
  lines (an edit, a bad copy) is refused instead of loading with fewer ids.  Files
  written before the count existed lack it and still load (``save`` adds it); a file
  that has it must match it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from . import huggingface
from .atomic import atomic_write
from ..checks import read_file
from .. import normalize
from ..model import MAX_ABS_SCORE, Model

FORMAT_NAME = "viterbisample-unigram"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: no normalizer field (identity)


def _piece_to_json(piece: bytes) -> Any:
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": piece.hex()}


def _piece_from_json(obj: Any, i: int) -> bytes:
    if isinstance(obj, str):
        try:
            return obj.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"piece {i} is not valid Unicode text: {obj!r}") from None
    if isinstance(obj, dict) and set(obj) == {"hex"} and isinstance(obj["hex"], str):
        try:
            return bytes.fromhex(obj["hex"])
        except ValueError:
            raise ValueError(f"piece {i} has invalid hex {obj['hex']!r}") from None
    raise ValueError(f"piece {i} must be a string or {{\"hex\": ...}}, got {obj!r}")


def dumps(model: Model) -> str:
    """The model file's text."""
    head = json.dumps(
        {"format": FORMAT_NAME, "version": FORMAT_VERSION, "special_tokens": list(model.special_tokens),
         "normalizer": model.normalizer.to_json(), "num_pieces": len(model.pieces)},
        ensure_ascii=False,
    )
    lines = [
        json.dumps([_piece_to_json(p), float(s)], ensure_ascii=False)
        for p, s in zip(model.pieces, model.piece_scores.tolist())
    ]
    return head[:-1] + ',\n "pieces": [\n  ' + ",\n  ".join(lines) + "\n ]}\n"


def loads(text: str, source: str = "<string>") -> Model:
    """Parse and validate a model file's text; ``source`` names it in errors."""
    def fail(msg: str) -> ValueError:
        return ValueError(f"{source}: not a valid viterbisample model: {msg}")

    def no_constants(name: str) -> float:
        raise fail(f"non-finite number {name} in the file")

    try:
        data = json.loads(text, parse_constant=no_constants)
    except ValueError as exc:
        if str(exc).startswith(source):
            raise
        raise fail(f"invalid JSON ({exc})") from None
    except RecursionError:
        raise fail("JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise fail(f"the top level must be an object, got {type(data).__name__}")
    if data.get("format") != FORMAT_NAME:
        raise fail(f"'format' must be {FORMAT_NAME!r}, got {_json_text(data.get('format'))}")
    version = data.get("version")
    # type(...) is int: JSON true and 1.0 are == 1 in Python, but not the version.
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise fail(
            f"the file declares format version {_json_text(version)} but this release reads "
            f"versions {' and '.join(map(str, READABLE_VERSIONS))}"
        )
    if version >= 2 and "normalizer" not in data:
        raise fail("the 'normalizer' field is missing (version 2 files record it)")
    try:
        normalizer = normalize.from_json(data["normalizer"]) if version >= 2 else normalize.IDENTITY
    except ValueError as exc:
        raise fail(str(exc)) from None
    if "special_tokens" not in data:
        raise fail("the 'special_tokens' field is missing (the piece ids depend on it; "
                   "write [] for none)")
    specials = data["special_tokens"]
    if not isinstance(specials, list):
        raise fail("'special_tokens' must be a list of strings")
    entries = data.get("pieces")
    if not isinstance(entries, list):
        raise fail("'pieces' must be a list of [piece, score] pairs")
    count = data.get("num_pieces", None)  # absent from files written before it existed
    if "num_pieces" in data and (type(count) is not int or count < 0):
        raise fail(f"'num_pieces' must be a count of pieces, got {_json_text(count)}")
    pieces, scores = [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, list) or len(entry) != 2:
            raise fail(f"piece entry {i} must be a [piece, score] pair, got {_json_text(entry)}")
        piece, score = entry
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise fail(f"score of piece {i} must be a number, got {_json_text(score)}")
        # Compared as given: a JSON integer too large for a float is refused, not converted.
        if not (isinstance(score, int) or math.isfinite(score)) or abs(score) > MAX_ABS_SCORE:
            raise fail(
                f"score of piece {i} is {_json_text(score)}; scores are natural-log "
                f"probabilities and must be finite with |score| <= {MAX_ABS_SCORE:g}"
            )
        try:
            pieces.append(_piece_from_json(piece, i))
        except ValueError as exc:
            raise fail(str(exc)) from None
        scores.append(float(score))
    try:
        model = Model(pieces, scores, specials, normalizer)
    except (TypeError, ValueError) as exc:
        raise fail(str(exc)) from None
    if count is not None and count != len(entries):
        raise fail(
            f"the header says {count} pieces but the file has {len(entries)}; "
            "it was cut or edited"
        )
    return model


def _json_text(value: Any, limit: int = 40) -> str:
    """A value read from JSON, as JSON (``true``, ``1.0``), cut short for an error message
    (a JSON integer can have 4000 digits)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except ValueError:
        text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def load(path: str | os.PathLike) -> Model:
    """Read a model file, or a Hugging Face ``tokenizer.json`` of a byte-level Unigram
    model (``io.huggingface``: its own export, say)."""
    path = Path(path)
    raw = read_file(path, "model file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a valid viterbisample model: not UTF-8 text ({exc})") from None
    if huggingface.is_tokenizer_json(text):
        return huggingface.load_huggingface(path)
    return loads(text, str(path))


def save(model: Model, path: str | os.PathLike) -> None:
    """Write a model file atomically."""
    data = dumps(model).encode("utf-8")
    atomic_write(path, lambda f: f.write(data))
