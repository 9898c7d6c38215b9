"""The ``vsample`` command: a thin shell over the Python API.

    vsample encode [FILE ...] [--model M] [--format pieces|ids|jsonl|npy|megatron]
                   [--alpha A | --entropy-per-byte BITS [--seed S] [--epoch E]]
                   [--samples K | --nbest K] [--threads T] [-o OUT]
                   [--add-bos] [--no-eod] [--doc-sep line|blank] [--scheduler ADDRESS|local:N]
    vsample decode [FILE ...] [--model M] [-o OUT]
    vsample vocab  [--model M] [--format tsv|jsonl] [-o OUT]
    vsample convert IN OUT [--to viterbisample|huggingface]
    vsample stats  [FILE ...] [--model M] [--alpha A] [--format text|jsonl] [--sum]
    vsample train  FILE ... --vocab-size N -o MODEL [--split none|whitespace|gpt|REGEX]
                   [--max-piece-bytes B] [--split-digits] [--split-characters]
                   [--user-piece P ...] [--special-token T ...] [--max-lines N [--seed S]]
                   [--quiet]

``encode --format npy -o OUT.npy`` and ``--format megatron -o PREFIX`` write the ids of a
whole corpus as one flat array (see ``token_files``), streaming, with a progress line:
documents are the non-blank lines (or with ``--doc-sep blank`` the blocks between blank
lines), each followed by ``<eos>`` (unless ``--no-eod``) and with ``--add-bos`` preceded
by ``<bos>``.  These three options are for token files only.  ``-o NAME.bin`` or
``-o NAME.idx`` is the Megatron prefix NAME; ``-o NAME.npy`` with ``--format megatron`` is
refused.  ``--scheduler ADDRESS|local:N`` writes the same file on a Dask cluster
(``distributed``), reading the FILEs (or glob patterns) by byte blocks.

``encode`` also takes ``--nbest K`` (the K best segmentations), ``--samples K
--without-replacement`` (K distinct samples) and ``--entropy-per-byte BITS`` (sample with
the alpha calibrated to that entropy on the first batch of lines) instead of ``--alpha``.

Input is read as bytes, one text per line (LF; a CR before it is part of the text), so
input that is not UTF-8 is tokenized losslessly.  One output line per input line, and the
output of ``encode`` (text formats) and ``decode`` ends with an LF exactly when the input
does (a last line without LF gives an output line without LF), so ``encode --format ids |
decode`` gives back the input byte for byte; with ``--samples K`` the K samples of a line
are separated by tabs.  Sampled output depends only on (seed, epoch, line number; for
token files, document number), never on threads or batching.  ``-o`` files are written
atomically.  Errors print one line to stderr and exit with status 1; bad usage (an unknown
option, ``--alpha x``, options that do not go together, or one that would change nothing,
such as ``--seed`` or ``--epoch`` without sampling) prints one line ``vsample CMD: error:
...`` and exits with 2.  Integers are ASCII digits; ``--alpha inf`` is the Viterbi path;
``--threads`` is at most 1024.  The progress line (on a terminal's stderr) ends at 100.0%,
whether the input's size is known or not.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import os
import re
import signal
import stat
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, NoReturn, Sequence

import numpy as np

from . import __version__
from .io.atomic import atomic_write, check_output_folder
from .checks import (
    INT32_MAX,
    INT64_MAX,
    MAX_THREADS,
    UINT64_MAX,
    check_alpha,
    check_count,
    check_num_threads,
    check_real,
    check_uint64,
)
from .lines import BATCH_LINES, LineWriter, Reading, batches, read_lines
from .model import DEFAULT_SPECIAL_TOKENS, MAX_PIECE_BYTES
from .progress import Progress
from .token_files import document_markers, megatron_prefix, write_token_file
from .io.sentencepiece import load_sentencepiece
from .sentencepiece_tokenizer import SentencePieceTokenizer
from .tokenizer import Tokenizer

TOKEN_FILE_FORMATS = ("npy", "megatron")


class _UsageError(Exception):
    """Options that do not go together, or one that would change nothing: reported like
    argparse's own errors, one line ``vsample CMD: error: ...`` and status 2."""


