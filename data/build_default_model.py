"""Rebuild the model shipped in ``viterbisample/data/default_model.json``.

    python data/build_default_model.py [CORPORA_DIR] [--size 32000]

CORPORA_DIR defaults to ``../shared/data/corpora`` next to the repository.  The model is
learned from an equal-byte mix of the English, Japanese, Chinese and Python corpora:
frequent byte substrings seed the vocabulary, then rounds of Viterbi re-estimation
(segment the mix, re-score every piece by the log of its count, drop unused pieces)
sharpen it.  The output is deterministic for a given corpus directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from viterbisample import Tokenizer  # noqa: E402
from viterbisample.train.seeds import count_pretokens, frequent_substrings  # noqa: E402

CORPORA = [
    "en_python_docs.txt",
    "en_botchan.txt",
    "ja_wagahaiwa_nekodearu.txt",
    "zh_fortunes.txt",
    "zh_debian_reference.txt",
    "code_python_stdlib.txt",
]
BYTES_PER_LANGUAGE = 2_000_000


def corpus_mix(folder: Path) -> list[bytes]:
    by_lang: dict[str, list[bytes]] = {}
    for name in CORPORA:
        lines = (folder / name).read_bytes().split(b"\n")
        by_lang.setdefault(name.split("_")[0], []).extend(lines)
    mix: list[bytes] = []
    for lang, lines in sorted(by_lang.items()):
        taken = 0
        # Every k-th line, so each language's sample spans its whole corpus.
        step = max(1, sum(map(len, lines)) // BYTES_PER_LANGUAGE)
        for line in lines[::step]:
            mix.append(line)
            taken += len(line)
            if taken >= BYTES_PER_LANGUAGE:
                break
    return mix


def reestimate(tok: Tokenizer, lines: list[bytes], rounds: int) -> Tokenizer:
    """Viterbi re-estimation: score = log(count / total) over the segmented lines."""
    for _ in range(rounds):
        ids, _ = tok.encode_batch_arrays(lines)
        counts = np.bincount(ids, minlength=tok.vocab_size).astype(np.float64)
        s = tok.model.num_special
        keep = [i for i, p in enumerate(tok.model.pieces) if len(p) == 1 or counts[s + i] > 0]
        pieces = [tok.model.pieces[i] for i in keep]
        c = np.array([counts[s + i] for i in keep]) + 0.5  # unseen bytes stay possible
        scores = np.log(c / c.sum())
        tok = Tokenizer.from_pieces(pieces, scores)
    return tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpora", nargs="?", default=str(ROOT.parent / "shared" / "data" / "corpora"))
    ap.add_argument("--size", type=int, default=32000)
    ap.add_argument("-o", "--output", default=str(ROOT / "viterbisample" / "data" / "default_model.json"))
    args = ap.parse_args()
    lines = corpus_mix(Path(args.corpora))
    pieces, scores = frequent_substrings(count_pretokens(lines), int(args.size * 1.5), max_len=16)
    tok = reestimate(Tokenizer.from_pieces(pieces, scores), lines, rounds=4)
    tok.save(args.output)
    total = sum(map(len, lines))
    ids, _ = tok.encode_batch_arrays(lines)
    print(f"{tok.vocab_size} ids, {total / len(ids):.3f} bytes/token on the {total / 1e6:.1f} MB mix "
          f"-> {args.output}")


if __name__ == "__main__":
    main()
