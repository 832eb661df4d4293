"""bench/scenario.py's arithmetic: when the hack counts as sustained, the √KL bins and the line through a round's
updates that the two rounds are compared with (no model runs, no timings)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "scenario.py"


@pytest.fixture(scope="module")
def scenario():
    spec = importlib.util.spec_from_file_location("scenario_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["scenario_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_fit_line_recovers_a_line_and_the_least_squares_slope(scenario):
    assert scenario.fit_line([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx((1.0, 2.0))
    # y = 0, 1, 0, 1 at x = 0..3: slope = Σ(x−x̄)(y−ȳ)/Σ(x−x̄)² = 1/5, intercept = ȳ − slope·x̄ = 0.5 − 0.3
    assert scenario.fit_line([(0, 0), (1, 1), (2, 0), (3, 1)]) == pytest.approx((0.2, 0.2))
    assert scenario.fit_line([(1.0, 2.0), (1.0, 3.0)]) is None  # one x: no slope
    assert scenario.fit_line([(1.0, 2.0)]) is None


def test_hacked_at_is_the_first_sustained_window(scenario):
    lengths = [20] * 5 + [25, 31, 31, 31, 31, 31, 20, 20]
    eos = [1.0] * 5 + [0.8, 0.2, 0.2, 0.2, 0.2, 0.2, 1.0, 1.0]
    # window 6–10: mean length 29.8 < 30; window 7–11: 31 ≥ 1.5 × 20 and EOS 0.2 < 0.5
    assert scenario.hacked_at(lengths, eos) == 11
    assert scenario.hacked_at([20] * 12, [1.0] * 12) is None
    assert scenario.hacked_at(lengths[:9], eos[:9]) is None  # fewer than two windows


def test_binned_means_and_empty_bins(scenario):
    out = scenario.binned([(0.1, 1.0), (0.2, 3.0), (0.9, 5.0), (1.0, 7.0)], bins=2, lo=0.0, hi=1.0)
    assert out[0] == pytest.approx((0.15, 2.0))
    assert out[1] == pytest.approx((0.95, 6.0))  # the top edge falls in the last bin
    empty = scenario.binned([(0.1, 1.0)], bins=2, lo=0.0, hi=1.0)[1]
    assert empty[0] == pytest.approx(0.75) and empty[1] != empty[1]  # NaN