def _check_inputs(paths: Sequence[str]) -> None:
    for p in paths:
        try:
            with open(p, "rb"):
                pass
        except FileNotFoundError:
            raise FileNotFoundError(f"input file not found: {p}") from None
        except IsADirectoryError:
            raise IsADirectoryError(f"input is a directory, not a file: {p}") from None


def _formatter(tok: Tokenizer, fmt: str, key: str | None) -> Callable[[list[list[int]], list[dict] | None], bytes]:
    """Turns the segmentations of one line into its output line (with LF).

    ``key`` is None for one segmentation per line, else the jsonl key of the list
    ("samples" or "nbest"); jsonl entries then carry the extra fields given per row.
    """
    if fmt == "ids":
        return lambda segs, extra: ("\t".join(" ".join(map(str, s)) for s in segs) + "\n").encode()
    if fmt == "pieces":
        shown: dict[int, str] = {i: name for i, name in enumerate(tok.special_tokens)}

        def piece(i: int) -> str:  # rendered on first use: most of a vocabulary never is
            text = shown.get(i)
            if text is None:
                text = shown[i] = tok.id_to_piece(i)
            return text

        return lambda segs, extra: (
            "\t".join(" ".join(map(piece, s)) for s in segs) + "\n"
        ).encode("utf-8")
    if key is None:
        return lambda segs, extra: (json.dumps({"ids": segs[0]}) + "\n").encode()
    if key == "samples":
        return lambda segs, extra: (json.dumps({key: segs if extra is None else [
            {"ids": s, **e} for s, e in zip(segs, extra)]}) + "\n").encode()
    return lambda segs, extra: (json.dumps({key: [
        {"ids": s, **e} for s, e in zip(segs, extra or [{}] * len(segs))]}) + "\n").encode()


def _input_size(paths: Sequence[str]) -> int | None:
    """The bytes the input holds when every input is a regular file (stdin too, when it
    is redirected from one); None when that is unknown (a pipe, a FIFO, a terminal)."""
    if not paths:
        try:
            st = os.fstat(sys.stdin.fileno())
            return st.st_size - sys.stdin.buffer.tell() if stat.S_ISREG(st.st_mode) else None
        except (AttributeError, OSError, ValueError):  # no stdin, or not a real file (tests)
            return None
    sizes = [os.stat(p) for p in paths]
    return sum(st.st_size for st in sizes) if all(stat.S_ISREG(st.st_mode) for st in sizes) else None


def _progress_for(args: argparse.Namespace, reading: Reading) -> Callable[..., None]:
    """``report(tokens_done, final=False)``: the encoding's progress line on a terminal's
    stderr, unless --quiet or the output is that terminal.  Its bytes are the input's as
    read (``reading``), LFs and blank lines included, so the share ends at the input's
    size; ``final`` shows 100.0% (``Progress.throughput``)."""
    to_terminal = (args.output is None or args.output == "-") and sys.stdout.isatty()
    total = _input_size(args.files)
    progress = Progress(sys.stderr.isatty() and not args.quiet and not to_terminal)

    def report(tokens_done: int, final: bool = False) -> None:
        progress.throughput(reading.bytes, tokens_done, total, final)
        if final:
            progress.close()

    return report


def _write_output(path: str | None, produce: Callable[[BinaryIO], None]) -> None:
    if path is None or path == "-" or _is_stdout(path):
        out = _stdout()
        produce(out)
        out.flush()
    else:
        atomic_write(path, produce)


def _stdout() -> BinaryIO:
    # Started with stdout closed (`>&-`), Python sets sys.stdout to None, and descriptor 1
    # may since have been reused by a file this process opened: never write to it then.
    if sys.stdout is None:
        raise OSError("standard output is closed")
    return sys.stdout.buffer


def _is_stdout(path: str) -> bool:
    """Whether ``path`` names this process's standard output (``-o /dev/stdout``): it is
    then written through the open descriptor like ``-o -`` (so `>>` appends), not replaced."""
    if sys.stdout is None:
        return False
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError):  # no such file, or stdout is not a real file (tests)
        return False


