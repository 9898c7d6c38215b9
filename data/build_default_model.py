"""Rebuild the model shipped in ``viterbisample/data/default_model.json``.

    python data/build_default_model.py [CORPORA_DIR] [--size 32000]

CORPORA_DIR defaults to ``../shared/data/corpora`` next to the repository.  The model is
trained by ``viterbisample.train`` (defaults: no pre-tokenization, pieces of up to 24
bytes, whole UTF-8 characters) on a mix of the shared corpora: English prose, technical
English, Japanese, Chinese and Python code, in the shares of ``MIX``; each corpus gives
every k-th line, so its share spans the whole file.  The output is deterministic for a
given corpus directory, and the script prints the compression on the mix.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from viterbisample import train  # noqa: E402

# corpus -> bytes it contributes to the mix.  Chinese and Japanese characters take three
# bytes each, so they get about as many bytes as English and code together; otherwise
# long English and code pieces take most of the vocabulary.
MIX = {
    "en_botchan.txt": 300_000,  # the whole book
    "en_python_docs.txt": 1_500_000,
    "ja_wagahaiwa_nekodearu.txt": 1_200_000,  # the whole book
    "zh_fortunes.txt": 2_100_000,  # all of it
    "zh_debian_reference.txt": 900_000,  # the whole manual
    "code_python_stdlib.txt": 1_500_000,
}


def corpus_mix(folder: Path) -> list[bytes]:
    mix: list[bytes] = []
    for name, budget in MIX.items():
        lines = [line for line in (folder / name).read_bytes().split(b"\n") if line]
        step = max(1, sum(map(len, lines)) // budget)
        mix.extend(lines[::step])
    return mix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpora", nargs="?", default=str(ROOT.parent / "shared" / "data" / "corpora"))
    ap.add_argument("--size", type=int, default=32000)
    ap.add_argument("-o", "--output", default=str(ROOT / "viterbisample" / "data" / "default_model.json"))
    args = ap.parse_args()
    lines = corpus_mix(Path(args.corpora))
    start = time.perf_counter()
    tok = train(lines, args.size)
    seconds = time.perf_counter() - start
    tok.save(args.output)
    total = sum(map(len, lines))
    ids, _ = tok.encode_batch_arrays(lines)
    print(f"{tok.vocab_size} ids in {seconds:.1f} s, {total / len(ids):.3f} bytes/token on the "
          f"{total / 1e6:.1f} MB mix -> {args.output}")


if __name__ == "__main__":
    main()
