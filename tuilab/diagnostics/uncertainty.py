"""Which pair is worth a label: how unsure the reward model (or its ensemble) is about it.

Under Bradley–Terry a member with rewards r_a, r_b prefers a with probability
σ(r_a − r_b). With several members the *spread* of those probabilities (their
population std) says how much the ensemble disagrees: a label there moves the
members the most (query by committee, Seung et al. 1992). With one member the
best a model can say is how close its probability is to a coin flip, 1 − 2·|P − ½|.

numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def preference_probabilities(rewards_a: Sequence[float], rewards_b: Sequence[float]) -> np.ndarray:
    """P_k(a ≻ b) = σ(r_a,k − r_b,k) for each member k."""
    a = np.asarray(rewards_a, dtype=float)
    b = np.asarray(rewards_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need one reward per member for both answers, got {a.shape} and {b.shape}")
    return 1.0 / (1.0 + np.exp(-(a - b)))


@dataclass(frozen=True)
class PairUncertainty:
    """How unsure the model is about one pair; higher `score` = more useful to label."""

    score: float
    mean_p: float  # the members' mean P(first ≻ second)
    spread: float | None  # std of the members' P (None for a single model)
    members: int

    def why(self) -> str:
        """One sentence for the screen, after the decision."""
        if self.spread is not None:
            return (f"chosen because the {self.members} reward models disagree on it: P(A better) spread "
                    f"{self.spread:.2f} around {self.mean_p:.2f}")
        return f"chosen because the reward model is unsure: P(A better) = {self.mean_p:.2f}"


def pair_uncertainty(rewards_a: Sequence[float], rewards_b: Sequence[float]) -> PairUncertainty:
    """Ensemble spread of P(a ≻ b) when there are several members, else closeness of P to ½."""
    p = preference_probabilities(rewards_a, rewards_b)
    mean = float(p.mean())
    if p.size > 1:
        spread = float(p.std())
        return PairUncertainty(score=spread, mean_p=mean, spread=spread, members=int(p.size))
    return PairUncertainty(score=1.0 - 2.0 * abs(mean - 0.5), mean_p=mean, spread=None, members=1)


def most_uncertain(items: Sequence[PairUncertainty], k: int) -> list[int]:
    """Indices of the `k` most uncertain pairs, most uncertain first (ties: earlier first)."""
    order = sorted(range(len(items)), key=lambda i: (-items[i].score, i))
    return order[: max(k, 0)]
