"""Subword regularization inside training loops: the per-call path, model inputs, offsets,
the data loader wrapper, worker processes and ``datasets.map``."""

from __future__ import annotations

import math
import multiprocessing
import pickle

import numpy as np
import pytest

from viterbisample import SubwordRegularization, Tokenizer, lattice
from viterbisample.inputs import InputOptions, model_inputs

TEXTS = [
    "Subword regularization samples a new segmentation every epoch.",
    "",
    "吾輩は猫である。名前はまだ無い。",
    "tabs\tand  runs   of spaces",
    "x",
    "émoji 🙂 and ﬁ ligatures",
]
UINT64_MAX = 2**64 - 1


# -- the per-call path equals the batch ----------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 1e-300, 0.1, 1.0, 10.0, 1e308, math.inf])
@pytest.mark.parametrize("seed,epoch", [(0, 0), (2**63 - 1, 2**63), (UINT64_MAX, UINT64_MAX)])
def test_single_text_call_is_the_batch_sample(default_tok, alpha, seed, epoch):
    """``encode`` runs its own kernel (``lattice.encode_text``) with the stream key's
    parts passed as int64 bits: every uint64 value must give the batch's sample."""
    first = 2**63 - 1 - len(TEXTS)  # the largest index a batch can start at
    for start in (0, first):
        batch = default_tok.encode_batch(TEXTS, alpha, seed, epoch, first_index=start)
        single = [default_tok.encode(t, alpha, seed, epoch=epoch, index=start + k) for k, t in enumerate(TEXTS)]
        assert single == batch


def test_single_text_call_at_the_largest_index(small_tok):
    """Index 2**64 - 1 is beyond what a batch's first_index allows: compare with the batch
    kernel's driver called directly."""
    from viterbisample.engine import as_array

    text = b"the abc"
    out = np.empty(len(text), np.int32)
    offsets = np.empty(2, np.int64)
    small_tok._engine.encode_items(0.5, as_array(text), np.zeros(1, np.int64), np.array([len(text)]), 1, 5, 7,
                                   UINT64_MAX, out, offsets)
    assert small_tok.encode(text, 0.5, 5, epoch=7, index=UINT64_MAX) == out[: offsets[1]].tolist()


def test_one_kernel_signature_for_every_kind_of_text(small_tok):
    for text in ("x", b"x", bytearray(b"x"), memoryview(b"x"), "", b"", "é"):
        small_tok.encode(text)
        small_tok.encode(text, 0.5, seed=UINT64_MAX, epoch=UINT64_MAX, index=UINT64_MAX)
    # One for texts as bytes; a SentencePiece model's lattice over characters (other
    # tests in this process) adds the one for int32 symbols.
    texts = [str(signature[2]) for signature in lattice.encode_text.signatures]
    assert sum("bytes" in t for t in texts) == 1 and len(texts) == len(set(texts)) <= 2


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(alpha=-1.0), ValueError, "alpha"),
        (dict(alpha=math.nan), ValueError, "alpha"),
        (dict(alpha=True), TypeError, "alpha"),
        (dict(alpha="0.1"), TypeError, "alpha"),
        (dict(alpha=0.1, seed=-1), ValueError, "seed"),
        (dict(alpha=0.1, seed=2**64), ValueError, "seed"),
        (dict(alpha=0.1, seed=1.0), TypeError, "seed"),
        (dict(epoch=-1), ValueError, "epoch"),
        (dict(epoch=2**64), ValueError, "epoch"),
        (dict(index=True), TypeError, "index"),
        (dict(index=1.5), TypeError, "index"),
        (dict(alpha=0.1, extra_tokens=0.1), ValueError, "one of"),
    ],
)
def test_per_call_arguments_are_still_checked(small_tok, kwargs, error, match):
    with pytest.raises(error, match=match):
        small_tok.encode("the abc", **kwargs)


def test_int_alpha_and_numpy_scalars_take_the_checked_path(small_tok):
    assert small_tok.encode("the abc", 1, 3) == small_tok.encode("the abc", 1.0, 3)
    assert small_tok.encode("the abc", np.float64(0.5), np.uint64(3), epoch=np.int64(2)) == small_tok.encode(
        "the abc", 0.5, 3, epoch=2)


def test_bad_text_types(small_tok):
    with pytest.raises(TypeError, match="str or bytes"):
        small_tok.encode(12)
    with pytest.raises(ValueError, match="surrogate"):
        small_tok.encode("a\ud800b")


# -- fresh seeds --------------------------------------------------------------------------------


