"""The normalizer: the first stage every text passes through, before it becomes the bytes
that are segmented (text -> normalizer -> bytes -> trie walk -> lattice pass -> ids).

A model records its normalizer in its file (``io.model_file``, format version 2), so a
model always segments text the way it was built to.  ``identity`` (the default) leaves
the bytes as they are: byte-level models see exactly the input, and every byte string
round-trips.  Models imported from other tokenizers need theirs (SentencePiece's
whitespace rules and character maps, say); each is a ``Normalizer`` with a ``kind``, the
JSON fields that rebuild it, and ``normalize``.

A normalizer that changes lengths must also say where each output byte came from, so that
offsets can be mapped back to the input: ``normalize_with_offsets``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Normalizer:
    """A text normalizer: bytes in, bytes out.  Subclasses set ``kind`` and override
    ``normalize_with_offsets`` (and ``normalize`` where it can be cheaper)."""

    kind = ""

    def normalize(self, data: bytes) -> bytes:
        """The bytes that are segmented for the input ``data``."""
        return self.normalize_with_offsets(data)[0]

    def normalize_with_offsets(self, data: bytes) -> tuple[bytes, np.ndarray]:
        """(normalized bytes, for each of them the offset in ``data`` it came from)."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The fields the model file stores (``kind`` and the parameters)."""
        return {"kind": self.kind}

    @property
    def is_identity(self) -> bool:
        """True when every text's bytes pass unchanged (callers skip the stage)."""
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Normalizer) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_json().items())))

    def __repr__(self) -> str:
        return f"Normalizer({self.to_json()!r})"


class Identity(Normalizer):
    """No change: the bytes of the text are what is segmented."""

    kind = "identity"

    def normalize(self, data: bytes) -> bytes:
        return data

    def normalize_with_offsets(self, data: bytes) -> tuple[bytes, np.ndarray]:
        return data, np.arange(len(data), dtype=np.int64)

    @property
    def is_identity(self) -> bool:
        return True


IDENTITY = Identity()
KINDS: dict[str, type[Normalizer]] = {Identity.kind: Identity}


def from_json(obj: Any) -> Normalizer:
    """The normalizer a model file describes; ``ValueError`` for an unknown kind or
    fields it does not take."""
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise ValueError(f"'normalizer' must be an object with a 'kind', got {obj!r:.60}")
    kind = obj["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown normalizer kind {kind!r}; this release knows {sorted(KINDS)}")
    extra = set(obj) - {"kind"}
    if kind == Identity.kind and extra:
        raise ValueError(f"the identity normalizer takes no parameters, got {sorted(extra)}")
    return KINDS[kind]()