def _load_model(path: str | None) -> Tokenizer:
    """The model, with its encoding kernel ready: the first run on a machine compiles it
    (Numba caches the machine code), which on a terminal is said rather than waited out
    in silence."""
    tok = Tokenizer.default() if path is None else Tokenizer.load(path)
    with _compile_notice():
        tok.encode_batch([b"ready"])  # the batch kernel, which every command runs
    return tok


@contextmanager
def _compile_notice(after: float = 0.5) -> Iterator[None]:
    """One line on a terminal's stderr if the block takes longer than a cached kernel
    load does (``after`` seconds): then it is compiling."""
    if not sys.stderr.isatty():
        yield
        return
    timer = threading.Timer(after, lambda: print("vsample: compiling kernels, first run only",
                                                 file=sys.stderr, flush=True))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _calibrate(tok: Tokenizer, lines: list[bytes], bits: float, threads: int | None) -> float:
    alpha = tok.alpha_for_entropy(lines, bits, num_threads=threads)
    print(
        f"vsample: alpha = {alpha:.6g} gives {bits:g} bits of entropy per byte on the first "
        f"{len(lines)} lines",
        file=sys.stderr,
    )
    return alpha


def _check_encode_usage(args: argparse.Namespace) -> None:
    """Raise ``_UsageError`` for encode options that do not go together, or that would
    change nothing (a pipeline that asks for samples and silently gets the Viterbi path
    is worse than one that stops)."""
    sampling = args.alpha is not None or args.entropy_per_byte is not None
    if args.alpha is not None and args.entropy_per_byte is not None:
        raise _UsageError("give --alpha or --entropy-per-byte, not both")
    for option in ("--seed", "--epoch"):
        if getattr(args, option[2:]) is not None and not sampling:
            raise _UsageError(f"{option} keys sampled segmentations only: give --alpha or "
                              "--entropy-per-byte too (without them the output is the Viterbi path)")
    if args.samples is not None and not sampling:
        raise _UsageError("--samples needs --alpha or --entropy-per-byte")
    if args.without_replacement and args.samples is None:
        raise _UsageError("--without-replacement needs --samples K")
    if args.nbest is not None and sampling:
        raise _UsageError("--nbest lists the best segmentations; it does not combine with sampling")
    if args.scheduler is not None:
        if args.format not in TOKEN_FILE_FORMATS:
            raise _UsageError("--scheduler is for token files: give --format npy or megatron")
        if not args.files:
            raise _UsageError("--scheduler reads files (its workers cannot read stdin): give FILE ...")
        if args.doc_sep == "blank":
            raise _UsageError("--scheduler cuts the input at line ends: it takes --doc-sep line only")
        if args.scheduler.startswith("local") and not re.fullmatch(r"local:[1-9][0-9]{0,3}", args.scheduler):
            raise _UsageError(f"--scheduler local:N takes N from 1 to 9999 worker processes, got "
                              f"{args.scheduler[:40]!r}")
    if args.format not in TOKEN_FILE_FORMATS:
        given = [name for name, on in (("--add-bos", args.add_bos), ("--no-eod", args.no_eod),
                                       ("--doc-sep", args.doc_sep is not None)) if on]
        if given:
            raise _UsageError(f"{given[0]} is for token files (--format npy or megatron); the text "
                              "formats keep one output line per input line, with no markers")
        return
    if args.output in (None, "-"):
        raise _UsageError(f"--format {args.format} writes files: give -o PATH"
                          + (" (a prefix for PATH.bin and PATH.idx)" if args.format == "megatron" else ""))
    if args.samples is not None or args.nbest is not None:
        raise _UsageError(f"--format {args.format} writes one segmentation per document")
    if args.format == "megatron":
        try:
            megatron_prefix(args.output)
        except ValueError as exc:
            raise _UsageError(str(exc)) from None


