"""Confidence intervals for the small counts a labeler produces: Wilson for shares, bootstrap for the rest.

Why Wilson and not the textbook p ± z·√(p(1−p)/n): with 10 repeats and 10
agreements the textbook interval is [1, 1], which claims certainty from ten
labels; Wilson's (Wilson 1927) stays inside [0, 1] and is honest at small n
and at shares near 0 or 1. The bootstrap (percentile method, Efron 1979) covers
statistics without a closed form, such as Cohen's κ.

numpy and the standard library only (`diagnostics/` never imports torch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval and the count behind it."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def format(self, percent: bool = True, digits: int = 0) -> str:
        """`"83% [61–94%] n=18"` (percent) or `"0.41 [0.12–0.70] n=18"`."""
        if percent:
            f = f"{{:.{digits}f}}"
            return (f"{f.format(100 * self.estimate)}% [{f.format(100 * self.low)}–{f.format(100 * self.high)}%]"
                    f" n={self.n}")
        f = f"{{:.{max(digits, 2)}f}}"
        return f"{f.format(self.estimate)} [{f.format(self.low)}–{f.format(self.high)}] n={self.n}"


def z_value(confidence: float) -> float:
    """The two-sided normal quantile: 1.96 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval | None:
    """Wilson score interval for a share `successes / n`; None when n is 0.

    centre = (p + z²/2n) / (1 + z²/n), half-width = z·√(p(1−p)/n + z²/4n²) / (1 + z²/n).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return None
    z = z_value(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exact ends at 0 and n (rounding would otherwise leave 1e-17 outside).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high, n, confidence)


def bootstrap(
    rows: Sequence,
    statistic: Callable[[Sequence], float | None],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval | None:
    """Percentile bootstrap of `statistic` over `rows` (resampled with replacement); None when undefined.

    Resamples on which the statistic is undefined (None or NaN, e.g. κ of a
    resample with one category) are dropped; with fewer than half left the
    interval is None rather than a guess.
    """
    n = len(rows)
    if n == 0:
        return None
    estimate = statistic(rows)
    if estimate is None or not math.isfinite(estimate):
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, n, size=n)
        v = statistic([rows[i] for i in idx])
        if v is not None and math.isfinite(v):
            values.append(v)
    if len(values) < resamples / 2:
        return None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(values), [tail, 1.0 - tail])
    return Interval(float(estimate), float(min(low, estimate)), float(max(high, estimate)), n, confidence)
