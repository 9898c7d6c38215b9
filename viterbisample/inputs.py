"""Model inputs: token id rows to what a model eats.

The last stage of a training loop's tokenization: special tokens added, rows truncated to
whole tokens, padded to one length, an attention mask, and lists, NumPy arrays or PyTorch
tensors.  ``Tokenizer.__call__`` runs it after encoding (or sampling) the texts, and
``collate`` runs it on rows a data loader's workers sampled one by one.  The conventions
are Hugging Face's ``__call__``'s where they make sense: ``input_ids`` and
``attention_mask``, padding on the right to the longest row (``padding=True``) or to
``max_length`` (``padding="max_length"``), ``truncation`` to ``max_length`` counting the
special tokens, ``pad_to_multiple_of``, and ``return_tensors="np"``/``"pt"``.

PyTorch is never imported unless ``return_tensors="pt"`` asks for it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .checks import check_count

PADDING = {False: None, "do_not_pad": None, True: "longest", "longest": "longest", "max_length": "max_length"}
TENSORS = (None, "np", "pt")


class InputOptions:
    """The checked options of ``model_inputs`` (made once by a loader, reused per batch)."""

    __slots__ = ("bos", "eos", "max_length", "truncation", "padding", "multiple", "side", "tensors", "pad_id")

    def __init__(
        self,
        *,
        bos_id: int | None = None,
        eos_id: int | None = None,
        pad_id: int | None = None,
        max_length: int | None = None,
        truncation: bool = False,
        padding: bool | str = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str = "right",
        return_tensors: str | None = None,
    ) -> None:
        self.bos, self.eos = bos_id, eos_id
        self.max_length = None if max_length is None else check_count(max_length, "max_length", 1)
        if not isinstance(truncation, bool):
            raise TypeError(f"truncation must be True or False, got {truncation!r}")
        if truncation and self.max_length is None:
            raise ValueError("truncation=True needs max_length (there is no model maximum to fall back on)")
        self.truncation = truncation
        if not isinstance(padding, (bool, str)) or padding not in PADDING:
            raise ValueError(f"padding must be one of {list(PADDING)}, got {padding!r}")
        self.padding = PADDING[padding]
        if self.padding == "max_length" and self.max_length is None:
            raise ValueError('padding="max_length" needs max_length')
        self.multiple = None if pad_to_multiple_of is None else check_count(pad_to_multiple_of, "pad_to_multiple_of", 1)
        if padding_side not in ("right", "left"):
            raise ValueError(f'padding_side must be "right" or "left", got {padding_side!r}')
        self.side = padding_side
        if return_tensors not in TENSORS:
            raise ValueError(f'return_tensors must be None, "np" or "pt", got {return_tensors!r}')
        self.tensors = return_tensors
        if self.padding is not None and pad_id is None:
            raise ValueError("padding needs a pad token, and this model has none (no '<pad>' special token)")
        self.pad_id = pad_id

    @property
    def specials(self) -> int:
        return (self.bos is not None) + (self.eos is not None)


def model_inputs(
    rows: Sequence[Sequence[int]],
    options: InputOptions,
    spans: Sequence[Sequence[tuple[int, int]]] | None = None,
) -> dict[str, Any]:
    """``{"input_ids", "attention_mask"}`` (and ``"offsets"`` when ``spans`` are given:
    per token its (start, end) in the text) for id ``rows``, as ``options`` say.

    Truncation keeps whole tokens from the start of each row, leaving room for the special
    tokens; special and padding tokens get the span (0, 0), as in Hugging Face's offset
    mappings.  With ``return_tensors`` set, rows of different lengths need padding
    (``ValueError``).
    """
    o = options
    keep = None if not o.truncation else o.max_length - o.specials
    if keep is not None and keep < 0:
        raise ValueError(f"max_length={o.max_length} leaves no room for the {o.specials} special token(s)")
    head = [] if o.bos is None else [o.bos]
    tail = [] if o.eos is None else [o.eos]
    ids = [head + list(r[:keep]) + tail for r in rows]
    offsets = None
    if spans is not None:
        edge = [(0, 0)] * len(head), [(0, 0)] * len(tail)
        offsets = [edge[0] + list(s[:keep]) + edge[1] for s in spans]
    lengths = [len(r) for r in ids]
    width = _padded_width(lengths, o)
    out: dict[str, Any] = {}
    if width is None:
        if o.tensors is not None and len(set(lengths)) > 1:
            raise ValueError(
                f"rows of {min(lengths)} to {max(lengths)} tokens cannot be one tensor: pass padding=True "
                "(or truncation and padding='max_length')"
            )
        out["input_ids"] = ids
        out["attention_mask"] = [[1] * n for n in lengths]
        if offsets is not None:
            out["offsets"] = offsets
    else:
        out["input_ids"] = [_pad(r, width, o.pad_id, o.side) for r in ids]
        out["attention_mask"] = [_pad([1] * n, width, 0, o.side) for n in lengths]
        if offsets is not None:
            out["offsets"] = [_pad(s, width, (0, 0), o.side) for s in offsets]
    return as_tensors(out, o.tensors)


def _padded_width(lengths: list[int], o: InputOptions) -> int | None:
    if o.padding is None:
        return None
    width = o.max_length if o.padding == "max_length" else max(lengths, default=0)
    if o.padding == "max_length" and not o.truncation:
        width = max([width, *lengths])  # never cut a row that was not asked to be truncated
    if o.multiple is not None:
        width = -(-width // o.multiple) * o.multiple
    return width


def _pad(row: list, width: int, value: Any, side: str) -> list:
    fill = [value] * (width - len(row))
    return row + fill if side == "right" else fill + row


def as_tensors(batch: dict[str, Any], kind: str | None) -> dict[str, Any]:
    """The lists of ``batch`` as int64 NumPy arrays (``"np"``) or PyTorch tensors
    (``"pt"``), or unchanged (None)."""
    if kind is None:
        return batch
    arrays = {}
    for key, rows in batch.items():
        width = len(rows[0]) if rows else 0
        shape = (len(rows), width, 2) if key == "offsets" else (len(rows), width)
        arrays[key] = np.asarray(rows, np.int64).reshape(shape)
    if kind == "np":
        return arrays
    try:
        import torch
    except ImportError:
        raise ImportError('return_tensors="pt" needs PyTorch (pip install torch); "np" gives NumPy arrays') from None
    return {k: torch.from_numpy(v) for k, v in arrays.items()}