def cmd_encode(args: argparse.Namespace) -> None:
    # Values first (status 1, as the API's checks), then how the options combine (status 2).
    alpha = None if args.alpha is None else check_alpha(args.alpha, "--alpha")
    bits = None
    if args.entropy_per_byte is not None:
        bits = check_real(args.entropy_per_byte, "--entropy-per-byte")
    samples = check_count(args.samples, "--samples", 1, INT64_MAX) if args.samples is not None else None
    nbest = check_count(args.nbest, "--nbest", 1, INT32_MAX) if args.nbest is not None else None
    seed = check_uint64(0 if args.seed is None else args.seed, "--seed")
    epoch = check_uint64(0 if args.epoch is None else args.epoch, "--epoch")
    threads = None if args.threads is None else check_num_threads(args.threads, "--threads")
    _check_encode_usage(args)
    if args.scheduler is not None:
        _encode_on_cluster(args, alpha, bits, seed, epoch, threads)
        return
    _check_inputs(args.files)
    if args.format in TOKEN_FILE_FORMATS:
        tok = _load_model(args.model)
        document_markers(tok, args.add_bos, not args.no_eod)  # one the model lacks: an error now
        reading = Reading()
        progress = _progress_for(args, reading)
        lines = read_lines(args.files, reading)
        if bits is not None:
            head = list(itertools.islice(lines, BATCH_LINES))
            alpha = _calibrate(tok, head, bits, threads)
            lines = itertools.chain(head, lines)
        summary = write_token_file(
            tok, lines, args.output, args.format, alpha=alpha, seed=seed, epoch=epoch,
            num_threads=threads, doc_sep=args.doc_sep or "line", append_eod=not args.no_eod,
            prepend_bos=args.add_bos,
            # The share counts the input as read, not the documents' text (summary["bytes"]).
            progress=lambda text_bytes, tokens: progress(tokens),
        )
        progress(summary["tokens"], final=True)
        return
    tok = _load_model(args.model)
    key = "nbest" if nbest is not None else "samples" if samples is not None else None
    fmt = _formatter(tok, args.format, key)

    def segment(batch: list[bytes], index: int, a: float | None) -> Iterator[tuple[list, list | None]]:
        options = dict(seed=seed, epoch=epoch, num_threads=threads, first_index=index)
        if nbest is not None:
            for found in tok.nbest_batch(batch, nbest, num_threads=threads):
                yield [ids for ids, _ in found], [{"score": sc} for _, sc in found]
        elif samples is None:
            for ids in tok.encode_batch(batch, alpha=a, **options):
                yield [ids], None
        elif args.without_replacement:
            for found in tok.sample_distinct_batch(batch, a, samples, **options):
                yield [ids for ids, _, _ in found], [
                    {"log_prob": lp, "inclusion": inc} for _, lp, inc in found]
        else:
            for segs in tok.sample_batch(batch, a, samples, **options):
                yield segs, None

    reading = Reading()
    progress = _progress_for(args, reading)

    def produce(out: BinaryIO) -> None:
        index = n_tokens = 0
        a = alpha
        lines = LineWriter(out)  # the output ends with LF exactly when the input does
        for batch in batches(read_lines(args.files, reading)):
            if bits is not None and a is None:
                a = _calibrate(tok, batch, bits, threads)
            rows = list(segment(batch, index, a))
            lines.write(b"".join(fmt(segs, extra) for segs, extra in rows))
            index += len(batch)
            n_tokens += sum(len(s) for segs, _ in rows for s in segs)
            progress(n_tokens)
        lines.finish(reading)
        progress(n_tokens, final=True)

    _write_output(args.output, produce)


def _encode_on_cluster(args: argparse.Namespace, alpha: float | None, bits: float | None,
                       seed: int, epoch: int, threads: int | None) -> None:
    """``encode --format npy|megatron --scheduler ADDRESS|local:N``: the same file, made by
    Dask workers (``distributed.encode_corpus``); inputs may be glob patterns."""
    if importlib.util.find_spec("distributed") is None:
        raise RuntimeError('--scheduler needs Dask: pip install "viterbisample[dask]"')
    from .distributed import cluster_client, encode_corpus, input_files

    files = input_files(args.files)
    tok = _load_model(args.model)
    document_markers(tok, args.add_bos, not args.no_eod)  # one the model lacks: an error now
    if bits is not None:  # calibrated on the lines a single process would use
        alpha = _calibrate(tok, list(itertools.islice(read_lines(files), BATCH_LINES)), bits, threads)
    with cluster_client(args.scheduler) as client:
        encode_corpus(tok, files, args.output, args.format, alpha=alpha, seed=seed, epoch=epoch,
                      add_bos=args.add_bos, add_eos=not args.no_eod, client=client,
                      num_threads=threads, progress=sys.stderr.isatty() and not args.quiet)


