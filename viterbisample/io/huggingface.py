"""Hugging Face ``tokenizer.json`` for byte-level Unigram models: export, and import back.

A viterbisample model segments bytes; Hugging Face's ``tokenizers`` segments a string.
GPT-2's byte-level alphabet bridges the two: each of the 256 bytes is one printable
character (the bytes of ``!`` to ``~``, of ``¡`` to ``¬`` and of ``®`` to ``ÿ`` stand
for themselves, the other 68 for U+0100 upwards), the ``ByteLevel`` pre-tokenizer (with
``use_regex: false``, so the text stays one piece) turns a text's UTF-8 bytes into those
characters, and each piece is written in the same alphabet.  Then ``models.Unigram``
searches the same lattice with the same scores, and its Viterbi tie rule is ours (a
node keeps the first best path it is offered, so among equal scores the longest last
piece wins), so the ids are the same.

What is exact, and where the two differ:

* Scores are written with at most 15 significant digits (``HF_DIGITS``): a decimal of
  15 digits is read back as the same float by any correct parser, ``serde_json``'s fast
  path included.  A tokenizer loaded from the exported file has exactly those scores, so
  it and ``tokenizers`` give the same ids on every text.  The model the file was written
  from differs from it by at most one part in 10**15 per score, which changes a
  segmentation only where two paths tie to within that (no line of the test corpora).
* Special tokens are ``added_tokens`` with ``"special": true`` (so that
  ``transformers.PreTrainedTokenizerFast`` finds them), and Unigram vocabulary entries
  with the score ``SPECIAL_SCORE``, which no segmentation ever chooses.  ``tokenizers``
  matches added tokens in the raw text: a text containing a special token's name (a
  literal ``"<eos>"``) gets the special id there, and the name's pieces here.  Setting
  ``tokenizer.encode_special_tokens = True`` (``tokenizers``) or passing
  ``split_special_tokens=True`` (``transformers``) makes them agree on every text.
* ``tokenizers`` takes ``str`` only, so text that is not valid UTF-8 cannot be given
  to it; on every valid text the ids agree.
* Its samplers (``dropout``, ``alpha`` with ``nbest``) are not exact samplers of
  q_alpha: sample with viterbisample.

Import reads files of this form (ours, or any ``Unigram`` model with a byte-level
alphabet, no normalizer and special tokens first); any other component (a normalizer, a
``Metaspace`` pre-tokenizer, an ``unk_id``, ``byte_fallback``) is refused with an error
that names it, never approximated.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..checks import read_file
from ..model import Model
from .atomic import atomic_write

# At most this many significant digits: what every float parser reads back exactly.
HF_DIGITS = 15
# The Unigram score of a special token's vocabulary entry: below any path of any text
# (a byte scores at least -1e4, and a path has at most one piece per byte).
SPECIAL_SCORE = -1e12


def byte_alphabet() -> list[str]:
    """GPT-2's byte-level alphabet: the character that stands for each byte 0..255."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


BYTE_CHARS = byte_alphabet()
CHAR_BYTES = {c: b for b, c in enumerate(BYTE_CHARS)}


def hf_score(score: float) -> float:
    """``score`` rounded to ``HF_DIGITS`` significant digits (``json`` writes its repr)."""
    return float(f"{score:.{HF_DIGITS}g}")


def to_tokenizer_json(model: Model) -> dict[str, Any]:
    """The ``tokenizer.json`` object of ``model`` (see the module docstring)."""
    if not model.normalizer.is_identity:
        raise ValueError(
            f"cannot export a model with the {model.normalizer.kind!r} normalizer to Hugging Face "
            "yet: only byte-level models without a normalizer are exported"
        )
    specials = model.special_tokens
    vocab = [[name, SPECIAL_SCORE] for name in specials]
    vocab += [["".join(BYTE_CHARS[b] for b in piece), hf_score(s)]
              for piece, s in zip(model.pieces, model.piece_scores.tolist())]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": name, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, name in enumerate(specials)
        ],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {"type": "Unigram", "unk_id": None, "vocab": vocab, "byte_fallback": False},
    }


def save_huggingface(model: Model, path: str | os.PathLike) -> None:
    """Write ``model`` as a Hugging Face ``tokenizer.json`` (atomically)."""
    data = json.dumps(to_tokenizer_json(model), ensure_ascii=False, indent=1).encode("utf-8")
    atomic_write(path, lambda out: out.write(data))


def from_tokenizer_json(obj: Any, source: str = "<tokenizer.json>") -> Model:
    """The model of a byte-level Unigram ``tokenizer.json`` object; ``ValueError`` naming
    ``source`` and the component for anything else."""
    def fail(msg: str) -> ValueError:
        return ValueError(f"{source}: cannot load this Hugging Face tokenizer: {msg}")

    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        raise fail("it has no 'model' object (is it a tokenizer.json?)")
    model = obj["model"]
    if model.get("type") != "Unigram":
        raise fail(f"its model is {model.get('type')!r}; only Unigram models are Viterbi models")
    for key, allowed in (("normalizer", None), ("post_processor", None)):
        if obj.get(key) is not allowed:
            kind = obj[key].get("type") if isinstance(obj[key], dict) else obj[key]
            raise fail(f"its {key} ({kind!r}) is not supported; only byte-level models without one load")
    pre = obj.get("pre_tokenizer")
    if not (isinstance(pre, dict) and pre.get("type") == "ByteLevel" and pre.get("use_regex") is False
            and not pre.get("add_prefix_space")):
        kind = pre.get("type") if isinstance(pre, dict) else pre
        raise fail(f"its pre_tokenizer ({kind!r}) is not ByteLevel without regex and prefix space")
    if model.get("unk_id") is not None or model.get("byte_fallback"):
        raise fail("its model has an unk_id or byte_fallback; byte-level models need neither")
    vocab = model.get("vocab")
    if not isinstance(vocab, list) or not all(
        isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and isinstance(e[1], (int, float))
        and not isinstance(e[1], bool) for e in vocab
    ):
        raise fail("'vocab' must be a list of [piece, score] pairs")
    added = obj.get("added_tokens") or []
    specials = []
    for entry in added:
        if not isinstance(entry, dict) or not entry.get("special"):
            raise fail(f"added token {entry!r:.60} is not a special token; only special tokens are supported")
        if entry.get("id") != len(specials) or entry.get("content") != (vocab[len(specials)][0] if len(vocab) > len(specials) else None):
            raise fail("special tokens must come first, with ids 0, 1, ... and their names in the vocabulary")
        specials.append(entry["content"])
    pieces, scores = [], []
    for k, (text, score) in enumerate(vocab[len(specials):], start=len(specials)):
        try:
            pieces.append(bytes(CHAR_BYTES[c] for c in text))
        except KeyError:
            raise fail(f"vocabulary entry {k} ({text!r:.40}) has characters outside the byte-level alphabet") from None
        scores.append(float(score))
    try:
        return Model(pieces, scores, specials)
    except (TypeError, ValueError) as exc:
        raise fail(str(exc)) from None


def load_huggingface(path: str | os.PathLike) -> Model:
    """Read a byte-level Unigram ``tokenizer.json`` (see ``from_tokenizer_json``)."""
    data = read_file(path, "Hugging Face tokenizer file")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a tokenizer.json: {exc}") from None
    return from_tokenizer_json(obj, str(path))


def is_tokenizer_json(text: str) -> bool:
    """Whether a JSON text looks like a Hugging Face tokenizer (a top-level "model")
    rather than a viterbisample model file (a top-level "format")."""
    head = text[:4096]
    return '"model"' in head and '"format"' not in head
