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
``Metaspace`` pre-tokenizer, ``byte_fallback``) is refused with an error that names it,
never approximated.

SentencePiece Unigram models have a second form, the one transformers' converters write
(``Precompiled``, ``Metaspace``, an ``unk_id``): ``Tokenizer.load`` sends those
(``is_sentencepiece_tokenizer_json``) to ``huggingface_tokenizer``, which gives
``tokenizers``' own ids, and ``save_sentencepiece_huggingface`` writes a
``SentencePieceTokenizer`` in that form.
"""

from __future__ import annotations

import base64
import json
import os
import re
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
    pre = obj.get("pre_tokenizer")
    if model.get("unk_id") is None and not (isinstance(pre, dict) and pre.get("type") == "ByteLevel"):
        kind = pre.get("type") if isinstance(pre, dict) else pre
        raise fail(f"a Unigram model with the pre_tokenizer {kind!r} is read as a SentencePiece conversion, which "
                   "needs an unk_id (without one, tokenizers fails on some texts depending on its search "
                   "order, which is not reproduced)")
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
    head = text[:4096]  # a model file names its format first; tokenizers writes "model" last
    return '"format"' not in head and '"model"' in text


# -- SentencePiece Unigram models ---------------------------------------------------------
# transformers' SpmConverter.build_tokenizer_from_spm_proto (legacy=True) writes these; the
# comments say where the result and SentencePiece still differ (tests measure it).
def _regex_escape(text: str) -> str:
    """``text`` as a literal for Oniguruma: punctuation escaped, as ``re.escape`` does."""
    return re.escape(text)


def to_sentencepiece_tokenizer_json(tok: Any) -> dict[str, Any]:
    """The ``tokenizer.json`` object that Hugging Face's SentencePiece conversion writes for
    the model of ``tok`` (a ``SentencePieceTokenizer``): ``Unigram`` with the pieces and
    their (float32) scores in SentencePiece's order, so the ids are SentencePiece's;
    ``Precompiled`` with the model's character map, the whitespace rules as ``Replace``
    normalizers, ``Metaspace`` (``always``, no split) for the dummy prefix, user-defined
    pieces isolated by a ``Split``; control and unknown pieces as special added tokens (so
    ``transformers.PreTrainedTokenizerFast`` finds them); SentencePiece's decoding as
    decoders.

    ``ValueError`` for what this form cannot express: ``treat_whitespace_as_suffix``,
    ``escape_whitespaces`` off, pieces that are not UTF-8, a model without an unknown piece.

    Where ``tokenizers`` then differs from SentencePiece (see
    ``huggingface_tokenizer``): ``Precompiled`` works on grapheme clusters (shortest rule
    per cluster: half-width katakana with sound marks, for one, come out decomposed);
    control, unknown and byte pieces are matched literally in the text (``"<0x41>"``,
    ``"<unk>"``, and special-token names, which are cut out as added tokens); user-defined
    pieces are isolated after normalization, not protected from it; Viterbi runs in
    float64 over float32 scores (SentencePiece adds in float32), which can split a near tie
    differently.
    """
    from ..huggingface_tokenizer import HuggingFaceUnigramTokenizer
    from .sentencepiece import CONTROL, UNKNOWN, USER_DEFINED

    if isinstance(tok, HuggingFaceUnigramTokenizer):
        return json.loads(tok._plan.text)
    spec = tok.spec
    if spec.treat_whitespace_as_suffix:
        raise ValueError("cannot export to Hugging Face: treat_whitespace_as_suffix has no tokenizer.json form "
                         "(Metaspace only prepends)")
    if not spec.escape_whitespaces:
        raise ValueError("cannot export to Hugging Face: escape_whitespaces is off, and Metaspace always "
                         "writes spaces as '▁'")
    vocab, added, user = [], [], []
    unk_id = None
    for i, e in enumerate(spec.pieces):
        try:
            piece = e.piece.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"cannot export to Hugging Face: piece {i} ({e.piece!r:.40}) is not UTF-8") from None
        vocab.append([piece, float(e.score)])  # the float32 value, written exactly
        if e.type == UNKNOWN and unk_id is None:
            unk_id = i
        if e.type in (CONTROL, UNKNOWN):
            added.append({"id": i, "content": piece, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True})
        elif e.type == USER_DEFINED:
            user.append(piece)
    if unk_id is None:
        raise ValueError("cannot export to Hugging Face: the model has no unknown piece, which Unigram needs")

    def replace(pattern: dict, content: str) -> dict:
        return {"type": "Replace", "pattern": pattern, "content": content}

    normalizers: list[dict] = []
    if spec.precompiled_charsmap:
        normalizers.append({"type": "Precompiled", "precompiled_charsmap":
                            base64.b64encode(spec.precompiled_charsmap).decode("ascii")})
    if spec.remove_extra_whitespaces:  # only U+0020 counts, as in SentencePiece
        normalizers += [replace({"Regex": r"\A +| +\z"}, ""), replace({"Regex": " {2,}"}, " ")]
    normalizers.append(replace({"String": " "}, "\u2581"))
    if spec.remove_extra_whitespaces:
        # Not in transformers' converter: SentencePiece also strips a '▁' of the text at
        # the end (it looks for '▁' after escaping), and this gives its ids there.
        normalizers.append(replace({"Regex": "\u2581+\\z"}, ""))
    if spec.add_dummy_prefix:  # Metaspace skips the prefix before a '▁'; SentencePiece does not
        normalizers.append(replace({"Regex": "\\A\u2581"}, "\u2581\u2581"))
    pre: list[dict] = []
    if spec.add_dummy_prefix:
        pre.append({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False})
    if user:
        pattern = "|".join(_regex_escape(p) for p in sorted(user, key=len, reverse=True))
        pre.append({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False})
    decoders: list[dict] = [replace({"String": "\u2581"}, " ")]
    if spec.byte_fallback:
        decoders.append({"type": "ByteFallback"})
    if spec.add_dummy_prefix:
        decoders += [{"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]
    elif spec.byte_fallback:
        decoders.append({"type": "Fuse"})
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": pre} if pre else None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "Unigram", "unk_id": unk_id, "vocab": vocab, "byte_fallback": bool(spec.byte_fallback)},
    }


def save_sentencepiece_huggingface(tok: Any, path: str | os.PathLike) -> None:
    """Write ``tok`` (a ``SentencePieceTokenizer``) as the ``tokenizer.json`` Hugging Face's
    SentencePiece conversion writes (``to_sentencepiece_tokenizer_json``), atomically."""
    data = json.dumps(to_sentencepiece_tokenizer_json(tok), ensure_ascii=False, indent=1).encode("utf-8")
    atomic_write(path, lambda out: out.write(data))


def is_sentencepiece_tokenizer_json(text: str) -> bool:
    """Whether a ``tokenizer.json`` text is a SentencePiece-converted Unigram model (an
    ``unk_id``, no ``ByteLevel`` pre-tokenizer): it goes to ``huggingface_tokenizer``,
    which reads those and refuses what it cannot reproduce by name; the rest goes to
    ``from_tokenizer_json`` (byte-level models, and refusals of other models)."""
    if '"model"' not in text or not text.lstrip().startswith("{"):
        return False
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return False
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict) or "format" in obj:
        return False
    model, pre = obj["model"], obj.get("pre_tokenizer")
    return (model.get("type") == "Unigram" and model.get("unk_id") is not None
            and not (isinstance(pre, dict) and pre.get("type") == "ByteLevel"))


def load_sentencepiece_huggingface(path: str | os.PathLike) -> Any:
    """A ``huggingface_tokenizer.HuggingFaceUnigramTokenizer`` from a ``tokenizer.json``
    of a SentencePiece-converted Unigram model (its own ids)."""
    from ..huggingface_tokenizer import HuggingFaceUnigramTokenizer

    data = read_file(path, "Hugging Face tokenizer file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a tokenizer.json: {exc}") from None
    return HuggingFaceUnigramTokenizer.from_json(text, str(path))
