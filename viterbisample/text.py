"""Texts to byte buffers: one text, or a batch packed into one buffer.

A ``str`` is encoded as UTF-8 with ``surrogateescape``, so a string made by decoding
arbitrary bytes with ``errors="surrogateescape"`` maps back to exactly those bytes.
A batch becomes one ``uint8`` buffer plus ``int64`` start/end offsets, the form every
batch kernel takes.
"""

from __future__ import annotations

from typing import Iterable, Union

import numpy as np

Text = Union[str, bytes, bytearray, memoryview]


def to_bytes(text: Text) -> bytes:
    """The bytes a text is tokenized as.

    >>> to_bytes("héllo")
    b'h\\xc3\\xa9llo'
    """
    if isinstance(text, str):
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end]
            raise ValueError(
                f"text contains the lone surrogate {bad!r} at index {exc.start}, which has no "
                "UTF-8 encoding; pass bytes, or decode your input with errors='surrogateescape'"
            ) from None
    if isinstance(text, bytes):
        return text
    if isinstance(text, (bytearray, memoryview)):
        return bytes(text)
    raise TypeError(f"text must be str or bytes, got {type(text).__name__}")


def bytes_list(texts: Iterable[Text]) -> list[bytes]:
    """``to_bytes`` of each text, at the least cost per text for a list of str or of bytes."""
    encoded = texts if isinstance(texts, list) else list(texts)
    kinds = set(map(type, encoded))
    if kinds <= {str}:
        try:
            # Where strict UTF-8 succeeds it gives the bytes surrogateescape would, and
            # str.encode mapped over the list is the cheapest call per text.
            return list(map(str.encode, encoded))
        except UnicodeEncodeError:
            return [to_bytes(t) for t in encoded]
    if kinds <= {bytes}:  # lists of bytes, common in data pipelines, are used as they are
        return encoded
    return [to_bytes(t) for t in encoded]


def pack(texts: Iterable[Text]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ``uint8`` buffer and the ``int64`` start and end offset of each text in it."""
    if isinstance(texts, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            "expected a list of texts, got a single text; use encode() for one text"
        )
    encoded = bytes_list(texts)
    joined = b"".join(encoded)
    lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    buf = np.frombuffer(joined, np.uint8)
    if buf.size == 0:
        # Kernels read a pointer to the buffer; keep it read-only like frombuffer's, so
        # every call has the same Numba signature.
        buf = np.frombuffer(b"\0", np.uint8)
    return buf, starts, ends


def split_packed(packed: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[bytes]:
    """The texts of a packed batch (``pack``'s form) as bytes, one object each."""
    buf, starts, ends = packed
    data = buf.tobytes()
    return [data[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
