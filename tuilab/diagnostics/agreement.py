"""How far two labelers agree, how far one agrees with itself, and which side or length it favours.

A decision is compared by its *outcome*, which does not depend on where the
answers were shown: the id of the generation that won, or "tie" / "both_bad".
Two annotators who saw the same pair with the sides the other way round agree
when the same answer won. Skips say nothing and are left out by the callers.

- `cohen_kappa`: κ = (p_o − p_e) / (1 − p_e) (Cohen 1960), p_e from each
  rater's own category shares; None when p_e = 1 (both always say the same
  single thing: agreement by construction, κ undefined).
- `agreement`: percent agreement with a Wilson interval, κ with a bootstrap
  interval, and the number of pairs behind them.
- `side_bias`: the share of strict preferences for the left answer (position
  bias) or for the longer answer (length bias), with a Wilson interval; an
  unbiased labeler on randomised sides sits at 0.5.

numpy and the standard library only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tuilab.diagnostics.intervals import Interval, bootstrap, wilson


def outcome(decision: str, left_id: int, right_id: int) -> str | None:
    """The side-independent result of a decision: the winner's generation id (as text), "tie", "both_bad";
    None for a skip (it says nothing)."""
    if decision == "left":
        return str(left_id)
    if decision == "right":
        return str(right_id)
    if decision in ("tie", "both_bad"):
        return decision
    if decision == "skip":
        return None
    raise ValueError(f"unknown decision {decision!r}")


def percent_agreement(a: Sequence[str], b: Sequence[str]) -> float | None:
    _same_length(a, b)
    if not a:
        return None
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's κ over paired labels; None with no pairs or when chance agreement is 1."""
    _same_length(a, b)
    n = len(a)
    if n == 0:
        return None
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if p_e >= 1.0 - 1e-12:
        return None
    return (p_o - p_e) / (1.0 - p_e)


@dataclass(frozen=True)
class Agreement:
    """Agreement between two labelers (or one labeler and its repeats) on `n` pairs both decided."""

    n: int
    agree: int
    percent: Interval | None  # share of pairs with the same outcome, Wilson interval
    kappa: float | None
    kappa_interval: Interval | None  # bootstrap over pairs

    def summary(self) -> str:
        if self.n == 0 or self.percent is None:
            return "no pairs decided by both"
        kappa = "κ n/a" if self.kappa is None else f"κ {self.kappa:.2f}"
        if self.kappa_interval is not None:
            kappa += f" [{self.kappa_interval.low:.2f}–{self.kappa_interval.high:.2f}]"
        return f"{self.percent.format()} · {kappa}"


def _paired_outcomes(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, str]]:
    """`_same_length` checked, as rows for bootstrap resampling."""
    _same_length(a, b)
    return list(zip(a, b, strict=True))


def _kappa_rows(rows: Sequence[tuple[str, str]]) -> float | None:
    return cohen_kappa([r[0] for r in rows], [r[1] for r in rows])


def agreement(a: Sequence[str], b: Sequence[str], *, confidence: float = 0.95, resamples: int = 1000,
              seed: int = 0) -> Agreement:
    """Percent agreement (Wilson interval) and Cohen's κ (bootstrap interval) of two outcome lists."""
    rows = _paired_outcomes(a, b)
    agree = sum(x == y for x, y in rows)
    kappa = cohen_kappa(a, b)
    kappa_ci = (bootstrap(rows, _kappa_rows, resamples=resamples, confidence=confidence, seed=seed)
                if kappa is not None else None)
    return Agreement(n=len(rows), agree=agree, percent=wilson(agree, len(rows), confidence),
                     kappa=kappa, kappa_interval=kappa_ci)


def side_bias(hits: int, n: int, confidence: float = 0.95) -> Interval | None:
    """Share of `n` strict preferences that went to one kind of side (the left one, the longer one)."""
    return wilson(hits, n, confidence)


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"the two label lists differ in length: {len(a)} vs {len(b)}")