def _fresh_sample(text: str) -> list[int]:
    return Tokenizer.default().encode(text, alpha=0.1)


def test_forked_workers_draw_different_fresh_seeds(default_tok):
    """``seed=None`` in a forked worker must not repeat its siblings' draws."""
    text = TEXTS[0]
    default_tok.encode(text, alpha=0.1)  # the parent's generator is in use before the fork
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        draws = pool.map(_fresh_sample, [text] * 8, chunksize=1)
    assert len({tuple(d) for d in draws}) > 1


# -- offsets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [None, 0.0, 0.3])
def test_offsets_cover_the_text_token_by_token(default_tok, alpha):
    for text in TEXTS:
        for seed in range(3):
            ids, spans = default_tok.encode(text, alpha, seed, return_offsets=True)
            assert len(spans) == len(ids)
            data = text.encode("utf-8")
            pos = 0
            for i, (a, b) in zip(ids, spans):
                piece = default_tok.id_to_bytes(i)
                # The token's bytes lie inside the characters of its span ...
                assert piece in text[a:b].encode("utf-8")
                # ... which start at the character holding its first byte.
                assert len(text[:a].encode("utf-8")) <= pos < len(text[:b].encode("utf-8"))
                pos += len(piece)
            assert pos == len(data)
            if ids:
                assert spans[0][0] == 0 and spans[-1][1] == len(text)


def test_offsets_of_ascii_are_exact_slices(default_tok):
    text = "Offsets map tokens back to characters."
    ids, spans = default_tok.encode(text, 0.5, 1, return_offsets=True)
    assert [text[a:b] for a, b in spans] == [default_tok.id_to_bytes(i).decode() for i in ids]


def test_offsets_of_a_split_character_overlap(small_tok):
    # small_tok has pieces that split UTF-8 characters: find a sample that splits "é".
    text = "é" * 4
    for seed in range(200):
        ids, spans = small_tok.encode(text, 0.0, seed, return_offsets=True)
        if len(ids) > len(text):
            break
    else:
        pytest.fail("no sample split a character")
    assert all(0 <= a < b <= len(text) for a, b in spans)
    assert any(s1[0] < s0[1] for s0, s1 in zip(spans, spans[1:]))  # the split character


def test_offsets_of_bytes_are_byte_offsets(default_tok):
    data = "naïve".encode() + b"\xff"
    ids, spans = default_tok.encode(data, return_offsets=True)
    assert [data[a:b] for a, b in spans] == [default_tok.id_to_bytes(i) for i in ids]


def test_batch_offsets_equal_the_single_ones(default_tok):
    rows, spans = default_tok.encode_batch(TEXTS, 0.4, 3, epoch=1, first_index=7, return_offsets=True)
    for k, text in enumerate(TEXTS):
        assert (rows[k], spans[k]) == default_tok.encode(text, 0.4, 3, epoch=1, index=7 + k, return_offsets=True)


def test_offsets_through_a_normalizer(data_file):
    """SentencePiece's normalizer adds a dummy prefix, collapses spaces and maps
    full-width forms: each token's span still points at the input characters it came
    from."""
    from viterbisample.io.sentencepiece import load_sentencepiece

    tok = load_sentencepiece(data_file("sp_test_models/test_model.model"))
    text = "  Ｈｅｌｌｏ   wörld ﬁne  "
    ids, spans = tok.encode(text, return_offsets=True)
    normalized = tok.model.normalizer.normalize(text.encode())
    assert b"".join(tok.id_to_bytes(i) for i in ids) == normalized
    assert all(0 <= a <= b <= len(text) for a, b in spans)
    assert [a for a, _ in spans] == sorted(a for a, _ in spans)
    for i, (a, b) in zip(ids, spans):
        piece = tok.id_to_bytes(i).strip()
        if piece:  # what the token spells comes from the characters of its span
            assert piece in tok.model.normalizer.normalize(text[a:b].encode())


def test_token_spans_refuses_ids_of_another_text(default_tok):
    with pytest.raises(ValueError, match="spell"):
        default_tok.token_spans("abc", default_tok.encode("abcd"))


# -- model inputs ----------------------------------------------------------------------------


