"""Unigram vocabulary training (ALGORITHMS.md section 7): ``train`` and its stages.

``train(inputs, vocab_size, ...)`` reads the corpus once, streaming, into distinct units
with counts (``units``), seeds a vocabulary with its right-closed frequent substrings
(``substrings``, ``seeds``), then alternates EM on the encoding kernels (``em``) and
pruning (``prune``) until the vocabulary has exactly ``vocab_size`` ids (``trainer``).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from ..checks import check_count, check_num_threads
from ..model import DEFAULT_SPECIAL_TOKENS, MAX_PIECE_BYTES, _check_specials
from ..text import to_bytes
from ..tokenizer import Tokenizer
from ..progress import Progress
from .trainer import Trainer
from .units import SPLIT_PRESETS, Units, read_units, split_pattern


def train(
    inputs: Iterable,
    vocab_size: int,
    *,
    max_piece_bytes: int = 24,
    split: str | bytes | None = None,
    whole_characters: bool = True,
    split_digits: bool = False,
    user_pieces: Sequence[bytes | str] = (),
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    max_lines: int | None = None,
    seed: int = 0,
    num_threads: int | None = None,
    progress: bool | Callable[[str], None] | None = None,
) -> Tokenizer:
    """Train a byte-level Unigram vocabulary of exactly ``vocab_size`` ids.

    Parameters
    ----------
    inputs : path, or iterable of paths and texts
        ``pathlib.Path`` (any ``os.PathLike``) items are files, read line by line;
        ``str``/``bytes`` items are texts (one unit each without ``split``).  A single
        ``str`` or path is one file.  Read once, streaming: a generator is fine.
    vocab_size : int
        Ids in the model, the special tokens included.
    max_piece_bytes : int, default 24
        Longest piece, in bytes (at most 64).
    split : None, "whitespace", "gpt" or a regex (str or bytes)
        Pre-tokenization.  None (default): whole lines, so pieces may span spaces.
        ``"whitespace"``: words with at most one leading space, and runs of spaces.
        ``"gpt"``: letters, digits and other symbols apart.  A regex: its ``findall``
        matches are the units (bytes outside every match are not trained on).
    whole_characters : bool, default True
        Multi-byte pieces are valid UTF-8 (start and end on character boundaries).
    split_digits : bool, default False
        No multi-byte piece contains an ASCII digit (numbers are spelt digit by digit).
    user_pieces : sequence of bytes or str
        Pieces always kept, whatever their use.
    special_tokens : sequence of str
        Names given ids 0, 1, ... (default ``<pad>``, ``<bos>``, ``<eos>``); they count
        towards ``vocab_size``.
    max_lines : int, optional
        Train on a uniform random sample of this many lines (seeded by ``seed``), for
        corpora whose distinct lines would not fit in memory.
    seed : int, default 0
        Seed of the line sample.
    num_threads : int, optional
        Worker threads (default: all cores).  The model does not depend on it.
    progress : bool or callable, optional
        A progress display on stderr: by default only when stderr is a terminal;
        False turns it off; a callable receives one line per finished step instead.

    Returns
    -------
    Tokenizer
        Save it with ``tok.save(path)`` (atomic).  Training lines round-trip:
        ``tok.decode_bytes(tok.encode(line)) == line``.

    Raises
    ------
    ValueError
        An empty corpus, a ``vocab_size`` below the 256 bytes plus special tokens and
        user pieces, a bad option.
    FileNotFoundError, IsADirectoryError
        An input file that cannot be read.

    Warns
    -----
    UserWarning
        When the corpus is too small for ``vocab_size`` (too few substrings used at least
        half a time): the model stops at the size reached, and the warning says which.

    The same inputs and options give the same model, byte for byte, for any ``num_threads``.

    >>> tok = train([b"hello world", b"hello there", b"the world"] * 50, 262, progress=False)
    >>> tok.vocab_size, tok.tokenize("hello world")
    (262, ['hello world'])
    """
    trainer = make_trainer(vocab_size, max_piece_bytes=max_piece_bytes, split=split,
                           whole_characters=whole_characters, split_digits=split_digits, user_pieces=user_pieces,
                           special_tokens=special_tokens, seed=seed, num_threads=num_threads, progress=progress)
    show = trainer.progress
    units = read_units(inputs, split, max_lines, seed,
                       progress=lambda done: show.live(f"reading: {done / 1e6:,.1f} MB", force=False))
    show.done(f"read {units.lines:,} lines ({units.bytes / 1e6:,.1f} MB): {len(units):,} distinct units")
    return trainer.run(units)


def make_trainer(
    vocab_size: int,
    *,
    max_piece_bytes: int = 24,
    split: str | bytes | None = None,
    whole_characters: bool = True,
    split_digits: bool = False,
    user_pieces: Sequence[bytes | str] = (),
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    seed: int = 0,
    num_threads: int | None = None,
    progress: bool | Callable[[str], None] | None = None,
) -> Trainer:
    """The ``Trainer`` of ``train``'s options, every option checked before any input is
    read (``distributed.train`` builds its own the same way)."""
    check_count(vocab_size, "vocab_size", 1)
    check_count(max_piece_bytes, "max_piece_bytes", 1)
    if max_piece_bytes > MAX_PIECE_BYTES:
        raise ValueError(f"max_piece_bytes must be <= {MAX_PIECE_BYTES}, got {max_piece_bytes}")
    threads = check_num_threads(num_threads)
    check_count(seed, "seed")
    specials = _check_specials(special_tokens)
    users = [to_bytes(p) for p in user_pieces]
    for p in users:
        if not p or len(p) > MAX_PIECE_BYTES:
            raise ValueError(f"user piece {p!r} must be 1 to {MAX_PIECE_BYTES} bytes long")
    split_pattern(split)  # bad options fail before the corpus is read
    return Trainer(
        vocab_size,
        max_piece_bytes=max_piece_bytes,
        whole_characters=whole_characters,
        split_digits=split_digits,
        user_pieces=users,
        special_tokens=specials,
        threads=threads,
        progress=Progress(progress),
    )


__all__ = ["train", "make_trainer", "read_units", "Trainer", "Units", "SPLIT_PRESETS"]
