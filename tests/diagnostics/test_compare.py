"""Runs compared on one plot: series on step or √KL, and each run's Gao fit and peak."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuilab.diagnostics.compare import compare, series_for, smooth


def gao_run(alpha: float, beta: float, steps: int = 30):
    """Metrics of a run whose gold follows d·(α − β ln d) exactly as KL grows.

    Step 1 is the reference policy (KL 0), as in a real run: the fit's baseline is its gold.
    """
    kl = [0.05 * (s - 1) ** 2 for s in range(1, steps + 1)]
    d = np.sqrt(kl)
    gold = 0.5 + d * (alpha - beta * np.log(np.where(d > 0, d, 1.0)))
    return {
        "objective/kl": [(s, k) for s, k in enumerate(kl, 1)],
        "objective/gold": [(s, float(g)) for s, g in enumerate(gold, 1)],
        "objective/scores": [(s, 0.1 * s) for s in range(1, steps + 1)],
    }


def test_gold_against_sqrt_kl_recovers_each_runs_peak():
    runs = {"ppo-a": gao_run(1.0, 0.5), "ppo-b": gao_run(1.5, 0.5)}
    out = compare(runs, "gold", "sqrt_kl", labels={"ppo-a": "β 0.05"})
    assert [s.run_id for s in out] == ["ppo-a", "ppo-b"] and out[0].label == "β 0.05"
    for s, (alpha, beta) in zip(out, [(1.0, 0.5), (1.5, 0.5)], strict=True):
        assert s.fit.alpha == pytest.approx(alpha, rel=1e-6) and s.fit.beta == pytest.approx(beta, rel=1e-6)
        d_star = math.exp(alpha / beta - 1)
        assert s.peak[0] == pytest.approx(d_star, rel=1e-6)
        assert s.peak[1] == pytest.approx(0.5 + beta * d_star, rel=1e-6)
        assert s.xs == sorted(s.xs) and s.xs[0] == 0.0 and s.xs[1] == pytest.approx(math.sqrt(0.05))
        assert len(s.fit_xs) == len(s.fit_ys) == 40


def test_step_axis_no_fit_and_runs_without_the_quantity_are_left_out():
    runs = {"ppo-a": gao_run(1.0, 0.5, steps=5), "dpo-b": {"objective/kl": [(1, 0.1)]}}
    out = compare(runs, "gold", "step")
    assert [s.run_id for s in out] == ["ppo-a"] and out[0].fit is None and out[0].xs == [1, 2, 3, 4, 5]
    assert compare(runs, "kl", "step")[1].ys == [0.1]


def test_negative_kl_is_distance_zero_and_nan_points_are_dropped():
    metrics = {"objective/kl": [(1, -0.02), (2, 0.04), (3, float("nan"))],
               "objective/scores": [(1, 1.0), (2, 2.0), (3, 3.0)]}
    s = series_for("r", metrics, "score", "sqrt_kl")
    assert s.xs == [0.0, pytest.approx(0.2)] and s.ys == [1.0, 2.0]


def test_smoothing_is_a_trailing_mean_and_bad_names_are_refused():
    assert smooth([1, 2, 3, 4], 2) == [1, 1.5, 2.5, 3.5]
    with pytest.raises(ValueError, match="quantity"):
        series_for("r", {}, "reward", "step")
    with pytest.raises(ValueError, match="axis"):
        series_for("r", {}, "gold", "kl")