def cmd_stats(args: argparse.Namespace) -> None:
    alpha = check_alpha(args.alpha, "--alpha")
    threads = None if args.threads is None else check_num_threads(args.threads, "--threads")
    _check_inputs(args.files)
    tok = _load_model(args.model)
    with _compile_notice():  # its forward-backward kernels, on a first run
        tok.stats_batch([b"ready"], alpha)
    ln2 = math.log(2)

    def record(n_bytes: float, log_z: float, entropy: float, viterbi: float, expected: float) -> dict:
        return {
            "bytes": int(n_bytes),
            "log_z": log_z,
            "entropy": entropy,
            "entropy_bits_per_byte": entropy / n_bytes / ln2 if n_bytes else 0.0,
            "viterbi_length": int(viterbi),
            "expected_length": expected,
        }

    def show(rec: dict) -> bytes:
        if args.format == "jsonl":
            return (json.dumps(rec) + "\n").encode()
        return ("\t".join(f"{k}={v:.6f}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in rec.items()) + "\n").encode()

    def produce(out: BinaryIO) -> None:
        totals = np.zeros(5)
        for batch in batches(read_lines(args.files)):
            st = tok.stats_batch(batch, alpha, num_threads=threads, viterbi_length=True)
            cols = np.stack([
                np.array([len(b) for b in batch], np.float64), st["log_z"], st["entropy"],
                st["viterbi_length"].astype(np.float64), st["expected_length"],
            ], axis=1)
            if args.sum:
                totals += cols.sum(axis=0)
            else:
                out.write(b"".join(show(record(*row)) for row in cols.tolist()))
        if args.sum:
            out.write(show(record(*totals.tolist())))

    _write_output(args.output, produce)


def cmd_train(args: argparse.Namespace) -> None:
    from .train import train

    if args.seed is not None and args.max_lines is None:
        raise _UsageError("--seed seeds the --max-lines sample only: give --max-lines N too")
    _check_inputs(args.files)
    if args.output in (None, "-"):
        raise ValueError("vsample train writes a model file: give -o MODEL")
    check_output_folder(args.output)  # now, not after minutes of training
    threads = None if args.threads is None else check_count(args.threads, "--threads", 1)
    tok = train(
        [Path(p) for p in args.files], check_count(args.vocab_size, "--vocab-size", 1),
        max_piece_bytes=args.max_piece_bytes, split=None if args.split == "none" else args.split,
        whole_characters=not args.split_characters, split_digits=args.split_digits,
        user_pieces=args.user_piece or (),
        special_tokens=args.special_token if args.special_token is not None else DEFAULT_SPECIAL_TOKENS,
        max_lines=args.max_lines, seed=args.seed or 0, num_threads=threads,
        progress=False if args.quiet else None,
    )
    tok.save(args.output)
    if not args.quiet and sys.stderr.isatty():
        print(f"vsample train: wrote {args.output} ({tok.vocab_size} ids)", file=sys.stderr)


def cmd_decode(args: argparse.Namespace) -> None:
    _check_inputs(args.files)
    tok = _load_model(args.model)

    def produce(out: BinaryIO) -> None:
        reading = Reading()
        lines = LineWriter(out)  # no LF after the last line if the ids had none there
        for number, line in enumerate(read_lines(args.files, reading), 1):
            first = line.split(b"\t", 1)[0]
            fields = first.split()
            # ASCII digits only: int() would also take "1_000", "+1" and other scripts' digits.
            if not all(x.isdigit() for x in fields):
                raise ValueError(
                    f"line {number}: expected token ids (ASCII digits) separated by spaces, "
                    f"got {first[:60]!r}"
                )
            long = [x for x in fields if len(x.lstrip(b"0")) > 18]  # beyond int64, and int()'s digit limit
            if long:
                raise ValueError(
                    f"line {number}: token id {long[0][:30].decode()}{'...' if len(long[0]) > 30 else ''} "
                    f"is out of range for a vocabulary of {tok.vocab_size} ids"
                )
            try:
                lines.write(tok.decode_bytes([int(x) for x in fields]) + b"\n")
            except ValueError as exc:
                raise ValueError(f"line {number}: {exc}") from None
        lines.finish(reading)

    _write_output(args.output, produce)


def cmd_vocab(args: argparse.Namespace) -> None:
    """One line per id: the id, the piece as ``id_to_piece`` shows it, and its score
    (tab-separated, or JSON lines with ``--format jsonl``)."""
    tok = Tokenizer.default() if args.model is None else Tokenizer.load(args.model)

    def produce(out: BinaryIO) -> None:
        for i in range(tok.vocab_size):
            piece, score = tok.id_to_piece(i), tok.score(i)
            if args.format == "jsonl":
                line = json.dumps({"id": i, "piece": piece, "score": score}, ensure_ascii=False)
            else:
                line = f"{i}\t{piece}\t{score!r}"
            out.write(line.encode("utf-8", "surrogateescape") + b"\n")

    _write_output(args.output, produce)


def cmd_convert(args: argparse.Namespace) -> None:
    """A model to another format: viterbisample's model file, or a Hugging Face
    ``tokenizer.json`` (``--to huggingface``, or an output named ``tokenizer.json``; a
    SentencePiece ``.model`` as Hugging Face's SentencePiece conversion writes it)."""
    target = args.to or ("huggingface" if Path(args.output).name.endswith("tokenizer.json") else "viterbisample")
    tok = Tokenizer.load(args.input)
    if type(tok) is SentencePieceTokenizer and target != "huggingface":
        # Its pieces, scores and normalizer, spelled in bytes: viterbisample's own ids.
        tok = load_sentencepiece(args.input)
        print(f"vsample convert: {args.output} has viterbisample's ids ({tok.vocab_size}), not the "
              ".model's: keep the .model for its ids", file=sys.stderr)
    if target == "huggingface":
        tok.save_huggingface(args.output)
    else:
        tok.save(args.output)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, ``vsample encode: error: argument --alpha: invalid
    float value: 'x'`` (exit status 2), instead of the usage block then the error;
    ``--help`` still shows the usage.  Subcommand parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}".replace("\n", " ") + "\n")


def _int(text: str) -> int:
    """An integer option: ASCII digits with an optional sign (``int()`` would also take
    ``1_000`` and digits of other scripts, such as ``١٢``)."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(text)
    return int(text)


def _int_from(low: int, high: int) -> Callable[[str], int]:
    """``_int`` that must lie in [low, high]."""

    def parse(text: str) -> int:
        value = _int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}, got {text[:40]}")
        return value

    parse.__name__ = "int"  # argparse names the type in "invalid int value"
    return parse


def _float(text: str) -> float:
    """A real option: ASCII only (no ``_`` separators, no other scripts' digits), and not
    a finite number too large for a float (``1e400``), which float() makes inf."""
    if not text.isascii() or "_" in text:
        raise ValueError(text)
    value = float(text)
    if math.isinf(value) and text.strip().lstrip("+-").lower() not in ("inf", "infinity"):
        raise argparse.ArgumentTypeError(
            f"{text[:40]} is too large for a float (the largest is {sys.float_info.max!r})"
        )
    return value


_int.__name__ = "int"
_float.__name__ = "float"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vsample",
        description="Exact Unigram tokenization: Viterbi decoding and perfect sampling.",
    )
    parser.add_argument("--version", action="version", version=f"vsample {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encode", help="tokenize lines of text")
    enc.add_argument("files", nargs="*", help="input files (default: stdin)")
    enc.add_argument("--model", help="model file (default: the model shipped with the package)")
    enc.add_argument("--format", choices=("pieces", "ids", "jsonl", *TOKEN_FILE_FORMATS), default="pieces",
                     help="text formats: one line per input line; npy / megatron: all ids of the "
                     "corpus in one flat array file, an <eos> after each document (-o required; "
                     "for megatron a prefix for PREFIX.bin and PREFIX.idx: -o NAME.bin or NAME.idx "
                     "is the prefix NAME, -o NAME.npy is refused)")
    enc.add_argument("--doc-sep", choices=("line", "blank"),
                     help="npy/megatron documents: each line (default), or blocks separated by "
                     "blank lines; blank lines are never documents")
    enc.add_argument("--no-eod", action="store_true", help="npy/megatron: no <eos> after documents")
    enc.add_argument("--add-bos", action="store_true",
                     help="npy/megatron: the model's <bos> (or <s>) before each document")
    enc.add_argument("--alpha", type=_float,
                     help="sample with this alpha (default: Viterbi; inf is Viterbi too)")
    enc.add_argument("--seed", type=_int, help="random seed for sampling (default 0; needs --alpha "
                     "or --entropy-per-byte)")
    enc.add_argument("--epoch", type=_int, help="epoch number: a fresh sample per epoch (default 0; "
                     "needs --alpha or --entropy-per-byte)")
    enc.add_argument("--samples", type=_int, help="K samples per line, tab-separated")
    enc.add_argument("--without-replacement", action="store_true",
                     help="with --samples K: K distinct samples (Gumbel-top-k, exact)")
    enc.add_argument("--nbest", type=_int, help="the K best segmentations per line, tab-separated")
    enc.add_argument("--entropy-per-byte", type=_float, metavar="BITS",
                     help="sample with the alpha that gives BITS bits of entropy per byte, "
                     "calibrated once on the first batch of lines (printed to stderr)")
    enc.add_argument("--threads", type=_int,
                     help=f"worker threads, at most {MAX_THREADS} (default: all cores)")
    enc.add_argument("-o", "--output", help="output file, written atomically (default: stdout)")
    enc.add_argument("--scheduler", metavar="ADDRESS|local:N",
                     help="npy/megatron: encode on a Dask cluster, the scheduler at ADDRESS or N local "
                     "worker processes; the same file as without it (needs viterbisample[dask]; "
                     "FILE may be a glob pattern)")
    enc.add_argument("-q", "--quiet", action="store_true", help="no progress display on stderr")
    enc.set_defaults(func=cmd_encode)

    st = sub.add_parser("stats", help="log Z, entropy and lengths of q_alpha per line")
    st.add_argument("files", nargs="*", help="input files (default: stdin)")
    st.add_argument("--model", help="model file (default: the model shipped with the package)")
    st.add_argument("--alpha", type=_float, default=1.0, help="alpha of q_alpha (default 1)")
    st.add_argument("--format", choices=("text", "jsonl"), default="text")
    st.add_argument("--sum", action="store_true", help="one line of totals instead of one per line")
    st.add_argument("--threads", type=_int,
                    help=f"worker threads, at most {MAX_THREADS} (default: all cores)")
    st.add_argument("-o", "--output", help="output file, written atomically (default: stdout)")
    st.set_defaults(func=cmd_stats)

    tr = sub.add_parser("train", help="train a Unigram vocabulary on text files")
    tr.add_argument("files", nargs="+", help="training files (one text per line)")
    tr.add_argument("--vocab-size", type=_int_from(1, INT32_MAX), required=True,
                    help="ids in the model, special tokens included")
    tr.add_argument("-o", "--output", required=True, help="model file to write (atomically)")
    tr.add_argument("--max-piece-bytes", type=_int_from(1, MAX_PIECE_BYTES), default=24,
                    help=f"longest piece in bytes, at most {MAX_PIECE_BYTES} (default 24)")
    tr.add_argument("--split", default="none",
                    help="pre-tokenization: none (default; pieces may span spaces), whitespace, gpt, "
                    "or a regex whose matches are the units")
    tr.add_argument("--split-digits", action="store_true", help="no multi-byte piece holds a digit")
    tr.add_argument("--split-characters", action="store_true",
                    help="let multi-byte pieces start or end inside a UTF-8 character")
    tr.add_argument("--user-piece", action="append", help="a piece always kept (repeatable)")
    tr.add_argument("--special-token", action="append",
                    help="a special token name, counted in the size (repeatable; default <pad> <bos> <eos>)")
    tr.add_argument("--max-lines", type=_int_from(1, INT64_MAX),
                    help="train on a seeded random sample of this many lines")
    tr.add_argument("--seed", type=_int_from(0, UINT64_MAX),
                    help="seed of the --max-lines sample (default 0; needs --max-lines)")
    tr.add_argument("--threads", type=_int_from(1, MAX_THREADS),
                    help=f"worker threads, at most {MAX_THREADS} (default: all cores)")
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    tr.set_defaults(func=cmd_train)

    dec = sub.add_parser("decode", help="turn lines of ids (encode --format ids) back into text")
    dec.add_argument("files", nargs="*", help="input files (default: stdin)")
    dec.add_argument("--model", help="model file (default: the model shipped with the package)")
    dec.add_argument("-o", "--output", help="output file, written atomically (default: stdout)")
    dec.set_defaults(func=cmd_decode)

    voc = sub.add_parser("vocab", help="list the vocabulary: id, piece and score per line")
    voc.add_argument("--model", help="model file (default: the model shipped with the package)")
    voc.add_argument("--format", choices=("tsv", "jsonl"), default="tsv")
    voc.add_argument("-o", "--output", help="output file, written atomically (default: stdout)")
    voc.set_defaults(func=cmd_vocab)

    conv = sub.add_parser("convert", help="write a model in another format",
                          description="IN: a viterbisample model file, a SentencePiece .model or a "
                                      "Hugging Face tokenizer.json (byte-level Unigram).  OUT: a "
                                      "viterbisample model file, or with --to huggingface (or a name "
                                      "ending in tokenizer.json) a Hugging Face tokenizer.json.")
    conv.add_argument("input", metavar="IN")
    conv.add_argument("output", metavar="OUT")
    conv.add_argument("--to", choices=("viterbisample", "huggingface"))
    conv.set_defaults(func=cmd_convert)
    return parser


class _Terminated(BaseException):
    """SIGTERM or SIGHUP as an exception: the stack unwinds, so temporary files go."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_unwind() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise ``_Terminated`` (their default kills the process
    on the spot, leaving temporary files).  SIGINT already raises KeyboardInterrupt.  A
    signal the parent set to be ignored (``nohup``) stays ignored; a second one kills."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (main() called from a thread)
        return

    def unwind(signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_DFL)
        raise _Terminated(signum)

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, unwind)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    # Numba probes for BLAS when it first compiles or loads a kernel, by importing SciPy's
    # BLAS bindings; where SciPy is installed that import alone costs ~0.4 s of the
    # command's start-up.  vsample uses no linear algebra, so in this process (unless
    # something already imported SciPy's linear algebra) the probe is told there is none.
    if "scipy.linalg" not in sys.modules:
        sys.modules["scipy.linalg.cython_blas"] = None  # type: ignore[assignment]
    parser = build_parser()
    args = parser.parse_args(argv)
    if sys.stdout is None and getattr(args, "output", None) in (None, "-"):
        # Started with stdout closed (`>&-`): fail now, not after the work.
        print("vsample: error: standard output is closed; give -o FILE", file=sys.stderr)
        return 1
    try:
        with _signals_unwind():
            args.func(args)
    except BrokenPipeError:
        # The reader (e.g. `head`) went away: not an error.  Point stdout at devnull so
        # the interpreter's final flush does not raise again (the pipe may also have been
        # a FIFO given to -o, with stdout closed).
        if sys.stdout is not None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("vsample: interrupted", file=sys.stderr)
        return 130
    except _Terminated as exc:
        return 128 + exc.signum  # the shell's convention for "killed by this signal"
    except _UsageError as exc:
        parser.exit(2, f"vsample {args.command}: error: {exc}\n")
    except (ValueError, TypeError, KeyError, OSError, RuntimeError) as exc:
        print(f"vsample: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
