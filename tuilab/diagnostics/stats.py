"""Small statistics over plain numbers: correlations and trends, numpy only.

They return None instead of NaN when the answer is undefined (fewer than three
points, a constant series), so a caller can print "n/a" rather than a warning
firing on noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _clean(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"x and y differ in length: {a.shape[0]} vs {b.shape[0]}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r, or None with fewer than 3 finite pairs or a constant series."""
    a, b = _clean(x, y)
    if a.size < 3:
        return None
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denom <= 1e-12:
        return None
    return float(np.clip((a * b).sum() / denom, -1.0, 1.0))


def rankdata(x: Sequence[float]) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy's default)."""
    a = np.asarray(x, dtype=float)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(a.size, dtype=float)
    sorted_a = a[order]
    i = 0
    while i < a.size:
        j = i
        while j + 1 < a.size and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ (Pearson on average ranks): catches monotone, non-linear length bias."""
    a, b = _clean(x, y)
    if a.size < 3:
        return None
    return pearson(rankdata(a), rankdata(b))


def slope(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Least-squares slope of y on x, or None when x does not vary."""
    a, b = _clean(x, y)
    if a.size < 2:
        return None
    a = a - a.mean()
    denom = float((a * a).sum())
    if denom <= 1e-12:
        return None
    return float((a * (b - b.mean())).sum() / denom)
