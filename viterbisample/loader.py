"""Subword regularization inside a training loop: what a ``Dataset`` holds.

Each text gets a fresh exact sample every epoch, keyed by (seed, epoch, index): the same
sample whatever the number of data loader workers, their start method (fork or spawn),
the batch size or the order in which items are asked for, and in any later run with the
same seed.  ``SubwordRegularization`` keeps the tokenizer, the alpha (given, or
calibrated once on sample texts) and the seed; a dataset calls it in ``__getitem__`` and
its ``collate`` turns the rows of a batch into model inputs (``inputs.model_inputs``).

    sr = SubwordRegularization(tok, extra_tokens=0.1, calibration_texts=texts[:1000], seed=1234)

    class Texts(torch.utils.data.Dataset):
        def __len__(self): return len(texts)
        def __getitem__(self, i): return sr(texts[i], i)

    loader = DataLoader(Texts(), batch_size=32, num_workers=2, collate_fn=sr.collate)
    for epoch in range(epochs):
        sr.set_epoch(epoch)          # before the workers start: they copy sr
        for batch in loader: ...

With ``persistent_workers=True`` the workers keep the copy they started with, so
``set_epoch`` in the main process does not reach them: pass the epoch with the index
instead (``sr(text, i, epoch=e)``, the sampler yielding (epoch, index) pairs).  For
Hugging Face ``datasets``, ``map`` with ``with_indices=True`` (``sr.batch``) gives the
same samples for any ``batch_size`` and ``num_proc``.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from .checks import check_alpha, check_uint64
from .inputs import model_inputs
from .rng import fresh_seed
from .text import Text


class SubwordRegularization:
    """Samples of q_alpha keyed by (seed, epoch, index), for data loaders.

    Give ``alpha``, or ``extra_tokens`` (0.1: samples are 10% longer than the Viterbi
    segmentation on average) or ``entropy_per_byte`` (bits) with ``calibration_texts``,
    a sample of the data set on which alpha is calibrated once, here.  ``seed=None``
    draws one seed now; it is part of the object, so every worker that receives a copy
    uses the same one.  The options of ``collate`` (``add_bos``, ``max_length``, ...)
    are fixed here too.  Picklable; a copy costs what the tokenizer's model costs to
    send.
    """

    def __init__(
        self,
        tokenizer: Any,
        alpha: float | None = None,
        *,
        extra_tokens: float | None = None,
        entropy_per_byte: float | None = None,
        calibration_texts: Iterable[Text] | None = None,
        seed: int | None = None,
        epoch: int = 0,
        add_bos: bool = False,
        add_eos: bool = False,
        max_length: int | None = None,
        truncation: bool = False,
        padding: bool | str = True,
        pad_to_multiple_of: int | None = None,
        padding_side: str = "right",
        return_tensors: str | None = "np",
        num_threads: int | None = None,
    ) -> None:
        from .tokenizer import Tokenizer

        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"tokenizer must be a viterbisample Tokenizer, got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        targets = [n for n, v in (("extra_tokens", extra_tokens), ("entropy_per_byte", entropy_per_byte)) if v is not None]
        if alpha is not None and targets:
            raise ValueError(f"give alpha or {targets[0]}, not both")
        if targets:
            if calibration_texts is None:
                raise ValueError(f"{targets[0]} needs calibration_texts: a sample of the data set to calibrate alpha on")
            texts = list(calibration_texts)
            if extra_tokens is not None:
                alpha = tokenizer.alpha_for_length(texts, extra_tokens, num_threads)
            else:
                alpha = tokenizer.alpha_for_entropy(texts, entropy_per_byte, num_threads)
        elif alpha is None:
            raise ValueError("give alpha, extra_tokens or entropy_per_byte (with calibration_texts)")
        self.alpha = check_alpha(alpha)
        self.seed = fresh_seed() if seed is None else check_uint64(seed, "seed")
        # A tokenizer that cannot sample says so now, not in the first worker.
        tokenizer.encode(b"", self.alpha, self.seed)
        self.epoch = check_uint64(epoch, "epoch")
        self.options = tokenizer.input_options(
            add_bos=add_bos, add_eos=add_eos, max_length=max_length, truncation=truncation, padding=padding,
            pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side, return_tensors=return_tensors,
        )

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose samples ``__call__`` gives from now on."""
        self.epoch = check_uint64(epoch, "epoch")

    def __call__(self, text: Text, index: int, epoch: int | None = None) -> list[int]:
        """The ids of ``text``, item ``index`` of the data set: the sample keyed by
        (seed, epoch, index), ``epoch`` defaulting to the one set."""
        return self.tokenizer.encode(text, self.alpha, self.seed, epoch=self.epoch if epoch is None else epoch,
                                     index=index)

    def batch(self, texts: Sequence[Text], indices: Sequence[int], epoch: int | None = None) -> list[list[int]]:
        """``__call__`` of each text with its index: for ``datasets.map(...,
        batched=True, with_indices=True)``, whose ``indices`` are the rows' positions in
        the data set, whatever ``batch_size`` and ``num_proc``."""
        if len(texts) != len(indices):
            raise ValueError(f"got {len(texts)} texts and {len(indices)} indices")
        return [self(t, i, epoch) for t, i in zip(texts, indices)]

    def collate(self, rows: Sequence[Sequence[int]]) -> dict[str, Any]:
        """A data loader's ``collate_fn``: the rows of a batch (from ``__call__``) as model
        inputs, with the options given at construction."""
        return model_inputs(rows, self.options)

    def __repr__(self) -> str:
        return f"SubwordRegularization(alpha={self.alpha!r}, seed={self.seed}, epoch={self.epoch})"
