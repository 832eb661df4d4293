"""Agreement between two labelers against closed forms: percent, Cohen's κ, side-independent outcomes, side bias."""

import pytest

from tuilab.diagnostics.agreement import (
    agreement,
    cohen_kappa,
    outcome,
    percent_agreement,
    side_bias,
)


def test_cohen_kappa_closed_form():
    # 2×2 table [[20, 5], [10, 15]]: p_o = 0.7, p_e = (25·30 + 25·20)/50² = 0.5 → κ = 0.4.
    a = ["x"] * 25 + ["y"] * 25
    b = ["x"] * 20 + ["y"] * 5 + ["x"] * 10 + ["y"] * 15
    assert percent_agreement(a, b) == pytest.approx(0.7)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    # Systematic disagreement on two balanced categories: κ = −1.
    assert cohen_kappa(["x", "y"] * 5, ["y", "x"] * 5) == pytest.approx(-1.0)
    assert cohen_kappa(["x"] * 4, ["x"] * 4) is None  # p_e = 1: undefined
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="differ in length"):
        cohen_kappa(["x"], [])


def test_agreement_bundle():
    a = ["x"] * 25 + ["y"] * 25
    b = ["x"] * 20 + ["y"] * 5 + ["x"] * 10 + ["y"] * 15
    res = agreement(a, b, resamples=300)
    assert (res.n, res.agree) == (50, 35)
    assert res.percent.estimate == pytest.approx(0.7)
    assert res.kappa == pytest.approx(0.4)
    assert res.kappa_interval.low < 0.4 < res.kappa_interval.high
    assert "70%" in res.summary() and "κ 0.40" in res.summary()
    assert agreement([], []).summary() == "no pairs decided by both"


def test_outcome_is_side_independent():
    # The same answer (generation 7) won, shown left once and right once: same outcome.
    assert outcome("left", 7, 9) == outcome("right", 9, 7) == "7"
    assert outcome("tie", 7, 9) == outcome("tie", 9, 7) == "tie"
    assert outcome("skip", 7, 9) is None
    with pytest.raises(ValueError):
        outcome("maybe", 1, 2)


def test_side_bias_is_a_wilson_share():
    ci = side_bias(60, 100)
    assert ci.estimate == 0.6 and ci.contains(0.6) and not ci.contains(0.45)
    assert side_bias(0, 0) is None


def test_agreement_when_kappa_is_undefined_and_error_messages():
    # Both labelers always answer the same single outcome: 100% agreement, κ undefined, no κ interval.
    res = agreement(["7"] * 6, ["7"] * 6, resamples=50)
    assert (res.n, res.agree, res.kappa, res.kappa_interval) == (6, 6, None, None)
    assert res.summary() == f"{res.percent.format()} · κ n/a"
    assert res.percent.high == 1.0
    assert percent_agreement([], []) is None
    with pytest.raises(ValueError, match="^the two label lists differ in length: 2 vs 1$"):
        agreement(["x", "y"], ["x"])
    with pytest.raises(ValueError, match="^unknown decision 'maybe'$"):
        outcome("maybe", 1, 2)
    assert outcome("both_bad", 3, 4) == "both_bad"


def test_agreement_is_reproducible_with_a_seed():
    a = ["x", "y", "tie"] * 6
    b = ["x", "y", "y"] * 6
    first, again = agreement(a, b, resamples=200, seed=1), agreement(a, b, resamples=200, seed=1)
    assert first == again
    assert first.percent.estimate == pytest.approx(2 / 3)
