"""The model file: versioned, human-readable JSON that stores any bytes losslessly.

Layout (one piece per line, so a diff or ``grep`` of a model is readable)::

    {"format": "viterbisample-unigram", "version": 1,
     "special_tokens": ["<pad>", "<bos>", "<eos>"],
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
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO

from .checks import read_file
from .model import Model

FORMAT_NAME = "viterbisample-unigram"
FORMAT_VERSION = 1


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
        {"format": FORMAT_NAME, "version": FORMAT_VERSION, "special_tokens": list(model.special_tokens)},
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
        raise fail(f"'format' must be {FORMAT_NAME!r}, got {data.get('format')!r}")
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise fail(
            f"the file declares format version {version!r} but this release reads version "
            f"{FORMAT_VERSION}"
        )
    specials = data.get("special_tokens", [])
    if not isinstance(specials, list):
        raise fail("'special_tokens' must be a list of strings")
    entries = data.get("pieces")
    if not isinstance(entries, list):
        raise fail("'pieces' must be a list of [piece, score] pairs")
    pieces, scores = [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, list) or len(entry) != 2:
            raise fail(f"piece entry {i} must be a [piece, score] pair, got {entry!r}")
        piece, score = entry
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise fail(f"score of piece {i} must be a number, got {score!r}")
        if not math.isfinite(score):
            raise fail(f"score of piece {i} is {score!r}; scores must be finite")
        try:
            pieces.append(_piece_from_json(piece, i))
        except ValueError as exc:
            raise fail(str(exc)) from None
        scores.append(float(score))
    try:
        return Model(pieces, scores, specials)
    except (TypeError, ValueError) as exc:
        raise fail(str(exc)) from None


def load(path: str | os.PathLike) -> Model:
    """Read a model file."""
    path = Path(path)
    raw = read_file(path, "model file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a valid viterbisample model: not UTF-8 text ({exc})") from None
    return loads(text, str(path))


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it into place.

    A crash or an exception leaves ``path`` as it was (absent or the old file), never a
    truncated file that looks complete.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model or token file is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save(model: Model, path: str | os.PathLike) -> None:
    """Write a model file atomically."""
    data = dumps(model).encode("utf-8")
    atomic_write(path, lambda f: f.write(data))
