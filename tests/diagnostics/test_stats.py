import math

import numpy as np
import pytest

from tuilab.diagnostics.stats import pearson, rankdata, slope, spearman


def test_pearson_known_values():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    x, y = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])


def test_pearson_undefined_is_none():
    assert pearson([1, 2], [3, 4]) is None
    assert pearson([1, 1, 1], [1, 2, 3]) is None
    assert pearson([1, 2, float("nan")], [1, 2, 3]) is None  # only two finite pairs left


def test_spearman_monotone_nonlinear_is_one():
    x = [1, 2, 3, 4, 5]
    y = [math.exp(v) for v in x]
    assert spearman(x, y) == pytest.approx(1.0)
    assert pearson(x, y) < 0.95


def test_rankdata_ties_average():
    assert list(rankdata([10, 20, 20, 30])) == [1.0, 2.5, 2.5, 4.0]


def test_slope():
    assert slope([0, 1, 2], [1, 3, 5]) == pytest.approx(2.0)
    assert slope([1, 1], [0, 5]) is None


def test_length_mismatch_is_clear():
    with pytest.raises(ValueError, match="differ in length"):
        pearson([1, 2, 3], [1, 2])


def test_pearson_edge_cases():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2], [1, 2]) is None
    assert pearson([1, 1, 1], [1, 2, 3]) is None


def test_spearman_ties_and_undefined_cases():
    # With ties: Pearson on average ranks. Ranks x 1, 2.5, 2.5, 4, 5 and y 1, 2, 3.5, 3.5, 5 (mean 3 each):
    # Σdx·dy = 4 + 0.5 − 0.25 + 0.5 + 4 = 8.75, Σdx² = Σdy² = 9.5 → ρ = 8.75 / 9.5 = 35/38.
    x, y = [1, 2, 2, 3, 4], [10, 20, 30, 30, 50]
    assert list(rankdata(y)) == [1.0, 2.0, 3.5, 3.5, 5.0]
    assert spearman(x, y) == pytest.approx(35 / 38)
    assert spearman([1, 2], [2, 1]) is None  # fewer than three pairs
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # one rank for all: no order to follow
    assert spearman([1, 2, float("inf"), 4], [1, 2, 3, float("nan")]) is None  # two finite pairs left


def test_slope_ignores_non_finite_pairs():
    assert slope([0, 1, 2, float("nan")], [1, 3, 5, 100]) == pytest.approx(2.0)
    assert slope([3], [1]) is None
    with pytest.raises(ValueError, match="^x and y differ in length: 2 vs 3$"):
        slope([1, 2], [1, 2, 3])
