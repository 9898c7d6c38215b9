"""The ``vsample`` command: a thin shell over the Python API.

    vsample encode [FILE ...] [--model M] [--format pieces|ids|jsonl] [--alpha A]
                   [--seed S] [--epoch E] [--samples K] [--threads T] [-o OUT]
    vsample decode [FILE ...] [--model M] [-o OUT]

Input is read as bytes, one text per line (LF; a CR before it is part of the text), so
input that is not UTF-8 is tokenized losslessly.  One output line per input line; with
``--samples K`` the K samples of a line are separated by tabs.  Sampled output depends only
on (seed, epoch, line number), never on threads or batching.  ``-o`` files are written
atomically.  Errors print one line to stderr and exit with status 1 (2 for bad usage).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence

from . import __version__
from .checks import check_alpha, check_count, check_uint64
from .model_io import atomic_write
from .tokenizer import Tokenizer, piece_display

BATCH_BYTES = 1 << 22
BATCH_LINES = 1 << 14


def _iter_lines(paths: Sequence[str]) -> Iterator[bytes]:
    """Lines of the files (or stdin), without their LF; a final line without LF counts."""
    streams: Iterable[BinaryIO]
    if not paths:
        streams = [sys.stdin.buffer]
    else:
        streams = (open(p, "rb") for p in paths)
    for f in streams:
        try:
            for line in f:
                yield line[:-1] if line.endswith(b"\n") else line
        finally:
            if f is not sys.stdin.buffer:
                f.close()


def _batches(lines: Iterator[bytes]) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= BATCH_BYTES or len(batch) >= BATCH_LINES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _check_inputs(paths: Sequence[str]) -> None:
    for p in paths:
        try:
            with open(p, "rb"):
                pass
        except FileNotFoundError:
            raise FileNotFoundError(f"input file not found: {p}") from None
        except IsADirectoryError:
            raise IsADirectoryError(f"input is a directory, not a file: {p}") from None


def _display(piece: bytes) -> str:
    """A piece for the pieces format: spaces as U+2581, control bytes as <0xNN>, so pieces
    never contain the space, tab or newline that separate them."""
    text = piece_display(piece).replace(" ", "\u2581")
    if any(ord(c) < 0x20 or c == "\x7f" for c in text):
        text = "".join(f"<0x{ord(c):02X}>" if ord(c) < 0x20 or c == "\x7f" else c for c in text)
    return text


def _formatter(tok: Tokenizer, fmt: str, many: bool) -> Callable[[list[list[int]]], bytes]:
    """Turns the samples of one line into its output line (with LF)."""
    if fmt == "ids":
        return lambda samples: ("\t".join(" ".join(map(str, s)) for s in samples) + "\n").encode()
    if fmt == "pieces":
        table = list(tok.special_tokens) + [_display(p) for p in tok.model.pieces]
        return lambda samples: (
            "\t".join(" ".join(table[i] for i in s) for s in samples) + "\n"
        ).encode("utf-8")
    if many:
        return lambda samples: (json.dumps({"samples": samples}) + "\n").encode()
    return lambda samples: (json.dumps({"ids": samples[0]}) + "\n").encode()


def _write_output(path: str | None, produce: Callable[[BinaryIO], None]) -> None:
    if path is None or path == "-":
        produce(sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        atomic_write(path, produce)


def _load_model(path: str | None) -> Tokenizer:
    return Tokenizer.default() if path is None else Tokenizer.load(path)


def cmd_encode(args: argparse.Namespace) -> None:
    alpha = None if args.alpha is None else check_alpha(args.alpha, "--alpha")
    samples = check_count(args.samples, "--samples", 1) if args.samples is not None else None
    if samples is not None and alpha is None:
        raise ValueError("--samples needs --alpha (Viterbi has one segmentation per line)")
    seed = check_uint64(args.seed, "--seed")
    epoch = check_uint64(args.epoch, "--epoch")
    threads = None if args.threads is None else check_count(args.threads, "--threads", 1)
    _check_inputs(args.files)
    tok = _load_model(args.model)
    fmt = _formatter(tok, args.format, samples is not None)

    def produce(out: BinaryIO) -> None:
        index = 0
        for batch in _batches(_iter_lines(args.files)):
            if samples is None:
                rows = [[ids] for ids in tok.encode_batch(
                    batch, alpha=alpha, seed=seed, epoch=epoch, num_threads=threads,
                    first_index=index)]
            else:
                rows = tok.sample_batch(
                    batch, alpha, samples, seed=seed, epoch=epoch, num_threads=threads,
                    first_index=index)
            out.write(b"".join(fmt(r) for r in rows))
            index += len(batch)

    _write_output(args.output, produce)


def cmd_decode(args: argparse.Namespace) -> None:
    _check_inputs(args.files)
    tok = _load_model(args.model)

    def produce(out: BinaryIO) -> None:
        for number, line in enumerate(_iter_lines(args.files), 1):
            first = line.split(b"\t", 1)[0]
            try:
                ids = [int(x) for x in first.split()]
            except ValueError:
                raise ValueError(
                    f"line {number}: expected token ids separated by spaces, got {first[:60]!r}"
                ) from None
            try:
                out.write(tok.decode_bytes(ids) + b"\n")
            except ValueError as exc:
                raise ValueError(f"line {number}: {exc}") from None

    _write_output(args.output, produce)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vsample",
        description="Exact Unigram tokenization: Viterbi decoding and perfect sampling.",
    )
    parser.add_argument("--version", action="version", version=f"vsample {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encode", help="tokenize lines of text")
    enc.add_argument("files", nargs="*", help="input files (default: stdin)")
    enc.add_argument("--model", help="model file (default: the model shipped with the package)")
    enc.add_argument("--format", choices=("pieces", "ids", "jsonl"), default="pieces")
    enc.add_argument("--alpha", type=float, help="sample with this alpha (default: Viterbi)")
    enc.add_argument("--seed", type=int, default=0, help="random seed for sampling (default 0)")
    enc.add_argument("--epoch", type=int, default=0, help="epoch number: a fresh sample per epoch")
    enc.add_argument("--samples", type=int, help="K samples per line, tab-separated")
    enc.add_argument("--threads", type=int, help="worker threads (default: all cores)")
    enc.add_argument("-o", "--output", help="output file, written atomically (default: stdout)")
    enc.set_defaults(func=cmd_encode)

    dec = sub.add_parser("decode", help="turn lines of ids (encode --format ids) back into text")
    dec.add_argument("files", nargs="*", help="input files (default: stdin)")
    dec.add_argument("--model", help="model file (default: the model shipped with the package)")
    dec.add_argument("-o", "--output", help="output file, written atomically (default: stdout)")
    dec.set_defaults(func=cmd_decode)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except BrokenPipeError:
        # The reader (e.g. `head`) went away: not an error.  Point stdout at devnull so
        # the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("vsample: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, OSError, RuntimeError) as exc:
        print(f"vsample: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
