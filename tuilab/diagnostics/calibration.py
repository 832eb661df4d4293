"""Numbers that say whether a reward model's preferences can be trusted: numpy only.

Pairwise accuracy and margin say how often and how firmly it agrees with the
labels; expected calibration error says whether σ(r_c − r_r) means what it
claims; the reward/length correlation says whether it learned length instead of
quality — a reward model trained on pairs whose chosen answer is usually the
longer one learns length in general, and PPO then exploits it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tuilab.diagnostics.stats import pearson

LENGTH_BIAS_THRESHOLD = 0.3


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def expected_calibration_error(
    probs: Sequence[float], labels: Sequence[float] | None = None, bins: int = 10
) -> float:
    """ECE of P(chosen ≻ rejected) = σ(r_c − r_r) against the labels (1 = chosen preferred, 0.5 = tie).

    Each prediction is read from the side it favours: confidence max(p, 1 − p)
    against how often that side was preferred, in `bins` equal bins over
    [0.5, 1]. So the figure does not depend on which side is called "chosen"
    (with every label 1, a plain binning of p would only measure confidence).
    """
    p = np.asarray(probs, dtype=float)
    if p.size == 0:
        return float("nan")
    y = np.ones_like(p) if labels is None else np.asarray(labels, dtype=float)
    favours_chosen = p >= 0.5
    conf = np.round(np.where(favours_chosen, p, 1.0 - p), 12)
    hit = np.where(favours_chosen, y, 1.0 - y)
    # Bins [0.5, 0.5 + w), [0.5 + w, 0.5 + 2w), …; the rounding keeps a confidence on an edge
    # (0.6 = 0.5 + 2·0.05) in the bin it starts, whatever the float error of (0.6 − 0.5)·20.
    which = np.clip(np.floor(np.round((conf - 0.5) * 2 * bins, 9)).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() / p.size * abs(float(hit[mask].mean()) - float(conf[mask].mean()))
    return float(total)


@dataclass
class PairEval:
    """Held-out figures for one reward model (or the ensemble mean)."""

    pairs: int
    accuracy: float | None  # over strict preferences (ties have no right answer)
    margin: float | None  # mean r_c − r_r over strict preferences
    ece: float | None
    loss: float | None  # mean Bradley–Terry loss (ties as 0.5 targets, margins applied)
    length_corr: float | None  # Pearson(reward, response tokens) over every eval response

    def as_metrics(self, prefix: str = "eval/") -> dict[str, float]:
        out: dict[str, float] = {f"{prefix}pairs": float(self.pairs)}
        for name in ("accuracy", "margin", "ece", "loss", "length_corr"):
            value = getattr(self, name)
            if value is not None:
                out[f"{prefix}{name}"] = float(value)
        return out


def evaluate_pairs(
    chosen: Sequence[float],
    rejected: Sequence[float],
    *,
    labels: Sequence[float] | None = None,
    margins: Sequence[float] | None = None,
    chosen_lengths: Sequence[int] | None = None,
    rejected_lengths: Sequence[int] | None = None,
) -> PairEval:
    """Accuracy, mean margin, ECE, BT loss and reward/length correlation from raw rewards."""
    rc = np.asarray(chosen, dtype=float)
    rr = np.asarray(rejected, dtype=float)
    n = rc.size
    if n == 0:
        return PairEval(0, None, None, None, None, None)
    y = np.ones(n) if labels is None else np.asarray(labels, dtype=float)
    m = np.zeros(n) if margins is None else np.asarray(margins, dtype=float)
    delta = rc - rr
    strict = y >= 1.0
    accuracy = float((delta[strict] > 0).mean()) if strict.any() else None
    margin = float(delta[strict].mean()) if strict.any() else None
    z = delta - m
    # −[y·log σ(z) + (1 − y)·log σ(−z)], computed stably
    loss = float(np.mean(y * np.logaddexp(0.0, -z) + (1.0 - y) * np.logaddexp(0.0, z)))
    ece = expected_calibration_error(sigmoid(delta), y)
    corr = None
    if chosen_lengths is not None and rejected_lengths is not None:
        corr = pearson(
            np.concatenate([rc, rr]),
            np.concatenate([np.asarray(chosen_lengths, float), np.asarray(rejected_lengths, float)]),
        )
    return PairEval(n, accuracy, margin, ece, loss, corr)


def length_bias_message(corr: float | None, n_responses: int, threshold: float = LENGTH_BIAS_THRESHOLD) -> str | None:
    """A warning in words when |ρ(reward, length)| exceeds `threshold`, else None."""
    if corr is None or abs(corr) <= threshold:
        return None
    strength = "strongly" if abs(corr) >= 0.6 else "clearly"
    if corr > 0:
        return (
            f"Rewards rise {strength} with response length (Pearson ρ = {corr:+.2f} over {n_responses} "
            "held-out responses): the model may be scoring length rather than quality, and PPO "
            "against it will likely learn to write longer answers."
        )
    return (
        f"Rewards fall {strength} with response length (Pearson ρ = {corr:+.2f} over {n_responses} "
        "held-out responses): the model may be scoring brevity rather than quality, and PPO "
        "against it will likely learn to cut answers short."
    )
