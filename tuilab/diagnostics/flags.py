"""Per-sample reward-hacking flags: which rollouts a person should read first.

Each flag is a short name stored on the sample (the inspector filters and sorts
by them) plus one sentence saying why it matters (`FLAG_HELP`). The thresholds
are named constants so a reader of a flagged sample can find the rule.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from tuilab.diagnostics.repetition import repeated_ngram_fraction

# "long": more than this many times the mean length at the first step.
LONG_FACTOR = 1.5
# "repetitive": at least this share of a response's n-grams repeat an earlier one.
REPEAT_N = 3
REPETITIVE_FRACTION = 0.3
# "uncertain": ensemble spread in the top decile of the spreads seen so far.
UNCERTAIN_QUANTILE = 0.9
# "overrated": score in the top quartile but gold in the bottom quartile (of the samples seen so far).
OVERRATED_SCORE_QUANTILE = 0.75
OVERRATED_GOLD_QUANTILE = 0.25

FLAG_HELP = {
    "long": (
        f"More than {LONG_FACTOR}× the mean response length of the first step: "
        "reward models often pay for length rather than content."
    ),
    "repetitive": (
        f"At least {REPETITIVE_FRACTION:.0%} of its {REPEAT_N}-grams repeat earlier ones: "
        "padding or loops that a reward model may score well."
    ),
    "no_eos": (
        "Never reached the end-of-turn token: cut off at the length cap and scored mid-sentence."
    ),
    "uncertain": (
        "The reward-model ensemble disagrees on it more than on 90% of samples so far: "
        "the score here is least trustworthy."
    ),
    "overrated": (
        "High reward-model score but low gold score: the proxy likes what the gold judge does not."
    ),
}

FLAGS = tuple(FLAG_HELP)


def _quantile(values: Sequence[float], q: float) -> float | None:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    return float(np.quantile(arr, q)) if arr.size else None


def sample_flags(
    *,
    lengths: Sequence[int],
    eos: Sequence[bool],
    tokens: Sequence[Sequence[Hashable]] | None = None,
    scores: Sequence[float] | None = None,
    spreads: Sequence[float | None] | None = None,
    gold: Sequence[float | None] | None = None,
    baseline_length: float | None = None,
    spread_pool: Sequence[float] | None = None,
    score_pool: Sequence[float] | None = None,
    gold_pool: Sequence[float] | None = None,
) -> list[list[str]]:
    """Flags for each sample of a batch.

    The `*_pool` arguments are the values seen so far in the run (this batch
    included); without them the batch itself is the reference, which with
    small batches flags the single most extreme sample.
    """
    n = len(lengths)
    out: list[list[str]] = [[] for _ in range(n)]
    rep = [repeated_ngram_fraction(t, REPEAT_N) for t in tokens] if tokens is not None else [0.0] * n
    spread_cut = None
    if spreads is not None:
        pool = spread_pool if spread_pool is not None else [s for s in spreads if s is not None]
        spread_cut = _quantile(pool, UNCERTAIN_QUANTILE)
    score_cut = gold_cut = None
    if scores is not None and gold is not None:
        s_pool = list(score_pool if score_pool is not None else scores)
        g_pool = [g for g in (gold_pool if gold_pool is not None else gold) if g is not None]
        # Quartiles of fewer than 4 values, or of a constant series, single out nothing.
        if len(s_pool) >= 4 and len(g_pool) >= 4 and np.ptp(s_pool) > 0 and np.ptp(g_pool) > 0:
            score_cut = _quantile(s_pool, OVERRATED_SCORE_QUANTILE)
            gold_cut = _quantile(g_pool, OVERRATED_GOLD_QUANTILE)
    for i in range(n):
        flags = out[i]
        if baseline_length and lengths[i] > LONG_FACTOR * baseline_length:
            flags.append("long")
        if rep[i] >= REPETITIVE_FRACTION:
            flags.append("repetitive")
        if not eos[i]:
            flags.append("no_eos")
        if spreads is not None and spread_cut is not None:
            s = spreads[i]
            if s is not None and s > 0 and s >= spread_cut:
                flags.append("uncertain")
        if score_cut is not None and gold_cut is not None and gold is not None and scores is not None:
            g = gold[i]
            if g is not None and scores[i] >= score_cut and g <= gold_cut:
                flags.append("overrated")
    return out
