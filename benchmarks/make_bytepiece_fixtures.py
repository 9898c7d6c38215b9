"""Regenerate ``tests/data/bytepiece/``: a small BytePiece model and BytePiece's own output.

The tests (``tests/test_bytepiece.py``) must run without bytepiece (it needs Cython and
a pyahocorasick built with bytes support to install), so this script trains a model
with bytepiece on lines of the corpora already vendored in ``tests/data/corpora`` and
records what bytepiece gives for them:

* ``model.json``: ``bytepiece.Trainer(order=6, max_vocab_size=VOCAB, min_count=2)``
  trained on ``TRAIN`` (Botchan lines 0-299 and 吾輩は猫である lines 0-39), saved by
  ``Trainer.save``;
* ``outputs.json``: for each text, bytepiece's ``encode(text)`` and ``decode`` of those
  ids (left out where it is the text itself): held-out and training lines of both
  corpora, then special texts (NFD accents, emoji, characters never seen in training,
  runs of one character, several lines, empty, a long line).  Texts that are not valid
  UTF-8 cannot be given to bytepiece's ``tokenize`` (it takes ``str``); for those (kind
  ``"bytes"``) the ids are those of its ``_tokenize`` (the segmenter ``tokenize`` calls
  on each line) applied to the lines of the NFC of the text decoded with
  ``surrogateescape``, each encoded back the same way: what ``tokenize`` does, with
  ``surrogateescape`` in place of strict UTF-8.

    python benchmarks/make_bytepiece_fixtures.py

Needs bytepiece 0.6.3 (``pip install Cython``, then ``pip install --no-build-isolation
bytepiece==0.6.3``, then ``AHOCORASICK_BYTES=1 pip install --no-binary pyahocorasick
--force-reinstall --no-cache-dir pyahocorasick``).  Training is deterministic (counting,
no randomness), so a rerun writes the same files.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO / "tests" / "data" / "corpora"
OUT = REPO / "tests" / "data" / "bytepiece"
VOCAB = 1000
# (corpus file, first line, last line + 1): lines are the file's, split at "\n".
TRAIN = [("en_botchan.txt", 0, 300), ("ja_wagahaiwa_nekodearu.txt", 0, 40)]
CHECKED = [("en_botchan.txt", 300, 500), ("en_botchan.txt", 0, 40), ("ja_wagahaiwa_nekodearu.txt", 40, 60),
           ("ja_wagahaiwa_nekodearu.txt", 0, 5)]

SPECIAL_TEXTS = [
    ("empty", ""),
    ("NFD accents", "Cafe\u0301 au lait, re\u0301sume\u0301, nai\u0308ve, A\u030angstro\u0308m"),
    ("NFD Hangul jamo", "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af"),
    ("NFC already", "Café résumé naïve Ångström"),
    ("compatibility characters (NFC keeps them)", "ﬁ ﬂ ① Ｈｅｌｌｏ ㌀ ℌ"),
    ("emoji", "I \u2764\ufe0f tea \U0001f375 \U0001f44d\U0001f3fd "
              "\U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f1ef\U0001f1f5"),
    ("unseen scripts", "Привет, мир! مرحبا بالعالم שלום עולם 안녕하세요 γειά σου κόσμε"),
    ("control characters", "tab\there\x00nul\x01\x7fdel\x1besc\r\nCRLF"),
    ("runs: a", "a" * 200),
    ("runs: space", " " * 64),
    ("runs: の", "の" * 60),
    ("runs: dots", "." * 99),
    ("several lines", "The first line.\nThe second line.\n\n\nAfter three line feeds\n"),
    ("only line feeds", "\n\n\n\n"),
    ("line feed first", "\nthen text\n"),
    ("carriage returns", "one\rtwo\r\rthree\n\rfour"),
    ("digits", "In 1906, 3.14159 and 2,718,281,828 were 42 numbers 0123456789"),
    ("mixed", "Botchan 坊っちゃん said: 「吾輩は猫である」 — 100% sure!"),
]
INVALID_BYTES = [
    ("invalid UTF-8 bytes", b"caf\xe9 \xff\xfe\x80 ok \xc3 end"),
    ("lone continuation bytes between lines", b"\x80\x81\n\xbf\xbftext\n\xf0\x9f"),
]


def lines_of(name: str, lo: int, hi: int) -> list[str]:
    return (CORPORA / name).read_text("utf-8").split("\n")[lo:hi]


def one_entry_a_line(obj: dict) -> str:
    """JSON with each text's entry on a line of its own: readable, and diffs stay small."""
    head = {k: v for k, v in obj.items() if k not in ("texts", "decode")}
    parts = [json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ","]
    for key in ("texts", "decode"):
        rows = ",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in obj[key])
        parts.append(f' "{key}": [\n{rows}\n ],')
    return "\n".join(parts)[:-1] + "\n}\n"


