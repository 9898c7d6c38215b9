"""Samples depend only on (seed, epoch, text index, draw): not on calls, threads, batch
splits or processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from viterbisample import Tokenizer

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "data" / "corpora"


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    data = (CORPORA / "en_botchan.txt").read_bytes().split(b"\n")[300:1500]
    assert sum(map(len, data)) > 64 * 1024  # big enough for the threaded path
    return data


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.default()


def test_same_seed_same_samples(tok, lines):
    a = tok.encode_batch(lines, alpha=0.2, seed=9, epoch=1)
    assert a == tok.encode_batch(lines, alpha=0.2, seed=9, epoch=1)
    assert tok.sample(lines[5], 0.2, 4, seed=9) == tok.sample(lines[5], 0.2, 4, seed=9)


def test_one_text_agrees_with_its_batch_and_sample_forms(tok, lines):
    for x in lines[:20]:
        one = tok.encode(x, alpha=0.3, seed=77)
        assert one == tok.encode_batch([x], alpha=0.3, seed=77)[0] == tok.sample(x, 0.3, 1, seed=77)[0]
        assert tok.sample_batch([x], 0.3, 3, seed=77)[0] == tok.sample(x, 0.3, 3, seed=77)


@pytest.mark.parametrize("alpha", [None, 0.1, 1.0])
def test_threads_and_batch_splits_do_not_change_samples(tok, lines, alpha):
    whole = tok.encode_batch(lines, alpha=alpha, seed=5, epoch=2, num_threads=1)
    for threads in (2, 3):
        assert tok.encode_batch(lines, alpha=alpha, seed=5, epoch=2, num_threads=threads) == whole
    for cut in (1, 77, 600):
        head = tok.encode_batch(lines[:cut], alpha=alpha, seed=5, epoch=2, num_threads=2)
        tail = tok.encode_batch(lines[cut:], alpha=alpha, seed=5, epoch=2, first_index=cut)
        assert head + tail == whole
    ids, offsets = tok.encode_batch_arrays(lines, alpha=alpha, seed=5, epoch=2, num_threads=2)
    assert [ids[offsets[k] : offsets[k + 1]].tolist() for k in range(len(lines))] == whole


def test_epochs_and_seeds_give_fresh_samples(tok, lines):
    texts = [x for x in lines if len(x) > 40][:200]
    base = tok.encode_batch(texts, alpha=0.1, seed=1, epoch=0)
    other_epoch = tok.encode_batch(texts, alpha=0.1, seed=1, epoch=1)
    other_seed = tok.encode_batch(texts, alpha=0.1, seed=2, epoch=0)
    assert sum(a != b for a, b in zip(base, other_epoch)) > 0.9 * len(texts)
    assert sum(a != b for a, b in zip(base, other_seed)) > 0.9 * len(texts)
    x = texts[0]
    assert tok.encode(x, alpha=0.1) != tok.encode(x, alpha=0.1)  # seed=None: OS entropy


def test_distinct_samples_and_stats_do_not_depend_on_threads(tok, lines):
    texts = lines[:300]
    a = tok.sample_distinct_batch(texts, 0.3, 3, seed=4, num_threads=1)
    b = tok.sample_distinct_batch(texts, 0.3, 3, seed=4, num_threads=2)
    assert a == b
    s1 = tok.stats_batch(texts, 0.5, num_threads=1, piece_counts=True)
    s2 = tok.stats_batch(texts, 0.5, num_threads=2, piece_counts=True)
    assert (s1["entropy"] == s2["entropy"]).all()


def test_two_processes_agree(tok, lines):
    code = (
        "import json, sys\n"
        "from viterbisample import Tokenizer\n"
        "lines = [l.encode() for l in json.loads(sys.stdin.read())]\n"
        "print(json.dumps(Tokenizer.default().encode_batch(lines, alpha=0.25, seed=123, epoch=4)))\n"
    )
    payload = json.dumps([x.decode("utf-8") for x in lines[:200]])
    outs = [
        subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, text=True,
                       check=True, env={"PYTHONPATH": str(ROOT), "PATH": ""}).stdout
        for _ in range(2)
    ]
    assert outs[0] == outs[1]
    assert json.loads(outs[0]) == tok.encode_batch(lines[:200], alpha=0.25, seed=123, epoch=4)
