"""Samples depend only on (seed, epoch, text index, draw): not on calls, threads, batch
splits or processes."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def lines(en_lines) -> list[bytes]:
    data = en_lines[300:1500]
    assert sum(map(len, data)) > 64 * 1024  # big enough for the threaded path
    return data


def test_same_seed_same_samples(default_tok, lines):
    a = default_tok.encode_batch(lines, alpha=0.2, seed=9, epoch=1)
    assert a == default_tok.encode_batch(lines, alpha=0.2, seed=9, epoch=1)
    assert default_tok.sample(lines[5], 0.2, 4, seed=9) == default_tok.sample(lines[5], 0.2, 4, seed=9)


def test_one_text_agrees_with_its_batch_and_sample_forms(default_tok, lines):
    for x in lines[:20]:
        one = default_tok.encode(x, alpha=0.3, seed=77)
        assert one == default_tok.encode_batch([x], alpha=0.3, seed=77)[0]
        assert one == default_tok.sample(x, 0.3, 1, seed=77)[0]
        assert default_tok.sample_batch([x], 0.3, 3, seed=77)[0] == default_tok.sample(x, 0.3, 3, seed=77)


@pytest.mark.parametrize("alpha", [None, 0.1, 1.0])
def test_threads_and_batch_splits_do_not_change_samples(default_tok, lines, alpha):
    whole = default_tok.encode_batch(lines, alpha=alpha, seed=5, epoch=2, num_threads=1)
    for threads in (2, 3):
        assert default_tok.encode_batch(lines, alpha=alpha, seed=5, epoch=2, num_threads=threads) == whole
    for cut in (1, 77, 600):
        head = default_tok.encode_batch(lines[:cut], alpha=alpha, seed=5, epoch=2, num_threads=2)
        tail = default_tok.encode_batch(lines[cut:], alpha=alpha, seed=5, epoch=2, first_index=cut)
        assert head + tail == whole
    ids, offsets = default_tok.encode_batch_arrays(lines, alpha=alpha, seed=5, epoch=2, num_threads=2)
    assert [ids[offsets[k] : offsets[k + 1]].tolist() for k in range(len(lines))] == whole


def test_epochs_and_seeds_give_fresh_samples(default_tok, lines):
    texts = [x for x in lines if len(x) > 40][:200]
    base = default_tok.encode_batch(texts, alpha=0.1, seed=1, epoch=0)
    other_epoch = default_tok.encode_batch(texts, alpha=0.1, seed=1, epoch=1)
    other_seed = default_tok.encode_batch(texts, alpha=0.1, seed=2, epoch=0)
    assert sum(a != b for a, b in zip(base, other_epoch)) > 0.9 * len(texts)
    assert sum(a != b for a, b in zip(base, other_seed)) > 0.9 * len(texts)
    x = texts[0]
    assert default_tok.encode(x, alpha=0.1) != default_tok.encode(x, alpha=0.1)  # seed=None: OS entropy


def test_distinct_samples_and_stats_do_not_depend_on_threads(default_tok, lines):
    texts = lines[:300]
    a = default_tok.sample_distinct_batch(texts, 0.3, 3, seed=4, num_threads=1)
    b = default_tok.sample_distinct_batch(texts, 0.3, 3, seed=4, num_threads=2)
    assert a == b
    s1 = default_tok.stats_batch(texts, 0.5, num_threads=1, piece_counts=True)
    s2 = default_tok.stats_batch(texts, 0.5, num_threads=2, piece_counts=True)
    assert (s1["entropy"] == s2["entropy"]).all()


def test_two_processes_agree(default_tok, lines, run_python):
    code = (
        "import json, sys\n"
        "from viterbisample import Tokenizer\n"
        "lines = [l.encode() for l in json.loads(sys.stdin.read())]\n"
        "print(json.dumps(Tokenizer.default().encode_batch(lines, alpha=0.25, seed=123, epoch=4)))\n"
    )
    payload = json.dumps([x.decode("utf-8") for x in lines[:200]]).encode()
    outs = []
    for _ in range(2):
        r = run_python("-c", code, stdin=payload)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1]
    assert json.loads(outs[0]) == default_tok.encode_batch(lines[:200], alpha=0.25, seed=123, epoch=4)
