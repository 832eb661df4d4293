"""Pair uncertainty against closed forms: Bradley–Terry probabilities, ensemble spread, closeness to ½."""

import math

import numpy as np
import pytest

from tuilab.diagnostics.uncertainty import (
    most_uncertain,
    pair_uncertainty,
    preference_probabilities,
)


def test_bradley_terry_probabilities():
    p = preference_probabilities([0.0, math.log(3), -math.log(3)], [0.0, 0.0, 0.0])
    assert p == pytest.approx([0.5, 0.75, 0.25])
    with pytest.raises(ValueError, match="one reward per member"):
        preference_probabilities([1.0], [1.0, 2.0])


def test_single_member_scores_closeness_to_a_coin_flip():
    u = pair_uncertainty([math.log(3)], [0.0])  # P = 0.75 → 1 − 2·0.25 = 0.5
    assert u.score == pytest.approx(0.5) and u.spread is None and u.members == 1
    assert pair_uncertainty([2.0], [2.0]).score == pytest.approx(1.0)
    assert "P(A better) = 0.75" in u.why()


def test_ensemble_scores_the_spread_of_member_probabilities():
    u = pair_uncertainty([math.log(3), -math.log(3)], [0.0, 0.0])  # P = 0.75, 0.25
    assert u.spread == pytest.approx(np.std([0.75, 0.25])) == pytest.approx(0.25)
    assert u.mean_p == pytest.approx(0.5) and u.score == u.spread
    agreeing = pair_uncertainty([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert agreeing.score == pytest.approx(0.0)
    assert "3 reward models disagree" in agreeing.why()


def test_most_uncertain_orders_and_breaks_ties_by_position():
    items = [pair_uncertainty([x], [0.0]) for x in (3.0, 0.0, 0.1, 0.0)]
    assert most_uncertain(items, 3) == [1, 3, 2]
    assert most_uncertain(items, 0) == []
