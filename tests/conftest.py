"""Fixtures: the test data, and the vocabularies the tests run on.

The test data is in the repository, in ``tests/data`` (its README gives each file's
source and licence): the corpora in ``corpora/`` and SentencePiece test models in
``sp_test_models/``.  A missing file is an error, not a skipped test, so a test run can
never pass by silently testing nothing.

* Data: ``data_file`` (the path of a file of the test data), ``en_lines`` and
  ``ja_lines`` (the lines of Botchan and of 吾輩は猫である, as bytes), ``en_held_out``
  and ``ja_held_out`` (lines that follow the ones the vocabularies were built from).
* Realistic vocabularies, the frequent-substring seeds of Unigram training
  (``viterbisample.train.seeds``): real pieces with log-frequency scores, all 256 bytes
  included; building both takes about a second.  ``en_tok`` and ``ja_tok``, and the same
  pieces with tied scores, ``en_tok_equal``, ``en_tok_rounded`` and ``ja_tok_rounded``.
* Hand-made vocabularies: ``run_tok`` (runs of b"a": astronomically many paths) and
  ``small_tok`` (pieces that split UTF-8 characters and span spaces, random scores).
* ``default_tok``: the model shipped with the package.
* ``run_python``: runs Python in a fresh process that sees only this checkout.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so tests can `import reference`

from viterbisample import Tokenizer  # noqa: E402
from vocabularies import count_pretokens, frequent_substrings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
EN_CORPUS = "en_botchan.txt"
JA_CORPUS = "ja_wagahaiwa_nekodearu.txt"

EN_VOCAB_SIZE = 2000
JA_VOCAB_SIZE = 3000
EN_LINES = 2000  # English pre-tokens repeat a lot: counting 2,000 lines takes ~0.2 s
JA_BYTES = 50_000  # Japanese pre-tokens are long unique runs: cost grows with the bytes
MAX_PIECE_BYTES = 16
EN_HELD_OUT_LINES = 600
JA_HELD_OUT_BYTES = 20_000


def data_path(name: str) -> Path:
    """The path of ``name`` (e.g. ``"corpora/en_botchan.txt"``) in ``tests/data``;
    raises if the file is missing."""
    path = DATA / name
    if not path.is_file():
        raise FileNotFoundError(
            f"test data {path} is missing: the tests read their data from {DATA}, "
            f"which is part of the repository (see {DATA / 'README.md'})"
        )
    return path


def corpus_lines(name: str) -> list[bytes]:
    """The lines of a corpus of the test data, as bytes; raises if it is missing."""
    return data_path(f"corpora/{name}").read_bytes().splitlines()


def _first_bytes(lines: list[bytes], budget: int) -> list[bytes]:
    out, total = [], 0
    for line in lines:
        if total >= budget:
            break
        out.append(line)
        total += len(line)
    return out


def build_vocab(lines: list[bytes], size: int) -> tuple[list[bytes], list[float]]:
    return frequent_substrings(count_pretokens(lines), size, MAX_PIECE_BYTES)


@pytest.fixture(scope="session")
def data_file():
    """``data_file("sp_test_models/test_model.model")``: the path of a file of the test
    data (``tests/data``); FileNotFoundError if it is missing."""
    return data_path


@pytest.fixture(scope="session")
def en_lines() -> list[bytes]:
    return corpus_lines(EN_CORPUS)


@pytest.fixture(scope="session")
def ja_lines() -> list[bytes]:
    return corpus_lines(JA_CORPUS)


@pytest.fixture(scope="session")
def corpus_texts() -> list[str]:
    """Every line of Botchan, then of 吾輩は猫である, as str: the texts the tests of
    peer compatibility (SentencePiece, Hugging Face) compare ids on."""
    return [line.decode("utf-8") for line in corpus_lines(EN_CORPUS) + corpus_lines(JA_CORPUS)]


@pytest.fixture(scope="session")
def en_vocab(en_lines) -> tuple[list[bytes], list[float]]:
    return build_vocab(en_lines[:EN_LINES], EN_VOCAB_SIZE)


@pytest.fixture(scope="session")
def ja_vocab(ja_lines) -> tuple[list[bytes], list[float]]:
    return build_vocab(_first_bytes(ja_lines, JA_BYTES), JA_VOCAB_SIZE)


@pytest.fixture(scope="session")
def en_held_out(en_lines) -> list[bytes]:
    """600 lines of Botchan that follow the lines ``en_tok`` was built from."""
    return en_lines[EN_LINES : EN_LINES + EN_HELD_OUT_LINES]


@pytest.fixture(scope="session")
def ja_held_out(ja_lines) -> list[bytes]:
    """About 20,000 bytes of lines (paragraphs of up to a few thousand bytes) that follow
    the lines ``ja_tok`` was built from."""
    return _first_bytes(ja_lines[len(_first_bytes(ja_lines, JA_BYTES)) :], JA_HELD_OUT_BYTES)


@pytest.fixture(scope="session")
def en_tok(en_vocab) -> Tokenizer:
    """English, 2,000 pieces (256 bytes + 1,744 frequent substrings of Botchan)."""
    return Tokenizer.from_pieces(*en_vocab)


@pytest.fixture(scope="session")
def ja_tok(ja_vocab) -> Tokenizer:
    """Japanese, 3,000 pieces, including partial UTF-8 characters (byte substrings)."""
    return Tokenizer.from_pieces(*ja_vocab)


@pytest.fixture(scope="session")
def en_tok_equal(en_vocab) -> Tokenizer:
    """The English pieces with every score equal (-1.0): every path with the fewest
    tokens ties exactly, so only the tie rule decides Viterbi."""
    pieces, scores = en_vocab
    return Tokenizer.from_pieces(pieces, [-1.0] * len(scores))


@pytest.fixture(scope="session")
def en_tok_rounded(en_vocab) -> Tokenizer:
    """The English pieces with scores rounded to integers: exact ties between paths with
    different token counts and piece lengths (integer sums are exact in float64)."""
    pieces, scores = en_vocab
    return Tokenizer.from_pieces(pieces, [float(round(s)) for s in scores])


@pytest.fixture(scope="session")
def ja_tok_rounded(ja_vocab) -> Tokenizer:
    """The Japanese pieces with scores rounded to integers (exact ties, as above)."""
    pieces, scores = ja_vocab
    return Tokenizer.from_pieces(pieces, [float(round(s)) for s in scores])


@pytest.fixture(scope="session")
def run_tok() -> Tokenizer:
    """All 256 bytes plus runs of b"a" up to 8 bytes, with unequal scores: b"a" * n has
    as many paths as compositions of n into parts <= 8 (about 1.99 ** n)."""
    pieces = [bytes([b]) for b in range(256)] + [b"a" * k for k in range(2, 9)]
    scores = [-6.0] * 256 + [-1.5 * math.log(k + 1) for k in range(2, 9)]
    scores[ord("a")] = -1.0
    return Tokenizer.from_pieces(pieces, scores)


# Pieces that split UTF-8 characters ("あ" is e3 81 82) and span spaces.
SMALL_EXTRA = [b"the", b" the", b"he", b"\xe3\x81", b"\xe3\x81\x82", b"ab", b"abc", b"\xff\xfe"]


@pytest.fixture(scope="session")
def small_tok() -> Tokenizer:
    """All 256 bytes (scores in [-12, -8)) plus eight pieces that split UTF-8 characters
    and span spaces (scores in [-6, -1)), drawn with seed 0."""
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(-12, -8, 256), rng.uniform(-6, -1, len(SMALL_EXTRA))])
    return Tokenizer.from_pieces([bytes([b]) for b in range(256)] + SMALL_EXTRA, scores)


@pytest.fixture(scope="session")
def default_tok() -> Tokenizer:
    """The model shipped with the package (``Tokenizer.default()``)."""
    return Tokenizer.default()


@pytest.fixture(scope="session")
def run_python():
    """``run_python(*args, stdin=b"")``: runs ``python ARGS`` in a fresh process whose
    environment holds only PYTHONPATH, this checkout (no PATH, no PYTHONHASHSEED, nothing
    else inherited); returns the CompletedProcess, output captured as bytes."""

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], input=stdin, capture_output=True,
                              env={"PYTHONPATH": str(ROOT), "PATH": ""})

    return run