def main() -> int:
    try:
        import ahocorasick
        import bytepiece
        from bytepiece import Tokenizer, Trainer
    except ImportError as exc:
        sys.exit(f"needs bytepiece 0.6.3 ({exc}); see this script's docstring")
    if ahocorasick.unicode:
        sys.exit("pyahocorasick is built for str keys; rebuild it with AHOCORASICK_BYTES=1 (see the docstring)")
    if bytepiece.__version__ != "0.6.3":
        print(f"warning: bytepiece {bytepiece.__version__}, the fixtures were made with 0.6.3", file=sys.stderr)

    OUT.mkdir(parents=True, exist_ok=True)
    train = [x for name, lo, hi in TRAIN for x in lines_of(name, lo, hi) if x]
    trainer = Trainer(order=6, max_vocab_size=VOCAB, min_count=2)
    trainer.train(train, workers=1)
    model = OUT / "model.json"
    trainer.save(str(model))
    tok = Tokenizer(str(model))

    def record(kind: str, label: str, text: str | bytes) -> dict:
        if isinstance(text, str):
            ids = tok.encode(text)
            entry = {"kind": kind, "label": label, "text": text}
        else:  # see the docstring: tokenize with surrogateescape in place of strict UTF-8
            s = unicodedata.normalize("NFC", text.decode("utf-8", "surrogateescape"))
            chunks = [t.encode("utf-8", "surrogateescape") for t in re.findall(r".*\n+|.+", s)]
            ids = tok.pieces_to_ids([p for c in chunks for p in tok._tokenize(c)])
            entry = {"kind": "bytes", "label": label, "hex": text.hex()}
        entry["ids"] = ids
        decoded = tok.decode(ids)
        if decoded != text:  # else "decoded" is left out: it is the text
            entry["decoded"] = decoded
        return entry

    texts = []
    for name, lo, hi in CHECKED:
        for k, line in enumerate(lines_of(name, lo, hi)):
            texts.append(record("line", f"{name}:{lo + k}", line))
    texts += [record("special", label, t) for label, t in SPECIAL_TEXTS]
    long_line = (" ".join(lines_of("en_botchan.txt", 500, 540)) + " "
                 + "".join(lines_of("ja_wagahaiwa_nekodearu.txt", 70, 74)))
    texts.append(record("special", "long line (en lines 500-539 joined by spaces, ja lines 70-73 appended)", long_line))
    # BytePiece segments each line alone, its scores restarting from 0: in one lattice
    # pass over these lines the rounding of a long prefix's score flips a near tie on
    # line 141 (bytepiece_tokenizer.py's docstring).
    texts.append(record("special", "Botchan lines 0-149 as one text", "\n".join(lines_of("en_botchan.txt", 0, 150))))
    texts += [record("bytes", label, t) for label, t in INVALID_BYTES]
    decodes = [[1, 5, 40, 2, 0], [tok.vocab_size - 1, 3, 1], list(range(3, 40))]
    out = {
        "bytepiece": bytepiece.__version__,
        "model": model.name,
        "trainer": {"order": 6, "max_vocab_size": VOCAB, "min_count": 2, "lines": TRAIN},
        "vocab_size": tok.vocab_size,
        "texts": texts,
        "decode": [{"ids": ids, "decoded": tok.decode(ids)} for ids in decodes],
        "bytes_kind_note": "ids of bytepiece's _tokenize on the lines of NFC(text decoded with surrogateescape)",
    }
    tmp = OUT / f".outputs.json.{os.getpid()}"
    tmp.write_text(one_entry_a_line(out), "utf-8")
    os.replace(tmp, OUT / "outputs.json")
    pieces = json.loads(model.read_text("utf-8"))
    print(f"wrote {model} ({len(pieces)} pieces, vocab_size {tok.vocab_size}) and outputs.json ({len(texts)} texts)")
    assert all(len(base64.b64decode(k)) >= 1 for k in pieces)
    return 0


if __name__ == "__main__":
    sys.exit(main())
