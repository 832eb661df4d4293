"""Gao et al. (2023) overoptimization fit: gold ≈ d·(α − β·log d), d = √KL.

Under RL the gold score first rises with distance from the initial policy and
then falls; fitting the curve says where the peak was (or will be), so a user
can stop or raise β before the proxy reward runs away from what they wanted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class GaoFit:
    alpha: float
    beta: float
    r2: float | None
    baseline: float  # gold at d = 0, subtracted before fitting
    n: int

    def predict(self, kl: float | Sequence[float]) -> np.ndarray:
        """Gold score predicted at the given KL (baseline added back)."""
        d = np.sqrt(np.clip(np.asarray(kl, dtype=float), 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            dlog = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
        return self.baseline + self.alpha * d - self.beta * dlog

    @property
    def peak_kl(self) -> float | None:
        """KL at which the fitted gold peaks: d* = exp(α/β − 1); None if the curve never turns."""
        if self.beta <= 0:
            return None
        exponent = self.alpha / self.beta - 1.0
        if exponent > 350:  # beyond float range: effectively no peak in sight
            return None
        return math.exp(exponent) ** 2

    @property
    def peak_gold(self) -> float | None:
        """Fitted gold at the peak: baseline + β·d*."""
        kl = self.peak_kl
        return None if kl is None else self.baseline + self.beta * math.sqrt(kl)


def fit_gao(kl: Sequence[float], gold: Sequence[float], *, baseline: float | None = None) -> GaoFit | None:
    """Least-squares fit of gold − baseline = α·d − β·d·ln d (no intercept: the curve starts at 0).

    `baseline` defaults to the gold score of the point nearest the initial policy
    (smallest KL). Returns None with fewer than 3 usable points or a degenerate design.
    """
    k = np.asarray(kl, dtype=float)
    g = np.asarray(gold, dtype=float)
    if k.shape != g.shape:
        raise ValueError(f"kl and gold differ in length: {k.shape[0]} vs {g.shape[0]}")
    keep = np.isfinite(k) & np.isfinite(g)
    k, g = np.clip(k[keep], 0.0, None), g[keep]
    if k.size < 3:
        return None
    base = float(g[np.argmin(k)]) if baseline is None else float(baseline)
    d = np.sqrt(k)
    dlog = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
    design = np.stack([d, -dlog], axis=1)
    y = g - base
    if np.linalg.matrix_rank(design) < 2:
        return None
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    alpha, beta = float(coef[0]), float(coef[1])
    resid = y - design @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = None if ss_tot <= 1e-12 else 1.0 - float((resid**2).sum()) / ss_tot
    return GaoFit(alpha=alpha, beta=beta, r2=r2, baseline=base, n=int(k.size))
