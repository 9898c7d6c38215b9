"""How a piece is shown as text, and read back: one form for ``Tokenizer.tokenize``,
``id_to_piece``, ``get_vocab``, ``piece_to_id`` and the ``vsample`` pieces format.

A piece is bytes; its display is its UTF-8 text with a space shown as ``▁`` (U+2581, as
SentencePiece writes it) and every byte that is not part of a printable character shown
as ``<0xNN>``: bytes that are not valid UTF-8, control bytes (so a displayed piece holds
no space, tab or newline), and the bytes of a literal ``▁``.  A literal ``<0xNN>`` in a
piece has its ``<`` shown as ``<0x3C>``.  So the display is one-to-one, and
``piece_from_display`` reads any display back to the exact bytes.

>>> piece_display(b" caf\\xc3\\xa9"), piece_display(b"\\xe3\\x81\\n")
('▁café', '<0xE3><0x81><0x0A>')
>>> piece_from_display("▁café") == b" caf\\xc3\\xa9"
True
"""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"<0x[0-9A-F]{2}>")
_SPLIT = re.compile(r"(<0x[0-9A-F]{2}>)")
_SPACE = "\u2581"


def _byte(b: int) -> str:
    return f"<0x{b:02X}>"


# str.translate table over the text decoded with surrogateescape: invalid bytes arrive as
# the lone surrogates U+DC80..U+DCFF.
_SHOWN = {0x20: _SPACE, 0x7F: _byte(0x7F), ord(_SPACE): "".join(map(_byte, _SPACE.encode()))}
_SHOWN.update({c: _byte(c) for c in range(0x20)})
_SHOWN.update({0xDC00 + b: _byte(b) for b in range(0x80, 0x100)})


def piece_display(piece: bytes) -> str:
    """The display of a piece's bytes (module docstring)."""
    text = piece.decode("utf-8", "surrogateescape")
    if "<0x" in text:
        text = _ESCAPE.sub(lambda m: _byte(0x3C) + m.group()[1:], text)
    return text.translate(_SHOWN)


def piece_from_display(shown: str) -> bytes:
    """The bytes a display stands for: ``▁`` is a space and ``<0xNN>`` the byte NN."""
    out = bytearray()
    for k, part in enumerate(_SPLIT.split(shown)):
        if k % 2:  # an escape, captured by the split
            out.append(int(part[3:5], 16))
        else:
            out += part.replace(_SPACE, " ").encode("utf-8", "surrogateescape")
    return bytes(out)
