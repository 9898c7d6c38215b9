"""Alpha as a number users can reason about (ALGORITHMS.md section 5): the alpha at which
q_alpha has a given entropy per byte, or adds a given share of tokens to the Viterbi
segmentation.  Both quantities fall monotonically as alpha grows, so each is a bracketed
root find over ``queries.stats_batch``.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

from .checks import check_real, check_texts
from .engine import Engine, joined
from .queries import stats_batch
from .text import Text, to_bytes

# The brackets search alpha up to here; beyond it q_alpha is Viterbi for any practical text.
ALPHA_SEARCH_LIMIT = 1e4


def alpha_for_entropy(engine: Engine, texts: Iterable[Text], bits_per_byte: float, num_threads=None) -> float:
    """``Tokenizer.alpha_for_entropy``: the alpha whose q_alpha has ``bits_per_byte`` bits
    of entropy per byte over ``texts`` (total entropy / total bytes)."""
    texts = check_texts(texts)
    target = check_real(bits_per_byte, "bits_per_byte")
    n_bytes = sum(len(to_bytes(t)) for t in texts)
    if n_bytes == 0:
        raise ValueError("alpha_for_entropy needs texts with at least one byte")

    def entropy_per_byte(a: float) -> float:
        h = stats_batch(engine, texts, a, num_threads)["entropy"]
        return float(h.sum()) / n_bytes / math.log(2)

    return solve_decreasing(entropy_per_byte, target, "bits of entropy per byte")


def alpha_for_length(engine: Engine, texts: Iterable[Text], extra_tokens: float, num_threads=None) -> float:
    """``Tokenizer.alpha_for_length``: the alpha whose samples have ``extra_tokens`` (0.1:
    +10%) more tokens than the Viterbi segmentation, in expectation over ``texts``."""
    texts = check_texts(texts)
    target = check_real(extra_tokens, "extra_tokens")
    _, offsets = joined(engine.encoded_chunks(texts, None, 0, 0, num_threads, 0))
    viterbi = float(offsets[-1])
    if viterbi == 0:
        raise ValueError(
            f"alpha_for_length needs texts with at least one byte, got {len(texts)} text(s) and no bytes"
        )

    def relative_excess(a: float) -> float:
        e = stats_batch(engine, texts, a, num_threads)["expected_length"]
        return float(e.sum()) / viterbi - 1.0

    return solve_decreasing(relative_excess, target, "relative extra tokens")


def solve_decreasing(
    f: Callable[[float], float], target: float, what: str, hi_limit: float = ALPHA_SEARCH_LIMIT
) -> float:
    """The alpha >= 0 with f(alpha) = target for a decreasing f: bracket by quadrupling,
    then the Illinois variant of regula falsi (bisection as a fallback)."""
    f0 = f(0.0)
    if target >= f0:
        if target - f0 <= 1e-12 * max(1.0, abs(f0)):
            return 0.0
        raise ValueError(f"{what} = {target} is above the maximum {f0:.6g}, reached at alpha = 0")
    lo, f_lo = 0.0, f0
    hi = 1.0
    f_hi = f(hi)
    while f_hi > target:
        lo, f_lo = hi, f_hi
        hi *= 4.0
        if hi > hi_limit:
            raise ValueError(f"{what} = {target} is below what alpha <= {hi_limit:g} reaches ({f_hi:.6g})")
        f_hi = f(hi)
    side = 0
    for _ in range(100):
        if hi - lo <= 1e-10 * hi:
            break
        mid = lo + (hi - lo) * (f_lo - target) / (f_lo - f_hi) if f_lo != f_hi else 0.5 * (lo + hi)
        if not lo < mid < hi:
            mid = 0.5 * (lo + hi)
        f_mid = f(mid)
        if abs(f_mid - target) <= 1e-12 * max(1.0, abs(target)):
            return mid
        if f_mid > target:
            lo, f_lo = mid, f_mid
            if side == -1:
                f_hi = target + 0.5 * (f_hi - target)
            side = -1
        else:
            hi, f_hi = mid, f_mid
            if side == 1:
                f_lo = target + 0.5 * (f_lo - target)
            side = 1
    return 0.5 * (lo + hi)