def test_call_pads_truncates_and_masks(default_tok):
    tok = default_tok
    texts = ["a longer sentence with several tokens", "short", ""]
    rows = tok.encode_batch(texts)
    bos, eos, pad = tok.bos_id, tok.eos_id, tok.pad_id
    assert None not in (bos, eos, pad)

    out = tok(texts, add_bos=True, add_eos=True, padding=True)
    full = [[bos] + r + [eos] for r in rows]
    width = max(map(len, full))
    assert out["input_ids"] == [r + [pad] * (width - len(r)) for r in full]
    assert out["attention_mask"] == [[1] * len(r) + [0] * (width - len(r)) for r in full]

    out = tok(texts, add_eos=True, max_length=4, truncation=True, padding="max_length", return_tensors="np")
    expect = [r[:3] + [eos] for r in rows]
    expect = [r + [pad] * (4 - len(r)) for r in expect]
    assert out["input_ids"].dtype == np.int64 and out["input_ids"].tolist() == expect
    assert out["attention_mask"].sum(axis=1).tolist() == [min(len(r), 3) + 1 for r in rows]

    out = tok(texts, padding=True, pad_to_multiple_of=8, padding_side="left")
    width = -(-max(map(len, rows)) // 8) * 8
    assert out["input_ids"] == [[pad] * (width - len(r)) + r for r in rows]


def test_call_on_one_text_is_unbatched(default_tok):
    out = default_tok("one text", alpha=0.2, seed=4, epoch=1, index=9)
    assert out["input_ids"] == default_tok.encode("one text", 0.2, 4, epoch=1, index=9)
    assert out["attention_mask"] == [1] * len(out["input_ids"])
    arr = default_tok("one text", alpha=0.2, seed=4, epoch=1, index=9, return_tensors="np")["input_ids"]
    assert arr.tolist() == [out["input_ids"]]


def test_call_samples_are_keyed_by_index(default_tok):
    texts = TEXTS[:4]
    out = default_tok(texts, alpha=0.3, seed=2, epoch=5, index=40)
    assert out["input_ids"] == [default_tok.encode(t, 0.3, 2, epoch=5, index=40 + k) for k, t in enumerate(texts)]


def test_truncation_after_sampling_keeps_whole_tokens(default_tok):
    text = TEXTS[0]
    for seed in range(5):
        sample = default_tok.encode(text, 0.1, seed)
        out = default_tok([text], 0.1, seed, max_length=7, truncation=True)
        assert out["input_ids"][0] == sample[:7]


def test_call_with_offsets_pads_them_with_empty_spans(default_tok):
    out = default_tok(["ab cd", "é"], add_bos=True, padding=True, return_offsets=True, return_tensors="np")
    assert out["offsets"].shape == out["input_ids"].shape + (2,)
    assert out["offsets"][:, 0].tolist() == [[0, 0], [0, 0]]  # the bos token
    assert out["offsets"][1, 1].tolist() == [0, 1]


def test_ragged_tensors_and_bad_options_are_refused(default_tok, small_tok):
    with pytest.raises(ValueError, match="padding=True"):
        default_tok(["a", "a longer one"], return_tensors="np")
    with pytest.raises(ValueError, match="max_length"):
        default_tok(["a"], truncation=True)
    with pytest.raises(ValueError, match="max_length"):
        default_tok(["a"], padding="max_length")
    with pytest.raises(ValueError, match="padding"):
        default_tok(["a"], padding="longest_first")
    with pytest.raises(ValueError, match="return_tensors"):
        default_tok(["a"], return_tensors="tf")
    with pytest.raises(ValueError, match="no room"):
        default_tok(["a"], add_bos=True, add_eos=True, max_length=1, truncation=True)
    with pytest.raises(ValueError, match="max_length"):
        default_tok(["a"], max_length=0)
    no_specials = Tokenizer.from_pieces([bytes([b]) for b in range(256)], [-1.0] * 256, special_tokens=[])
    with pytest.raises(ValueError, match="pad"):
        no_specials(["a", "bb"], padding=True)
    with pytest.raises(ValueError, match="bos"):
        no_specials(["a"], add_bos=True)


def test_torch_tensors_or_a_clear_error(default_tok):
    try:
        import torch
    except ImportError:
        with pytest.raises(ImportError, match="PyTorch"):
            default_tok(["a"], return_tensors="pt")
        return
    out = default_tok(["a", "bb cc"], padding=True, return_tensors="pt")
    assert isinstance(out["input_ids"], torch.Tensor) and out["input_ids"].dtype == torch.int64


def test_empty_batches(default_tok):
    out = default_tok([], padding=True, return_tensors="np")
    assert out["input_ids"].shape == (0, 0)
    assert model_inputs([], InputOptions()) == {"input_ids": [], "attention_mask": []}


# -- the data loader wrapper --------------------------------------------------------------


def _items(sr: SubwordRegularization, texts: list, indices: list) -> list:
    return [sr(texts[i], i) for i in indices]


def _worker_items(args) -> list:
    blob, texts, indices = args
    return _items(pickle.loads(blob), texts, indices)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_samples_do_not_depend_on_workers_or_batches(default_tok, en_lines, method):
    texts = [x.decode() for x in en_lines[:60]]
    sr = SubwordRegularization(default_tok, 0.2, seed=77)
    sr.set_epoch(3)
    expected = _items(sr, texts, list(range(len(texts))))
    assert expected == default_tok.encode_batch(texts, 0.2, 77, epoch=3)
    blob = pickle.dumps(sr)
    # Two workers, items handed out in shuffled batches of 7, as a DataLoader would.
    order = np.random.default_rng(0).permutation(len(texts)).tolist()
    batches = [order[k : k + 7] for k in range(0, len(order), 7)]
    with multiprocessing.get_context(method).Pool(2) as pool:
        results = pool.map(_worker_items, [(blob, texts, b) for b in batches], chunksize=1)
    got = {i: ids for b, rows in zip(batches, results) for i, ids in zip(b, rows)}
    assert [got[i] for i in range(len(texts))] == expected


def test_wrapper_epochs_calibration_and_collate(default_tok, en_lines):
    texts = [x.decode() for x in en_lines[:200] if x.strip()]
    sr = SubwordRegularization(default_tok, extra_tokens=0.1, calibration_texts=texts, seed=5, add_eos=True)
    assert sr.alpha == default_tok.alpha_for_length(texts, 0.1)
    e0 = [sr(t, i) for i, t in enumerate(texts)]
    sr.set_epoch(1)
    e1 = [sr(t, i) for i, t in enumerate(texts)]
    assert e0 != e1 and e0 == [sr(t, i, epoch=0) for i, t in enumerate(texts)]
    # The calibrated alpha gives about +10% tokens over the Viterbi segmentation.
    viterbi = sum(map(len, default_tok.encode_batch(texts)))
    sampled = np.mean([sum(len(sr(t, i, epoch=e)) for i, t in enumerate(texts)) for e in range(8)])
    assert 1.05 < sampled / viterbi < 1.15
    batch = sr.collate(e1[:4])
    assert batch["input_ids"].shape[0] == 4
    assert batch["input_ids"][:, :].tolist()[0][: len(e1[0]) + 1] == e1[0] + [default_tok.eos_id]
    assert sr.batch(texts[:5], list(range(10, 15))) == [sr(t, 10 + k) for k, t in enumerate(texts[:5])]


def test_wrapper_arguments(default_tok):
    with pytest.raises(ValueError, match="calibration_texts"):
        SubwordRegularization(default_tok, extra_tokens=0.1)
    with pytest.raises(ValueError, match="not both"):
        SubwordRegularization(default_tok, 0.1, extra_tokens=0.1, calibration_texts=["a"])
    with pytest.raises(ValueError, match="give alpha"):
        SubwordRegularization(default_tok)
    with pytest.raises(TypeError, match="Tokenizer"):
        SubwordRegularization("model.json", 0.1)
    with pytest.raises(ValueError, match="alpha"):
        SubwordRegularization(default_tok, -0.1)
    with pytest.raises(ValueError, match="indices"):
        SubwordRegularization(default_tok, 0.1, seed=1).batch(["a", "b"], [0])
    sr = SubwordRegularization(default_tok, 0.1)
    assert isinstance(sr.seed, int) and pickle.loads(pickle.dumps(sr)).seed == sr.seed


# -- Hugging Face datasets ---------------------------------------------------------------------


def test_datasets_map_does_not_depend_on_batch_size_or_processes(default_tok, en_lines):
    import datasets  # in the test extra
    texts = [x.decode() for x in en_lines[:50]]
    sr = SubwordRegularization(default_tok, 0.2, seed=11, epoch=2)

    def tokenize(batch, indices):
        return {"input_ids": sr.batch(batch["text"], indices)}

    ds = datasets.Dataset.from_dict({"text": texts})
    expected = default_tok.encode_batch(texts, 0.2, 11, epoch=2)
    for batch_size, num_proc in [(1, None), (7, None), (16, 2)]:
        mapped = ds.map(tokenize, batched=True, batch_size=batch_size, with_indices=True, num_proc=num_proc,
                        load_from_cache_file=False)
        assert mapped["input_ids"] == expected
