"""Held-out reward-model figures: accuracy, margin, calibration, length bias."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.jobs.rm_data import make_pairs
from tuilab.config import RewardConfig
from tuilab.diagnostics.calibration import (
    evaluate_pairs,
    expected_calibration_error,
    length_bias_message,
)
from tuilab.training.events import Metrics, RunWarning
from tuilab.training.reward import train_reward_model


def test_ece_is_zero_when_confidence_matches_frequency():
    # 80 % confident, right 8 times out of 10: perfectly calibrated.
    probs = [0.8] * 8 + [0.2] * 2
    assert expected_calibration_error(probs) == pytest.approx(0.0)
    # Always 90 % confident and always right: off by 0.1.
    assert expected_calibration_error([0.9] * 10) == pytest.approx(0.1)
    # Which side is called "chosen" does not matter.
    rng = np.random.default_rng(0)
    p = rng.uniform(size=50)
    assert expected_calibration_error(p, np.ones(50)) == pytest.approx(expected_calibration_error(1 - p, np.zeros(50)))
    assert math.isnan(expected_calibration_error([]))


def test_ties_are_calibrated_at_one_half():
    assert expected_calibration_error([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0)
    assert expected_calibration_error([0.9], [0.5]) == pytest.approx(0.4)


def test_ece_hand_computed():
    # 10 bins of width 0.05 over confidence [0.5, 1]. Confidence = max(p, 1 − p), hit = that side won.
    # Five predictions, each bin weighted by its share of them:
    #   p 0.8 (label 1): conf 0.80, hit 1  ┐ bin [0.80, 0.85): conf 0.80, accuracy 0.5 → 0.30 · 2/5 = 0.120
    #   p 0.8 (label 0): conf 0.80, hit 0  ┘
    #   p 0.6 (label 1): conf 0.60, hit 1  ┐ bin [0.60, 0.65): conf 0.62, accuracy 0.5 → 0.12 · 2/5 = 0.048
    #   p 0.36 (label 1): conf 0.64, hit 0 ┘
    #   p 0.3 (label 0): conf 0.70, hit 1    bin [0.70, 0.75): conf 0.70, accuracy 1   → 0.30 · 1/5 = 0.060
    probs = [0.8, 0.8, 0.6, 0.36, 0.3]
    labels = [1, 0, 1, 1, 0]
    want = abs(0.5 - 0.8) * 2 / 5 + abs(0.5 - 0.62) * 2 / 5 + abs(1.0 - 0.7) * 1 / 5
    assert expected_calibration_error(probs, labels) == pytest.approx(want)  # 0.228


def test_ece_confidence_on_a_bin_edge_starts_that_bin():
    # 0.6 and 0.64 share the bin [0.60, 0.65): accuracy 0.5 at mean confidence 0.62 → 0.12.
    # (Put 0.6 in [0.55, 0.60) by float error and it would read 0.4·½ + 0.64·½ = 0.52.)
    assert expected_calibration_error([0.6, 0.64], [1, 0]) == pytest.approx(0.12)


def test_evaluate_pairs():
    ev = evaluate_pairs([2.0, 1.0, 0.0, 5.0], [0.0, 2.0, 0.0, 5.2], labels=[1, 1, 1, 0.5],
                        chosen_lengths=[10, 20, 30, 40], rejected_lengths=[5, 25, 30, 41])
    assert ev.pairs == 4
    assert ev.accuracy == pytest.approx(1 / 3)  # ties have no right answer; Δ = 0 is not a win
    assert ev.margin == pytest.approx((2 - 1 + 0) / 3)
    assert 0 <= ev.ece <= 1 and ev.loss > 0 and ev.length_corr is not None
    metrics = ev.as_metrics()
    assert metrics["eval/pairs"] == 4.0 and "eval/length_corr" in metrics
    assert evaluate_pairs([], []).as_metrics() == {"eval/pairs": 0.0}


def test_length_bias_message_in_words():
    assert length_bias_message(0.2, 40) is None
    assert length_bias_message(None, 40) is None
    up = length_bias_message(0.71, 40)
    assert "ρ = +0.71" in up and "40 held-out responses" in up and "longer" in up and "strongly" in up
    down = length_bias_message(-0.4, 10)
    assert "ρ = -0.40" in down and "brevity" in down


def test_a_model_trained_to_prefer_longer_answers_gets_the_length_warning(tiny_model_dir, tmp_path):
    pairs = make_pairs(48)
    for i, p in enumerate(pairs):  # chosen = the same answer padded with filler of varying length
        p.chosen = p.rejected + " and also" * (1 + i % 6)
    events = []
    cfg = RewardConfig(learning_rate=3e-3, epochs=3, batch_size=8, min_pairs=8, checkpoint_every=0,
                       eval_fraction=0.25)
    metrics = train_reward_model(cfg, pairs, base=tiny_model_dir, output_dir=tmp_path / "rm", sink=events.append)
    assert metrics["eval/length_corr"] > 0.3
    warnings = [e for e in events if isinstance(e, RunWarning) and e.code == "length_bias"]
    assert len(warnings) == 1
    assert f"ρ = {metrics['eval/length_corr']:+.2f}" in warnings[0].message
    # The correlation is also a metric, so the UI can chart it per epoch.
    assert any("eval/length_corr" in e.values for e in events if isinstance(e, Metrics))
