"""Hugging Face ``tokenizer.json`` files of SentencePiece Unigram models, with their own ids.

``Tokenizer.load("tokenizer.json")`` gives a ``HuggingFaceUnigramTokenizer`` for the files
that ``transformers``' converters write for SentencePiece Unigram models (T5/mT5, XLM-R,
ALBERT, XLNet, Marian, Pegasus, ...): ``encode(text)`` is
``tokenizers.Tokenizer.from_file(path).encode(text, add_special_tokens=False).ids``.

``tokenizers`` is not SentencePiece, and each difference is reproduced, not smoothed over:

* Added tokens are cut out of the raw text first (leftmost-longest, ``lstrip``/``rstrip``
  taking Unicode whitespace); each piece between them is normalized on its own, then
  tokens with ``normalized: true`` are cut out of the normalized text.
* ``Precompiled`` is not SentencePiece's normalizer: it walks extended grapheme clusters;
  a cluster shorter than 6 bytes is replaced whole by the rule of the *shortest* key it
  starts with (the rest of the cluster is dropped), else each character by the rule of
  its shortest key.  ``Replace``, ``Strip``, ``Prepend``, ``Lowercase`` (per character),
  ``StripAccents``, ``NF*`` are Python's equivalents (Unicode tables: Python's).
* ``Metaspace`` writes spaces as its replacement and prepends one to each piece
  (``always``), to the piece that starts the text only (``first``: decided from the
  original offsets, which the normalizers' alignments are tracked for), or never; with
  ``split`` each replacement character starts a new word.  ``WhitespaceSplit`` and
  ``Split`` cut words too.  The model sees one word at a time.
* Scores are read as ``serde_json`` reads them by default, which is not correctly
  rounded (``serde_json_f64``: 1 ulp off for about a fifth of 17-digit scores).
* The ``Unigram`` model matches *every* vocabulary string (control, unknown and byte
  pieces too, with their stored scores, so a literal ``"<unk>"`` or ``"<0x41>"`` in the
  text can become that id); a duplicated string is the last entry of it (id and score);
  a character without a one-character piece is an unknown node scored ``min - 10`` where
  ``min`` is the smallest score of the whole vocabulary; Viterbi runs in float64 and a
  node keeps the first best path offered.  Adjacent unknown nodes and literal matches of
  the unknown piece are fused into one string, which is looked up in the vocabulary,
  else spelled as ``<0xNN>`` pieces with ``byte_fallback`` when all of them exist, else
  the unknown id.

Inside, the vocabulary becomes a ``SentencePieceModelFile`` whose pieces are the strings
that can match (``▁`` read as a space by the import) with their scores, every other entry
``UNUSED``, and one piece that no valid text contains holding the vocabulary's minimum
score, so that the import's unknown-character cost is ``min - 10`` as here; the import's
byte pieces then cost an unknown character exactly that (``SentencePieceTokenizer.from_spec``
builds it).  Each word is segmented by float64 Viterbi over those pieces
(``lattice.viterbi_items``, whose tie rule is ``tokenizers``' too), and the fusing above
is done on the ids.  Unicode tables: grapheme clusters are the ``regex`` package's, the
normalization forms, case and marks Python's ``unicodedata``; where their Unicode version
differs from the crates ``tokenizers`` was built with, characters new in between can
differ (none in the test corpora).

Sampling: ``encode(text, alpha=a, seed=s, epoch=e, index=i)`` and ``encode_batch`` draw
exact samples of q_alpha over this lattice, the words side by side (each word's lattice
alone, as ``tokenizers`` segments them; ``sentencepiece_lattice.CharacterLattice``'s word
break joins them into one item per text, so a draw is keyed by the text's index),
fused as above.  ``tokenizers``' own sampler (a file's ``alpha``/``nbest_size``) is not
exact and is not reproduced.  ``extra_tokens=``/``entropy_per_byte=`` calibrate alpha on
the words (``alpha_for_length``, ``alpha_for_entropy``).  Not yet: offsets, n-best and
the statistics of q_alpha.

What is refused (``ValueError`` naming the component): other models (BPE, WordPiece,
WordLevel), a missing ``unk_id``, sampling options, normalizers and pre-tokenizers not
listed above, regular expressions beyond literals, anchors, groups, alternation and
counted repetition, regular expressions that can match empty text, ``single_word``
added tokens, an added token listed twice, a vocabulary where both
``▁`` and spaces could meet, ``prepend_scheme: first`` after a Unicode normalization form
(its alignments are the ``unicode-normalization-alignments`` crate's own).  ``decode`` is
SentencePiece's rule on these pieces, not the file's decoder chain; post-processors are
read only for ``bos_id``/``eos_id`` and ``post_process``.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np
from numba import njit

from . import calibrate, lattice
from .charsmap import CharsMap
from .checks import check_num_threads, check_texts
from .engine import in_chunks, joined, kernel_alpha
from .io.sentencepiece import (
    BYTE, CONTROL, NORMAL, UNKNOWN, UNUSED, SentencePieceEntry, SentencePieceModelFile,
)
from .sentencepiece_lattice import split_words
from .sentencepiece_tokenizer import SentencePieceTokenizer
from .text import Text, pack

try:  # extended grapheme clusters (``\X``), as the Rust unicode-segmentation crate cuts them
    import regex as _regex

    # The characters that can be in a cluster with another one (Grapheme_Cluster_Break other
    # than Other, Control and LF): a text without any is one cluster per character.
    _JOINING = _regex.compile(r"[\p{GCB=CR}\p{GCB=Extend}\p{GCB=ZWJ}\p{GCB=SpacingMark}\p{GCB=Prepend}"
                              r"\p{GCB=L}\p{GCB=V}\p{GCB=T}\p{GCB=LV}\p{GCB=LVT}\p{GCB=RI}]")
except ImportError:  # pragma: no cover - transformers and tokenizers users have it
    _regex = None

# Unicode White_Space: Rust's char::is_whitespace and the regex crate's \s (not Python's
# str.isspace, which adds U+001C..U+001F).
WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_UNK_FREE_PIECE = b"\xff"  # no valid UTF-8 text contains this byte: it can never match


class HuggingFaceError(ValueError):
    """A tokenizer.json that cannot be reproduced exactly."""


def _fail(source: str, msg: str) -> HuggingFaceError:
    return HuggingFaceError(f"{source}: cannot load this Hugging Face tokenizer exactly: {msg}")


# -- numbers as tokenizers reads them -------------------------------------------------------
_U64_MAX = (1 << 64) - 1
_POW10 = [float(f"1e{k}") for k in range(309)]  # serde_json's table: correctly rounded powers


def serde_json_f64(literal: str) -> float:
    """A JSON number as ``serde_json`` parses it without its ``float_roundtrip`` feature
    (``tokenizers`` is built so): the decimal digits into a u64 (digits past its range
    dropped), converted to f64, then one multiplication or division by a power of ten.
    That is not correctly rounded: a 17-digit score is 1 ulp off about one time in five,
    and Viterbi's near ties follow the scores ``tokenizers`` has, not the file's."""
    text = literal.strip()
    negative = text.startswith("-")
    if negative:
        text = text[1:]
    mantissa, _, exp_text = text.replace("E", "e").partition("e")
    whole, _, fraction = mantissa.partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"not a JSON number: {literal!r}")
    significand, exponent, full = 0, 0, False
    for d in whole:
        if full or significand * 10 + int(d) > _U64_MAX:
            full = True
            exponent += 1
        else:
            significand = significand * 10 + int(d)
    for d in fraction:
        if full or significand * 10 + int(d) > _U64_MAX:
            full = True
        else:
            significand = significand * 10 + int(d)
            exponent -= 1
    if exp_text:
        exponent += int(exp_text)
    value = float(significand)
    while True:
        if abs(exponent) < len(_POW10):
            value = value * _POW10[exponent] if exponent >= 0 else value / _POW10[-exponent]
            break
        if value == 0.0:
            break
        if exponent >= 0:
            raise ValueError(f"JSON number out of range: {literal!r}")
        value /= 1e308
        exponent += 308
    return -value if negative else value


# -- regular expressions ---------------------------------------------------------------
_REGEX_TOKEN = re.compile(r"\\[^A-Za-z0-9]|\\[Az]|\(\?:|[()|+*?]|\{\d+(?:,\d*)?\}|[^\\\[\]().^${}]", re.S)


def translate_regex(pattern: str, where: str, source: str) -> re.Pattern:
    """Oniguruma's ``pattern`` as a Python ``re`` pattern, for the subset where the two
    agree: literal characters, escaped punctuation, ``\\A``, ``\\z``, groups, ``|`` and
    repetition.  Anything else (classes, ``.``, ``\\s``, ``^``/``$``, lookaround) and any
    pattern that can match empty text (where the engines differ) is refused."""
    out, pos = [], 0
    while pos < len(pattern):
        m = _REGEX_TOKEN.match(pattern, pos)
        if m is None:
            raise _fail(source, f"{where}: the regular expression {pattern!r} uses {pattern[pos:pos + 8]!r}, "
                                "outside the literal subset that is reproduced exactly")
        tok = m.group()
        out.append(r"\Z" if tok == r"\z" else tok)
        pos = m.end()
    try:
        compiled = re.compile("".join(out))
    except re.error as exc:
        raise _fail(source, f"{where}: the regular expression {pattern!r} is not valid: {exc}") from None
    if compiled.search("") is not None:
        raise _fail(source, f"{where}: the regular expression {pattern!r} can match empty text")
    return compiled


def _pattern(obj: Any, where: str, source: str) -> re.Pattern | None:
    """A ``{"String": s}`` or ``{"Regex": r}`` pattern; None for an empty string (which
    ``tokenizers`` never matches)."""
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(obj.get("String"), str):
        return re.compile(re.escape(obj["String"])) if obj["String"] else None
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(obj.get("Regex"), str):
        return translate_regex(obj["Regex"], where, source)
    raise _fail(source, f"{where}: pattern {obj!r:.60} is neither {{'String': ...}} nor {{'Regex': ...}}")


def _matches(regex: re.Pattern | None, s: str) -> list[tuple[int, int, bool]]:
    """``Pattern::find_matches``: the spans covering ``s``, matches flagged."""
    if not s:
        return [(0, 0, False)]
    out, prev = [], 0
    if regex is not None:
        for m in regex.finditer(s):
            if prev != m.start():
                out.append((prev, m.start(), False))
            out.append((m.start(), m.end(), True))
            prev = m.end()
    if prev != len(s):
        out.append((prev, len(s), False))
    return out


def _char_matches(s: str, pred) -> list[tuple[int, int, bool]]:
    if not s:
        return [(0, 0, False)]
    out, last = [], 0
    for i, c in enumerate(s):
        if pred(c):
            if last < i:
                out.append((last, i, False))
            out.append((i, i + 1, True))
            last = i + 1
    if last < len(s):
        out.append((last, len(s), False))
    return out


def _split_spans(matches: list[tuple[int, int, bool]], behavior: str) -> list[tuple[int, int]]:
    """``NormalizedString::split``: the kept spans for a delimiter behavior."""
    if behavior == "removed":
        return [(a, b) for a, b, m in matches if not m]
    if behavior == "isolated":
        return [(a, b) for a, b, _ in matches]
    if behavior == "merged_with_previous":
        acc: list[list[int]] = []
        prev = False
        for a, b, m in matches:
            if m and not prev and acc:
                acc[-1][1] = b
            else:
                acc.append([a, b])
            prev = m
        return [(a, b) for a, b in acc]
    if behavior == "merged_with_next":
        acc = []
        prev = False
        for a, b, m in reversed(matches):
            if m and not prev and acc:
                acc[-1][0] = a
            else:
                acc.append([a, b])
            prev = m
        return [(a, b) for a, b in reversed(acc)]
    if behavior == "contiguous":
        acc = []
        prev = False
        for a, b, m in matches:
            if m and prev and acc:
                acc[-1][1] = b
            else:
                acc.append([a, b])
            prev = m
        return [(a, b) for a, b in acc]
    raise ValueError(behavior)


# -- normalizers: each works on a string, or on (chars, alignment starts) -----------------
# An alignment start is the index, in the piece the normalizer was given, of the original
# character an output character comes from (0 for a character inserted at the start), as
# ``NormalizedString`` keeps it; it is tracked only where ``prepend_scheme: first`` needs
# to know whether a piece starts at the original offset 0.
def _transform(al: list[int], dest: list[tuple[str, int]], initial: int) -> tuple[list[str], list[int]]:
    """``NormalizedString::transform_range`` over the whole string, per character."""
    offset = initial
    chars, out = [], []
    for c, change in dest:
        if change > 0:
            a = al[offset - 1] if offset >= 1 else 0
        else:
            a = al[offset]
            offset += 1 - change if change < 0 else 1
        chars.append(c)
        out.append(a)
    return chars, out


class _Step:
    """One normalizer.  ``adds_space``: it can write a U+0020 that was not there;
    ``removes_spaces``: no U+0020 is left after it."""

    adds_space = False
    removes_spaces = False
    tracks_alignments = True

    def plain(self, s: str) -> str:
        raise NotImplementedError

    def aligned(self, chars: list[str], al: list[int]) -> tuple[list[str], list[int]]:
        raise NotImplementedError


class _Replace(_Step):
    def __init__(self, regex: re.Pattern | None, content: str) -> None:
        self.regex, self.content = regex, content
        self.adds_space = " " in content
        self.removes_spaces = regex is not None and regex.pattern == re.escape(" ") and " " not in content

    def plain(self, s: str) -> str:
        return s if self.regex is None else self.regex.sub(lambda m: self.content, s)

    def aligned(self, chars, al):
        s = "".join(chars)
        out_c, out_a, last = [], [], 0
        for a, b, m in _matches(self.regex, s):
            if not m:
                continue
            out_c += chars[last:a]
            out_a += al[last:a]
            fill = al[b - 1] if b >= 1 else 0  # inserted characters align with the match's last
            out_c += list(self.content)
            out_a += [fill] * len(self.content)
            last = b
        return out_c + chars[last:], out_a + al[last:]


class _Precompiled(_Step):
    adds_space = True

    def __init__(self, blob: bytes, source: str) -> None:
        if _regex is None:
            raise _fail(source, "the Precompiled normalizer needs the 'regex' package (grapheme clusters)")
        self.table = _charsmap_table(blob)
        if self.table is None:
            raise _fail(source, "the Precompiled normalizer's replacement strings are not UTF-8 "
                                "(tokenizers refuses it)")
        self.starts = frozenset(k[0] for k in self.table)
        # A one-character grapheme is mapped by its own rule: str.translate does those.
        self.singles = {ord(k): v for k, v in self.table.items() if len(k) == 1}
        # Characters whose rule is not one character: they move the alignments.
        self.resizing = frozenset(k for k, v in self.table.items() if len(k) == 1 and len(v) != 1)

    def _transform(self, chunk: str) -> str | None:
        """``Precompiled::transform``: the rule of the shortest key ``chunk`` starts with."""
        table = self.table
        for k in range(1, len(chunk) + 1):
            r = table.get(chunk[:k])
            if r is not None:
                return r
        return None

    def _dest(self, s: str) -> list[tuple[str, int]] | None:
        dest: list[tuple[str, int]] = []
        modified = False

        def put(old: str, new: str) -> None:
            diff = len(new) - len(old)
            dest.extend((c, 0) for c in new)
            if diff > 0:
                for k in range(len(dest) - diff, len(dest)):
                    dest[k] = (dest[k][0], 1)
            elif diff < 0 and dest:
                dest[-1] = (dest[-1][0], dest[-1][1] + diff)

        for g in _regex.findall(r"\X", s):
            if len(g.encode("utf-8")) < 6:
                new = self._transform(g)
                if new is not None:
                    modified = True
                    put(g, new)
                    continue
            for c in g:
                new = self.table.get(c)
                if new is not None:
                    modified = True
                    put(c, new)
                else:
                    dest.append((c, 0))
        return dest if modified else None

    def plain(self, s: str) -> str:
        if not s or self.starts.isdisjoint(s):
            return s
        if not _JOINING.search(s):  # every cluster is one character
            return s.translate(self.singles)
        graphemes = _regex.findall(r"\X", s)
        # Only the clusters of several characters need the cluster rule.
        out, last, at = [], 0, 0
        for g in graphemes:
            if len(g) > 1:
                out.append(s[last:at].translate(self.singles))
                dest = self._dest(g)
                out.append(g if dest is None else "".join(c for c, _ in dest))
                last = at + len(g)
            at += len(g)
        out.append(s[last:].translate(self.singles))
        return "".join(out)

    def aligned(self, chars, al):
        s = "".join(chars)
        if self.starts.isdisjoint(s):
            return chars, al
        if not _JOINING.search(s) and self.resizing.isdisjoint(s):
            return list(s.translate(self.singles)), al  # one character for one: alignments kept
        dest = self._dest(s)
        return (chars, al) if dest is None else _transform(al, dest, 0)


@njit(cache=True, nogil=True)
def _all_keys(units, keys, key_ends, values):
    """Every key of a darts-clone double array (depth first), written back to back into
    ``keys`` with ``key_ends`` and each one's value; returns the number of keys, or -1 when
    the arrays are too small.  NUL is never a label of a key (SentencePiece's search stops
    there, as ``spm_precompiled``'s does)."""
    n_units = units.shape[0]
    stack_node = np.empty(4096, np.int64)
    stack_label = np.empty(4096, np.int64)  # the next label to try at each depth
    path = np.empty(4096, np.uint8)
    depth = 0
    stack_node[0] = (units[0] >> 10) << ((units[0] & (1 << 9)) >> 6)
    stack_label[0] = 1
    n = 0
    used = 0
    while depth >= 0:
        node = stack_node[depth]
        b = stack_label[depth]
        if b > 255:
            depth -= 1
            continue
        stack_label[depth] = b + 1
        idx = node ^ b
        if idx >= n_units or (units[idx] & ((1 << 31) | 0xFF)) != b:
            continue
        unit = units[idx]
        nxt = idx ^ ((unit >> 10) << ((unit & (1 << 9)) >> 6))
        path[depth] = b
        if unit & (1 << 8):
            if n >= values.shape[0] or used + depth + 1 > keys.shape[0]:
                return -1
            for k in range(depth + 1):
                keys[used + k] = path[k]
            used += depth + 1
            key_ends[n] = used
            values[n] = units[nxt] & ((1 << 31) - 1)
            n += 1
        if depth + 1 >= 4096:
            return -1
        depth += 1
        stack_node[depth] = nxt
        stack_label[depth] = 1
    return n


@lru_cache(maxsize=8)
def _charsmap_table(blob: bytes) -> dict[str, str] | None:
    """Every key of a precompiled charsmap and its replacement, as strings (keys that are
    not UTF-8 can never be a prefix of a text's characters and are left out); None when
    the pool is not UTF-8 (``tokenizers`` refuses such a map)."""
    cmap = CharsMap.parse(blob)
    pool = cmap.pool.tobytes()[: cmap.replacement_at - 1]
    try:
        pool.decode("utf-8")
    except UnicodeDecodeError:
        return None
    units = cmap.units
    if len(units) == 0:
        return {}
    size = 4 * len(units)  # a DAWG shares nodes between keys: often more keys than units
    while True:
        keys, ends, values = np.empty(8 * size, np.uint8), np.empty(size, np.int64), np.empty(size, np.int64)
        n = _all_keys(units, keys, ends, values)
        if n >= 0:
            break
        size *= 2
    data = keys[: ends[n - 1] if n else 0].tobytes()
    starts = [0, *ends[: n - 1].tolist()]
    replacements: dict[int, str] = {}
    table: dict[str, str] = {}
    for a, b, v in zip(starts, ends[:n].tolist(), values[:n].tolist()):
        r = replacements.get(v)
        if r is None:
            end = pool.find(b"\0", v)
            r = replacements[v] = pool[v : end if end >= 0 else len(pool)].decode("utf-8", "replace")
        try:
            table[data[a:b].decode("utf-8")] = r
        except UnicodeDecodeError:
            pass
    return table


class _PerChar(_Step):
    """Lowercase: each character mapped alone, as ``char::to_lowercase`` (no final sigma)."""

    def plain(self, s):
        # str.lower differs from a per-character map only by its final-sigma rule.
        return s.lower() if "\u03a3" not in s else "".join(c.lower() for c in s)

    def aligned(self, chars, al):
        dest = []
        for c in chars:
            dest.extend((x, int(k > 0)) for k, x in enumerate(c.lower()))
        return _transform(al, dest, 0)


class _StripAccents(_Step):
    def plain(self, s):
        return "".join(c for c in s if not unicodedata.category(c).startswith("M"))

    def aligned(self, chars, al):
        keep = [not unicodedata.category(c).startswith("M") for c in chars]
        dest, removed, removed_start, last = [], 0, 0, None
        for c, k in zip(chars, keep):
            if k:
                if last is not None:
                    dest.append((last, -removed))
                else:
                    removed_start = removed
                last, removed = c, 0
            else:
                removed += 1
        if last is not None:
            dest.append((last, -removed))
        return _transform(al, dest, removed_start) if dest else ([], [])


class _UnicodeForm(_Step):
    tracks_alignments = False

    def __init__(self, form: str) -> None:
        self.form = form
        self.adds_space = form in ("NFKC", "NFKD")

    def plain(self, s):
        return unicodedata.normalize(self.form, s)


class _Strip(_Step):
    def __init__(self, left: bool, right: bool) -> None:
        self.left, self.right = left, right

    def plain(self, s):
        a, b = 0, len(s)
        if self.left:
            while a < b and s[a] in WHITE_SPACE:
                a += 1
        if self.right:
            while b > a and s[b - 1] in WHITE_SPACE:
                b -= 1
        return s[a:b]

    def aligned(self, chars, al):
        a, b = 0, len(chars)
        if self.left:
            while a < b and chars[a] in WHITE_SPACE:
                a += 1
        if self.right:
            while b > a and chars[b - 1] in WHITE_SPACE:
                b -= 1
        return chars[a:b], al[a:b]


class _Prepend(_Step):
    def __init__(self, text: str) -> None:
        self.text = text
        self.adds_space = " " in text

    def plain(self, s):
        return self.text + s if s else s

    def aligned(self, chars, al):
        if not chars or not self.text:
            return chars, al
        return list(self.text) + chars, [al[0]] * len(self.text) + al


def _normalizer_steps(obj: Any, source: str) -> list[_Step]:
    if obj is None:
        return []
    if not isinstance(obj, dict):
        raise _fail(source, f"normalizer {obj!r:.60} is not an object")
    kind = obj.get("type")
    if kind == "Sequence":
        return [s for sub in obj.get("normalizers") or [] for s in _normalizer_steps(sub, source)]
    if kind == "Precompiled":
        text = obj.get("precompiled_charsmap")
        try:
            blob = base64.b64decode(text, validate=True) if isinstance(text, str) else None
        except ValueError:
            blob = None
        if blob is None:
            raise _fail(source, "the Precompiled normalizer's precompiled_charsmap is not base64")
        try:
            return [_Precompiled(blob, source)]
        except HuggingFaceError:
            raise
        except ValueError as exc:
            raise _fail(source, f"the Precompiled normalizer's charsmap is malformed: {exc}") from None
    if kind == "Replace":
        content = obj.get("content")
        if not isinstance(content, str):
            raise _fail(source, "a Replace normalizer has no 'content' string")
        return [_Replace(_pattern(obj.get("pattern"), "Replace normalizer", source), content)]
    if kind in ("NFC", "NFD", "NFKC", "NFKD"):
        return [_UnicodeForm(kind)]
    if kind == "Lowercase":
        return [_PerChar()]
    if kind == "StripAccents":
        return [_StripAccents()]
    if kind == "Strip":
        return [_Strip(bool(obj.get("strip_left", True)), bool(obj.get("strip_right", True)))]
    if kind == "Prepend":
        if not isinstance(obj.get("prepend"), str):
            raise _fail(source, "a Prepend normalizer has no 'prepend' string")
        return [_Prepend(obj["prepend"])]
    raise _fail(source, f"the normalizer {kind!r} is not supported (supported: Sequence, Precompiled, Replace, "
                        "NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Prepend)")


# -- pre-tokenizers: a split is (text, alignment starts or None, starts at offset 0) ------
class _Metaspace:
    def __init__(self, obj: dict, source: str) -> None:
        rep = obj.get("replacement", "\u2581")
        if not isinstance(rep, str) or len(rep) != 1:
            raise _fail(source, f"Metaspace replacement {rep!r} is not one character")
        scheme = obj.get("prepend_scheme")
        if scheme is None:
            scheme = "never" if obj.get("add_prefix_space") is False else "always"
        elif obj.get("add_prefix_space") is False and scheme != "never":
            raise _fail(source, "Metaspace: add_prefix_space does not match prepend_scheme (tokenizers refuses it)")
        if scheme not in ("always", "first", "never"):
            raise _fail(source, f"Metaspace prepend_scheme {scheme!r} is not always, first or never")
        self.rep, self.scheme = rep, scheme
        self.split = obj.get("split", True) is not False

    def __call__(self, splits):
        out = []
        rep = self.rep
        for s, al, zero in splits:
            s = s.replace(" ", rep)
            if s and not s.startswith(rep) and (self.scheme == "always" or (self.scheme == "first" and zero)):
                s = rep + s
            if not self.split:
                out.append((s, None, zero))
                continue
            # Each replacement character starts a word (MergedWithNext).
            parts = s.split(rep)
            if parts[0]:
                out.append((parts[0], None, zero))
                zero = False
            for k in range(1, len(parts)):
                out.append((rep + parts[k], None, zero))
                zero = False
        return out


class _SplitBy:
    """WhitespaceSplit, or Split with a pattern and a behavior."""

    removes_spaces = False

    def __init__(self, matcher, behavior: str) -> None:
        self.matcher, self.behavior = matcher, behavior

    def __call__(self, splits):
        out = []
        for s, al, zero in splits:
            for a, b in _split_spans(self.matcher(s), self.behavior):
                if a == b:
                    continue
                sub_al = al[a:b] if al is not None else None
                first = zero and (sub_al[0] == 0 if sub_al is not None else a == 0)
                out.append((s[a:b], sub_al, first))
        return out


def _pre_tokenizer_steps(obj: Any, source: str) -> list:
    if obj is None:
        return []
    if not isinstance(obj, dict):
        raise _fail(source, f"pre_tokenizer {obj!r:.60} is not an object")
    kind = obj.get("type")
    if kind == "Sequence":
        return [s for sub in obj.get("pretokenizers") or [] for s in _pre_tokenizer_steps(sub, source)]
    if kind == "Metaspace":
        return [_Metaspace(obj, source)]
    if kind == "WhitespaceSplit":
        step = _SplitBy(lambda s: _char_matches(s, WHITE_SPACE.__contains__), "removed")
        step.removes_spaces = True
        return [step]
    if kind == "Split":
        behavior = obj.get("behavior")
        names = {"Removed": "removed", "Isolated": "isolated", "MergedWithPrevious": "merged_with_previous",
                 "MergedWithNext": "merged_with_next", "Contiguous": "contiguous"}
        behavior = names.get(behavior, behavior)
        if behavior not in names.values():
            raise _fail(source, f"Split pre-tokenizer behavior {obj.get('behavior')!r} is not known")
        if obj.get("invert"):
            raise _fail(source, "Split pre-tokenizer with invert: true is not supported")
        regex = _pattern(obj.get("pattern"), "Split pre-tokenizer", source)
        return [_SplitBy(lambda s, r=regex: _matches(r, s), behavior)]
    raise _fail(source, f"the pre-tokenizer {kind!r} is not supported (supported: Sequence, Metaspace, "
                        "WhitespaceSplit, Split)")


# -- added tokens -----------------------------------------------------------------------
class _AddedTokens:
    """One of ``AddedVocabulary``'s two matching sets (raw text, or normalized text)."""

    def __init__(self, tokens: list[tuple[str, int, bool, bool]]) -> None:
        self.tokens = {content: (i, lstrip, rstrip) for content, i, lstrip, rstrip in tokens}
        contents = sorted(self.tokens, key=lambda c: (-len(c), c))  # leftmost, then longest
        self.regex = re.compile("|".join(map(re.escape, contents))) if contents else None

    def find(self, s: str) -> list[tuple[int | None, int, int]]:
        """``find_matches``: (id or None, start, end) covering ``s``."""
        if not s:
            return [(None, 0, 0)]
        if self.regex is None:
            return [(None, 0, len(s))]
        out, start_offset = [], 0
        for m in self.regex.finditer(s):
            start, stop = m.start(), m.end()
            i, lstrip, rstrip = self.tokens[m.group()]
            if lstrip:
                k = start
                while k > 0 and s[k - 1] in WHITE_SPACE:
                    k -= 1
                start = max(k, start_offset)
            if rstrip:
                while stop < len(s) and s[stop] in WHITE_SPACE:
                    stop += 1
            if start_offset < start:
                out.append((None, start_offset, start))
            out.append((i, start, stop))
            start_offset = stop
        if start_offset != len(s):
            out.append((None, start_offset, len(s)))
        return out


# -- the tokenizer ------------------------------------------------------------------------
class HuggingFaceUnigramTokenizer(SentencePieceTokenizer):
    """A SentencePiece-converted Unigram ``tokenizer.json`` with its own ids (see the
    module docstring).  Build it with ``Tokenizer.load(path)`` or ``from_json``."""

    @classmethod
    def from_json(cls, text: str, source: str = "<tokenizer.json>") -> "HuggingFaceUnigramTokenizer":
        """The tokenizer of a ``tokenizer.json`` text; ``HuggingFaceError`` (a
        ``ValueError``) naming what cannot be reproduced."""
        try:
            obj = json.loads(text, parse_float=serde_json_f64)
        except (json.JSONDecodeError, ValueError) as exc:
            raise _fail(source, f"not JSON: {exc}") from None
        plan = _Plan(obj, source, text)
        tok = cls.from_spec(plan.spec, source, float32=False, rebuild=(_rebuild, (text, source)))
        tok._install(plan)
        return tok

    def _install(self, plan: "_Plan") -> None:
        """Our ids are the file's: replace what ``_setup`` derived from the padded spec."""
        self._plan = plan
        n = len(plan.vocab)
        self._entries = plan.display_entries  # the model's vocabulary, then added tokens it lacks
        self._id_of_piece = dict(plan.all_ids)
        self._unk = plan.unk_id
        self._id_objects = np.array(range(len(self._entries)), dtype=object)
        spm = self._spm_of
        self._hf_of = np.where((spm >= 0) & (spm < n), spm, -1).astype(np.int64)
        # Internal ids whose tokens are fused: unknown bytes, and literal matches of the unknown piece.
        self._fused = (self._hf_of < 0) | (self._hf_of == plan.unk_id)
        self.spec = plan.decode_spec

    def __repr__(self) -> str:
        return f"HuggingFaceUnigramTokenizer({self._source!r}, vocab_size={self.vocab_size})"

    # -- what the post-processor adds ---------------------------------------------------
    @property
    def bos_id(self) -> int | None:
        """The single special token the post-processor puts before a text, else the
        SentencePiece rule (``<s>``)."""
        pre = self._plan.template[0]
        return pre[0] if len(pre) == 1 else (None if self._plan.template_given else super().bos_id)

    @property
    def eos_id(self) -> int | None:
        """The single special token the post-processor puts after a text, else ``</s>``."""
        post = self._plan.template[1]
        return post[0] if len(post) == 1 else (None if self._plan.template_given else super().eos_id)

    def post_process(self, ids: Sequence[int]) -> list[int]:
        """``ids`` with what the post-processor's single-sequence template adds:
        ``encode(add_special_tokens=True)`` of ``tokenizers`` is
        ``post_process(encode(text))``."""
        pre, post = self._plan.template
        return [*pre, *map(int, ids), *post]

    # -- encoding -------------------------------------------------------------------------
    def encode(self, text: Text, alpha: float | None = None, seed: int | None = None, *, epoch: int = 0,
               index: int = 0, entropy_per_byte: float | None = None, extra_tokens: float | None = None,
               return_offsets: bool = False) -> Any:
        """``tokenizers``' ``encode(text, add_special_tokens=False).ids``, or with ``alpha``
        an exact sample of q_alpha over its lattice (each word's, side by side), keyed by
        (seed, epoch, index) as ``Tokenizer.encode``."""
        if return_offsets:
            self._not_yet("return_offsets")
        return self.encode_batch([text], alpha, seed, epoch, 1, index, entropy_per_byte=entropy_per_byte,
                                 extra_tokens=extra_tokens)[0]

    def encode_batch(self, texts: Iterable[Text], alpha: float | None = None, seed: int | None = None,
                     epoch: int = 0, num_threads: int | None = None, first_index: int = 0, *,
                     entropy_per_byte: float | None = None, extra_tokens: float | None = None,
                     return_offsets: bool = False) -> Any:
        """``encode`` of each text, text k keyed by first_index + k (the words of all texts
        in one parallel call)."""
        if return_offsets:
            self._not_yet("return_offsets")
        return self._encode_all(check_texts(texts), num_threads, alpha, seed, epoch, first_index, entropy_per_byte,
                                extra_tokens)

    def encode_batch_arrays(self, texts: Iterable[Text], alpha: float | None = None, seed: int | None = None,
                            epoch: int = 0, num_threads: int | None = None, first_index: int = 0, *,
                            entropy_per_byte: float | None = None,
                            extra_tokens: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows = self.encode_batch(texts, alpha, seed, epoch, num_threads, first_index,
                                 entropy_per_byte=entropy_per_byte, extra_tokens=extra_tokens)
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        ids = np.fromiter((i for r in rows for i in r), np.int32, int(offsets[-1]))
        return ids, offsets

    def _words_of(self, texts: list) -> tuple[list[str], np.ndarray, list[list[int]]]:
        """The words the model sees in each text, all in order; how many each text has;
        and each text's layout: added-token ids, and -1 - k for the k-th word."""
        plan = self._plan
        words: list[str] = []
        words_per_text = np.zeros(len(texts), np.int64)
        layouts = []
        for t in texts:
            if not isinstance(t, str):
                if isinstance(t, (bytes, bytearray, memoryview)):
                    t = bytes(t).decode("utf-8")  # tokenizers takes text: invalid UTF-8 raises
                else:
                    raise TypeError(f"a text must be str or bytes, got {type(t).__name__}")
            layout = []
            for item in plan.pieces_of(t):
                if isinstance(item, int):
                    layout.append(item)
                else:
                    layout.append(-1 - len(words))
                    words.append(item)
            layouts.append(layout)
            words_per_text[len(layouts) - 1] = sum(item < 0 for item in layout)
        return words, words_per_text, layouts

    def _encode_all(self, texts: list, num_threads: int | None, alpha: Any = None, seed: Any = None,
                    epoch: Any = 0, first_index: Any = 0, entropy_per_byte: Any = None,
                    extra_tokens: Any = None) -> list[list[int]]:
        words, words_per_text, layouts = self._words_of(texts)
        if entropy_per_byte is not None or extra_tokens is not None:
            alpha = self._calibrated(alpha, entropy_per_byte, extra_tokens, self._marked_words(words), num_threads)
        if alpha is None or kernel_alpha(alpha) == lattice.VITERBI:
            ids, offsets = self._viterbi_words(words, num_threads)
        else:
            ids, offsets = self._sampled_words(words, words_per_text, alpha, seed, epoch, num_threads, first_index)
        hf = self._hf_of[ids].tolist()
        fused = self._fused[ids]
        needs = np.zeros(len(words), bool)
        if fused.any():
            where = np.flatnonzero(fused)
            needs[np.searchsorted(offsets, where, side="right") - 1] = True
        off = offsets.tolist()
        out = []
        for layout in layouts:
            row: list[int] = []
            for item in layout:
                if item >= 0:
                    row.append(item)
                    continue
                w = -1 - item
                if needs[w]:
                    row += self._fuse(words[w], ids[off[w] : off[w + 1]], hf[off[w] : off[w + 1]])
                else:
                    row += hf[off[w] : off[w + 1]]
            out.append(row)
        return out

    def _viterbi_words(self, words: list[str], num_threads: int | None) -> tuple[np.ndarray, np.ndarray]:
        """The float64 Viterbi path of each word over the import's pieces (``▁`` is the
        space byte there), in the import's ids, flat, and offsets."""
        data = _word_bytes(words)
        threads = check_num_threads(num_threads)
        m = self.model
        scores = np.ascontiguousarray(m.scores, np.float64)

        def work(first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
            buf, starts, ends = pack(data[first:last])
            out = np.empty(max(1, int(ends[-1]) if len(ends) else 0), np.int32)
            offsets = np.empty(len(starts) + 1, np.int64)
            if lattice.viterbi_items(m.suffix_trie, scores, m.lengths, buf, starts, ends, out, offsets) < 0:
                raise RuntimeError("internal error: a word has no path (every byte is a piece)")
            return out[: offsets[-1]], offsets

        sizes = np.fromiter(map(len, data), np.int64, len(data))
        return joined(in_chunks(sizes + 1, threads, work) if data else [])

    def _marked_words(self, words: list[str]) -> list[bytes]:
        """The words as the byte form of the lattice reads them (``SentencePieceLattice.mark``)."""
        data = _word_bytes(words)
        return self._lattice.mark_batch(data, pack(data))

    # Calibration: q_alpha of a text is the product of its words', so its entropy and
    # expected length are the sums of theirs, and alpha is calibrated on the words.
    def alpha_for_entropy(self, texts: Iterable[Text], bits_per_byte: float, num_threads: int | None = None) -> float:
        """``Tokenizer.alpha_for_entropy`` over the words the model sees (their bytes, with
        ``▁`` as one space byte and an unknown character as one)."""
        words = self._words_of(check_texts(texts))[0]
        return calibrate.alpha_for_entropy(self._engine, self._marked_words(words), bits_per_byte, num_threads)

    def alpha_for_length(self, texts: Iterable[Text], extra_tokens: float, num_threads: int | None = None) -> float:
        """``Tokenizer.alpha_for_length`` over the words the model sees."""
        words = self._words_of(check_texts(texts))[0]
        return calibrate.alpha_for_length(self._engine, self._marked_words(words), extra_tokens, num_threads)

    def _sampled_words(self, words: list[str], words_per_text: np.ndarray, alpha: Any, seed: Any, epoch: Any,
                       num_threads: Any, first_index: Any) -> tuple[np.ndarray, np.ndarray]:
        """A sample of each text's path, each word's part drawn from q_alpha over the
        word's lattice (the lattice of ``sentencepiece_lattice``: every string that can
        match, one unknown node per character without a piece), in the import's ids (an
        unknown character spelled in its byte pieces, as Viterbi spells it), one row per
        word.  A text's words are one item of the sampler, joined by the lattice's word
        break, so the draw is keyed by the text's index alone."""
        packed = pack(_word_bytes(words))
        joined_words = self._characters.of_words(packed, words_per_text)
        ids, offsets = self._paths(None, alpha, seed, epoch, num_threads, first_index, None, None, to_spm=False,
                                   characters=joined_words)
        out = np.empty(max(1, len(ids)), np.int32)
        out_offsets = np.empty(len(words) + 1, np.int64)
        n = split_words(ids, offsets, words_per_text, self._characters.break_id, out, out_offsets)
        return self._lattice.unmark(out[:n], out_offsets, packed)

    def _fuse(self, word: str, internal: np.ndarray, hf: list[int]) -> list[int]:
        """One word's ids with ``fuse_unk``: each run of unknown characters and literal
        unknown pieces becomes one string, looked up as ``Unigram::tokenize`` does."""
        plan = self._plan
        fused = self._fused[internal]
        if not plan.spaces:  # every space byte inside is a ``▁``
            data = word.replace("\u2581", " ").encode("utf-8")

            def text_of(a: int, b: int) -> str:
                return data[a:b].decode("utf-8").replace(" ", "\u2581")
        else:  # internal bytes -> character index of the word (``▁`` is one space byte inside)
            char_at = []
            for k, c in enumerate(word):
                char_at += [k] * (1 if c == "\u2581" else len(c.encode("utf-8")))
            char_at.append(len(word))

            def text_of(a: int, b: int) -> str:
                return word[char_at[a] : char_at[b]]
        pos = np.zeros(len(internal) + 1, np.int64)
        np.cumsum(self.model.lengths[internal], out=pos[1:])
        edges = np.flatnonzero(np.diff(np.concatenate([[0], fused.astype(np.int8), [0]])))
        pos = pos.tolist()
        out: list[int] = []
        prev = 0
        for a, b in zip(edges[0::2].tolist(), edges[1::2].tolist()):
            out += hf[prev:a]
            prev = b
            s = text_of(pos[a], pos[b])
            i = plan.token_to_ids.get(s)
            if i is not None:
                out.append(i)
                continue
            if plan.byte_fallback:
                found = [plan.token_to_ids.get(f"<0x{x:02X}>") for x in s.encode("utf-8")]
                if None not in found:
                    out += found
                    continue
            out.append(plan.unk_id)
        out += hf[prev:]
        return out

    # -- what is not available yet -----------------------------------------------------------
    def _not_yet(self, what: str) -> None:
        raise NotImplementedError(
            f"{what} is not available for a Hugging Face tokenizer.json yet (its words are cut "
            "before the model): encode, with or without alpha, and decode are"
        )

    def _no_lattice(self, *args: Any, **kwargs: Any) -> Any:
        self._not_yet("sampling, n-best and the statistics of q_alpha")

    # Every question of q_alpha comes through these (Tokenizer's and SentencePieceTokenizer's).
    _prepare = _prepare_one = _normalized = _sampled = _no_lattice
    sample = sample_batch = sample_batch_arrays = sample_distinct = sample_distinct_batch = _no_lattice
    nbest = nbest_batch = marginals = log_prob = token_spans = _no_lattice

    def tokenize(self, text: Text, alpha: float | None = None, seed: int | None = None, *,
                 as_bytes: bool = False) -> list:
        ids = self.encode(text, alpha, seed)
        return [self.id_to_bytes(i) for i in ids] if as_bytes else [self.id_to_piece(i) for i in ids]

    def save_huggingface(self, path: Any) -> None:
        """Write the ``tokenizer.json`` this tokenizer was read from (atomically)."""
        from .io.atomic import atomic_write

        data = self._plan.text.encode("utf-8")
        atomic_write(path, lambda out: out.write(data))


def _word_bytes(words: list[str]) -> list[bytes]:
    """The words as the import's pieces spell them: ``▁`` is the space byte there."""
    return [w.replace("\u2581", " ").encode("utf-8") for w in words]


class _Plan:
    """Everything read from a tokenizer.json: the pipeline and the spec for the model."""

    def __init__(self, obj: Any, source: str, text: str) -> None:
        self.source = source
        self.text = text
        if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
            raise _fail(source, "it has no 'model' object (is it a tokenizer.json?)")
        model = obj["model"]
        kind = model.get("type")
        if kind != "Unigram":
            raise _fail(source, f"its model is {kind!r}; only Unigram models are Viterbi models")
        vocab = model.get("vocab")
        if not isinstance(vocab, list) or not vocab or not all(
            isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and isinstance(e[1], (int, float))
            and not isinstance(e[1], bool) for e in vocab
        ):
            raise _fail(source, "the Unigram 'vocab' must be a non-empty list of [piece, score] pairs")
        for key in ("alpha", "nbest_size", "dropout"):
            if model.get(key) not in (None, 0, 0.0):
                raise _fail(source, f"the Unigram model samples ({key} = {model[key]!r}), which is not reproduced: "
                                    "tokenizers' sampler is not q_alpha's; give alpha to encode instead")
        unk_id = model.get("unk_id")
        if unk_id is None:
            raise _fail(source, "the Unigram model has no unk_id (tokenizers then fails on some texts "
                                "depending on its search order, which is not reproduced)")
        if not isinstance(unk_id, int) or isinstance(unk_id, bool) or not 0 <= unk_id < len(vocab):
            raise _fail(source, f"the Unigram unk_id {unk_id!r} is not an id of the vocabulary")
        self.vocab = [(p, float(s)) for p, s in vocab]
        self.unk_id = unk_id
        self.byte_fallback = bool(model.get("byte_fallback", False))
        self.token_to_ids = {p: i for i, (p, _) in enumerate(self.vocab)}  # the last duplicate wins

        self.normalizers = _normalizer_steps(obj.get("normalizer"), source)
        self.pre_tokenizers = _pre_tokenizer_steps(obj.get("pre_tokenizer"), source)
        metas = [s for s in self.pre_tokenizers if isinstance(s, _Metaspace)]
        if len(metas) > 1:
            raise _fail(source, "more than one Metaspace pre-tokenizer")
        # Each word is its own Viterbi pass even where no piece could cross a word start:
        # a path's score is summed from the word's start, and summed from the text's start
        # instead, near ties round differently (a corpus of code has such lines).
        self.track = bool(metas) and metas[0].scheme == "first"
        if self.track:
            bad = [type(s).__name__ for s in self.normalizers if not s.tracks_alignments]
            if bad:
                raise _fail(source, "Metaspace prepend_scheme 'first' after a Unicode normalization form "
                                    "(its original offsets come from the unicode-normalization-alignments crate)")
            later = self.pre_tokenizers[self.pre_tokenizers.index(metas[0]) + 1 :]
            if any(isinstance(s, _Metaspace) for s in later):
                raise _fail(source, "more than one Metaspace pre-tokenizer")

        # Can a U+0020 reach the model?  Then it and ``▁`` (both a space byte inside) must not meet.
        spaces = True
        for step in self.normalizers:
            spaces = False if step.removes_spaces else (spaces or step.adds_space)
        # Metaspace replaces every space of every split, WhitespaceSplit drops them; no
        # pre-tokenizer writes one.
        if any(isinstance(s, _Metaspace) or getattr(s, "removes_spaces", False) for s in self.pre_tokenizers):
            spaces = False
        if spaces and any(("\u2581" in p or " " in p) for p, _ in self.vocab):
            raise _fail(source, "spaces can reach the model while the vocabulary has pieces with '▁' or ' ' "
                                "(inside, both are the space byte)")

        self.spaces = spaces
        self._added(obj.get("added_tokens") or [], source)
        self._template(obj.get("post_processor"), source)
        self._build_spec(source, spaces)

    def _added(self, added: Any, source: str) -> None:
        raw, normalized = [], []
        specials = set()
        # Tokens the model lacks get the next ids after its vocabulary, in file order
        # (AddedVocabulary::add_tokens), whatever ids the file states.
        self.extra_tokens: dict[int, str] = {}
        seen: set[str] = set()
        if not isinstance(added, list):
            raise _fail(source, "'added_tokens' is not a list")
        for entry in added:
            if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
                raise _fail(source, f"added token {entry!r:.60} has no 'content' string")
            content = entry["content"]
            if not content:
                continue
            if entry.get("single_word"):
                raise _fail(source, f"added token {content!r} has single_word: true, which is not reproduced")
            if content in seen:
                raise _fail(source, f"added token {content!r} appears twice")
            seen.add(content)
            i = self.token_to_ids.get(content)
            if i is None:
                i = len(self.vocab) + len(self.extra_tokens)
                self.extra_tokens[i] = content
            if entry.get("special"):
                specials.add(i)
            item = (content, i, bool(entry.get("lstrip")), bool(entry.get("rstrip")))
            if entry.get("normalized", not entry.get("special")):
                pattern = self.normalize_plain(content)
                if pattern:
                    normalized.append((pattern, *item[1:]))
            else:
                raw.append(item)
        self.raw_tokens, self.normalized_tokens = _AddedTokens(raw), _AddedTokens(normalized)
        self.special_ids = specials

    def _template(self, obj: Any, source: str) -> None:
        self.template: tuple[list[int], list[int]] = ([], [])
        self.template_given = obj is not None
        if not isinstance(obj, dict):
            return
        kinds = [obj] if obj.get("type") != "Sequence" else obj.get("processors") or []
        templates = [p for p in kinds if isinstance(p, dict) and p.get("type") == "TemplateProcessing"]
        if len(templates) != 1:
            return  # only read for bos/eos; the ids of encode do not depend on it
        t = templates[0]
        single, tokens = t.get("single") or [], t.get("special_tokens") or {}
        pre: list[int] = []
        post: list[int] = []
        seen = False
        for piece in single:
            if "Sequence" in piece:
                seen = True
            elif "SpecialToken" in piece:
                name = piece["SpecialToken"].get("id")
                ids = (tokens.get(name) or {}).get("ids")
                if not isinstance(ids, list):
                    raise _fail(source, f"TemplateProcessing names the special token {name!r} without ids")
                (post if seen else pre).extend(int(i) for i in ids)
        self.template = (pre, post)

    def _build_spec(self, source: str, spaces: bool) -> None:
        entries = []
        for i, (p, score) in enumerate(self.vocab):
            if not p:
                raise _fail(source, f"vocabulary entry {i} is empty")
            try:
                piece = p.encode("utf-8")
            except UnicodeEncodeError:
                raise _fail(source, f"vocabulary entry {i} ({p!r:.40}) is not valid Unicode text") from None
            matchable = self.token_to_ids[p] == i and (spaces or " " not in p)
            entries.append(SentencePieceEntry(piece, score, NORMAL if matchable else UNUSED))
        low = min(s for _, s in self.vocab)
        if low >= 20:
            raise _fail(source, "every score is at least 20; unknown runs would then not be fused as here")
        entries.append(SentencePieceEntry(_UNK_FREE_PIECE, low, NORMAL))
        self.spec = SentencePieceModelFile(
            tuple(entries), byte_fallback=False, precompiled_charsmap=b"", add_dummy_prefix=False,
            remove_extra_whitespaces=False, escape_whitespaces=True, normalizer_name="huggingface",
        )
        bytes_ids = {self.token_to_ids.get(f"<0x{b:02X}>") for b in range(256)} if self.byte_fallback else set()
        display = []
        for i, (p, score) in enumerate(self.vocab):
            kind = (UNKNOWN if i == self.unk_id else CONTROL if i in self.special_ids
                    else BYTE if i in bytes_ids else NORMAL)
            display.append(SentencePieceEntry(p.encode("utf-8"), score, kind))
        for i, content in self.extra_tokens.items():
            kind = CONTROL if i in self.special_ids else NORMAL
            display.append(SentencePieceEntry(content.encode("utf-8"), 0.0, kind))
        self.display_entries = tuple(display)
        self.all_ids = {**self.token_to_ids, **{c: i for i, c in self.extra_tokens.items()}}
        prepend = any(isinstance(s, _Metaspace) and s.scheme != "never" for s in self.pre_tokenizers)
        self.decode_spec = SentencePieceModelFile(
            self.display_entries, add_dummy_prefix=prepend, remove_extra_whitespaces=False,
            unk_surface=self.vocab[self.unk_id][0],
        )

    # -- the text pipeline ------------------------------------------------------------------
    def normalize_plain(self, s: str) -> str:
        for step in self.normalizers:
            s = step.plain(s)
        return s

    def pieces_of(self, text: str) -> list:
        """The added-token ids and the words the model sees, in order."""
        out: list = []
        for i, a, b in self.raw_tokens.find(text):
            if i is not None:
                out.append(i)
                continue
            segment = text[a:b]
            if self.track and a == 0:
                chars, al = list(segment), list(range(len(segment)))
                for step in self.normalizers:
                    chars, al = step.aligned(chars, al)
                s = "".join(chars)
            else:
                s, al = self.normalize_plain(segment), None
            for j, c, d in self.normalized_tokens.find(s):
                if j is not None:
                    out.append(j)
                    continue
                if c == d:
                    continue
                sub_al = al[c:d] if al is not None else None
                zero = a == 0 and sub_al is not None and sub_al[0] == 0
                splits = [(s[c:d], sub_al, zero)]
                for step in self.pre_tokenizers:
                    splits = step(splits)
                out.extend(w for w, _, _ in splits if w)
        return out


def _rebuild(text: str, source: str) -> HuggingFaceUnigramTokenizer:
    return HuggingFaceUnigramTokenizer.from_json(text, source)

