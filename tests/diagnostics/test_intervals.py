"""Interval maths against closed forms and textbook values."""

import math

import numpy as np
import pytest

from tuilab.diagnostics.intervals import Interval, bootstrap, wilson, z_value


def _wilson_closed_form(k, n, z):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_z_value():
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_value(0.90) == pytest.approx(1.644854, abs=1e-6)
    with pytest.raises(ValueError, match="confidence"):
        z_value(1.0)


@pytest.mark.parametrize(("k", "n"), [(8, 10), (1, 3), (50, 100), (37, 41)])
def test_wilson_matches_closed_form(k, n):
    ci = wilson(k, n)
    low, high = _wilson_closed_form(k, n, 1.959964)
    assert ci.estimate == pytest.approx(k / n)
    assert ci.low == pytest.approx(low, abs=1e-6)
    assert ci.high == pytest.approx(high, abs=1e-6)
    assert ci.n == n


def test_wilson_textbook_values_and_edges():
    ci = wilson(8, 10)  # Newcombe (1998) table: 0.4902–0.9433
    assert (round(ci.low, 4), round(ci.high, 4)) == (0.4902, 0.9433)
    zero = wilson(0, 10)  # 0 of 10: [0, z²/(n+z²)] = [0, 0.2775]
    assert zero.low == 0.0
    assert zero.high == pytest.approx(1.959964**2 / (10 + 1.959964**2), abs=1e-6)
    full = wilson(10, 10)
    assert full.high == 1.0 and full.low == pytest.approx(1 - zero.high, abs=1e-9)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_wilson_narrows_with_n():
    assert (wilson(80, 100).high - wilson(80, 100).low) < (wilson(8, 10).high - wilson(8, 10).low)


def test_bootstrap_mean_close_to_normal_interval():
    rng = np.random.default_rng(1)
    x = list(rng.normal(2.0, 1.0, size=400))
    ci = bootstrap(x, lambda r: float(np.mean(r)), resamples=600, seed=3)
    se = np.std(x) / math.sqrt(len(x))
    assert ci.estimate == pytest.approx(np.mean(x))
    assert ci.low == pytest.approx(np.mean(x) - 1.96 * se, abs=0.35 * se)
    assert ci.high == pytest.approx(np.mean(x) + 1.96 * se, abs=0.35 * se)
    assert bootstrap([], np.mean) is None
    assert bootstrap([1.0, 2.0], lambda r: None) is None


def test_interval_format_and_contains():
    ci = Interval(15 / 18, 0.6078, 0.9418, 18)
    assert ci.format() == "83% [61–94%] n=18"
    assert ci.format(digits=1) == "83.3% [60.8–94.2%] n=18"
    assert ci.format(percent=False) == "0.83 [0.61–0.94] n=18"
    assert ci.format(percent=False, digits=3) == "0.833 [0.608–0.942] n=18"
    assert ci.contains(0.6078) and ci.contains(0.9418) and not ci.contains(0.95)


def test_wilson_at_another_confidence():
    ninety = wilson(8, 10, confidence=0.90)
    ninety_five = wilson(8, 10)
    assert ninety.confidence == 0.90 and ninety_five.confidence == 0.95
    assert ninety_five.low < ninety.low < 0.8 < ninety.high < ninety_five.high
    low, high = _wilson_closed_form(8, 10, z_value(0.90))
    assert (ninety.low, ninety.high) == (pytest.approx(low), pytest.approx(high))


def test_bootstrap_drops_resamples_where_the_statistic_is_undefined():
    rows = [0.0] * 9 + [1.0]

    def mean_of_some(r):  # undefined on the ~35% of resamples that miss the one 1.0
        return float(np.mean(r)) if sum(r) else None

    ci = bootstrap(rows, mean_of_some, resamples=400, seed=0)
    assert ci.estimate == pytest.approx(0.1) and ci.n == 10
    assert ci.low >= 0.1  # the all-zero resamples were dropped, not counted as 0
    plain = bootstrap(rows, lambda r: float(np.mean(r)), resamples=400, seed=0)
    assert plain.low == 0.0


def test_bootstrap_gives_up_when_most_resamples_are_undefined():
    rows = list(range(10))

    def distinct_only(r):  # undefined whenever a row is drawn twice: almost every resample
        return float(np.mean(r)) if len(set(r)) == len(r) else float("nan")

    assert distinct_only(rows) == pytest.approx(4.5)
    assert bootstrap(rows, distinct_only, resamples=200) is None
