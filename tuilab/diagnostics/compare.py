"""Several PPO / DPO runs on one plot: the series to draw, and each run's Gao fit and peak.

The runs screen draws score, gold, KL or length against the update step or
against d = √KL (Gao et al. 2023 plot gold against d: under RL, gold follows
d·(α − β·ln d), rising, peaking at d* = e^(α/β − 1), then falling). Pure
numbers in, numbers out: the screen reads the metrics and draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tuilab.diagnostics.overoptimization import GaoFit, fit_gao

# What the screen offers → the metric PPO and DPO both log under that name.
QUANTITIES = {
    "score": "objective/scores",
    "gold": "objective/gold",
    "kl": "objective/kl",
    "length": "response/length_mean",
}
AXES = ("step", "sqrt_kl")
KL = QUANTITIES["kl"]

Points = Sequence[tuple[int, float]]  # [(step, value)], as store.runs.read_metrics gives them


@dataclass
class Series:
    """One run's line: x and y in step order, plus (gold against √KL only) its fit and fitted peak."""

    run_id: str
    label: str
    xs: list[float]
    ys: list[float]
    fit: GaoFit | None = None
    fit_xs: list[float] | None = None
    fit_ys: list[float] | None = None
    peak: tuple[float, float] | None = None  # (d*, gold at d*) when the fitted curve turns


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over `window` points (single PPO updates at batch 8 are noisy)."""
    if window <= 1:
        return list(values)
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > window:
            acc.pop(0)
        out.append(float(np.mean(acc)))
    return out


def _finite(v: float) -> bool:
    return v is not None and math.isfinite(v)


def series_for(run_id: str, metrics: Mapping[str, Points], quantity: str, axis: str = "step", *,
               label: str = "", window: int = 1) -> Series | None:
    """One run's series, or None when it logged nothing to plot (e.g. no gold scorer)."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(QUANTITIES)}; got {quantity!r}")
    if axis not in AXES:
        raise ValueError(f"axis must be one of {', '.join(AXES)}; got {axis!r}")
    ys_by_step = {s: v for s, v in metrics.get(QUANTITIES[quantity], ()) if _finite(v)}
    if axis == "step":
        steps = sorted(ys_by_step)
        xs = [float(s) for s in steps]
        kls: list[float] = []
    else:
        kl_by_step = {s: v for s, v in metrics.get(KL, ()) if _finite(v)}
        steps = sorted(set(ys_by_step) & set(kl_by_step))
        kls = [max(kl_by_step[s], 0.0) for s in steps]  # k1 can dip below 0 at the start: d = 0 there
        xs = [math.sqrt(k) for k in kls]
    if not steps:
        return None
    ys = smooth([ys_by_step[s] for s in steps], window)
    out = Series(run_id, label or run_id, xs, ys)
    if quantity == "gold" and axis == "sqrt_kl":
        fit = fit_gao(kls, [ys_by_step[s] for s in steps])  # fitted on the raw points, not the smoothed line
        if fit is not None:
            grid = np.linspace(0.0, max(xs) if xs else 0.0, 40)
            out.fit, out.fit_xs = fit, grid.tolist()
            out.fit_ys = fit.predict(grid**2).tolist()
            if fit.peak_kl is not None and fit.peak_gold is not None:
                out.peak = (math.sqrt(fit.peak_kl), fit.peak_gold)
    return out


def compare(runs: Mapping[str, Mapping[str, Points]], quantity: str, axis: str = "step", *,
            labels: Mapping[str, str] | None = None, window: int = 1) -> list[Series]:
    """Series for every run that logged `quantity`, in the order given."""
    out = []
    for run_id, metrics in runs.items():
        s = series_for(run_id, metrics, quantity, axis, label=(labels or {}).get(run_id, ""), window=window)
        if s is not None:
            out.append(s)
    return out
