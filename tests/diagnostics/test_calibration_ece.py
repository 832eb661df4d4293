"""Expected calibration error against examples worked by hand."""

import pytest

from tuilab.diagnostics.calibration import expected_calibration_error


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
