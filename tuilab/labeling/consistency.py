"""How consistent the labelers are: agreement between any two, self-agreement on repeats, side and length bias.

Computed from `store.agreement.decision_rows` (one query) with the interval
maths of `diagnostics.agreement`; the data screen, the label screen's strip and
`tuilab data stats` / `tuilab label agreement` all show these figures.

- Agreement between two labelers: on the generation pairs both decided (each
  labeler's first decision on the pair), same winner or both tie / both-bad.
- Self-agreement: a labeler's repeat of a pair (shown again later with the
  sides swapped) against their own first decision on it.
- Position bias: the share of strict preferences given to the left answer.
  Length bias: the share given to the longer answer (equal lengths left out).
  Both over first decisions only, so a repeat does not count twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

from tuilab.diagnostics.agreement import Agreement, agreement, outcome, side_bias
from tuilab.diagnostics.intervals import Interval
from tuilab.store.agreement import DecisionRow, decision_rows


@dataclass
class LabelerReport:
    """One labeler's figures; every share carries its interval and its count (`Interval.n`)."""

    labeler: str
    decisions: int
    repeats: int  # repeats decided (and compared with the first decision)
    self_agreement: Agreement | None
    position: Interval | None  # share of strict preferences for the left answer
    length: Interval | None  # share of strict preferences for the longer answer


@dataclass
class ConsistencyReport:
    labelers: dict[str, LabelerReport] = field(default_factory=dict)
    pairwise: list[tuple[str, str, Agreement]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Plain-text lines for `tuilab data stats` and the data screen."""
        out = []
        for r in self.labelers.values():
            bits = [f"{r.labeler}: {r.decisions} decisions"]
            if r.self_agreement is not None and r.self_agreement.n:
                bits.append(f"self-agreement {r.self_agreement.percent.format()} on repeats")
            else:
                bits.append("no repeats decided yet")
            if r.position is not None:
                bits.append(f"left picked {r.position.format()}")
            if r.length is not None:
                bits.append(f"longer picked {r.length.format()}")
            out.append(" · ".join(bits))
        for a, b, agr in self.pairwise:
            out.append(f"{a} vs {b}: {agr.summary()} on {agr.n} pairs both decided")
        return out


def split_repeats(rows: list[DecisionRow]) -> tuple[list[DecisionRow], list[tuple[DecisionRow, DecisionRow]]]:
    """(first decisions, [(first, repeat)]): a later decision by the same labeler on the same pair is a repeat."""
    first: dict[tuple[str, tuple[int, int]], DecisionRow] = {}
    firsts: list[DecisionRow] = []
    repeats: list[tuple[DecisionRow, DecisionRow]] = []
    for row in rows:
        k = (row.labeler, row.key)
        if k in first:
            repeats.append((first[k], row))
        else:
            first[k] = row
            firsts.append(row)
    return firsts, repeats


def _bias(rows: list[DecisionRow]) -> tuple[Interval | None, Interval | None]:
    strict = [r for r in rows if r.decision in ("left", "right")]
    left = sum(r.decision == "left" for r in strict)
    sized = [r for r in strict if r.left_len != r.right_len]
    longer = sum((r.decision == "left") == (r.left_len > r.right_len) for r in sized)
    return side_bias(left, len(strict)), side_bias(longer, len(sized))


def _outcome(row: DecisionRow) -> str:
    return outcome(row.decision, row.left_id, row.right_id)


def consistency(db, *, resamples: int = 500, min_shared: int = 1) -> ConsistencyReport:
    """Every labeler's figures and the agreement of every two labelers with at least `min_shared` pairs in common."""
    firsts, repeats = split_repeats(decision_rows(db))
    report = ConsistencyReport()
    by_labeler: dict[str, list[DecisionRow]] = {}
    for row in firsts:
        by_labeler.setdefault(row.labeler, []).append(row)
    repeats_by: dict[str, list[tuple[DecisionRow, DecisionRow]]] = {}
    for first, again in repeats:
        repeats_by.setdefault(first.labeler, []).append((first, again))
    for name, rows in by_labeler.items():
        pairs = repeats_by.get(name, [])
        self_agr = (agreement([_outcome(f) for f, _ in pairs], [_outcome(r) for _, r in pairs],
                              resamples=resamples) if pairs else None)
        position, length = _bias(rows) if rows[0].origin in ("human", "auto") else (None, None)
        report.labelers[name] = LabelerReport(name, len(rows), len(pairs), self_agr, position, length)
    outcomes = {name: {r.key: _outcome(r) for r in rows} for name, rows in by_labeler.items()}
    for a, b in combinations(sorted(by_labeler), 2):
        shared = sorted(set(outcomes[a]) & set(outcomes[b]))
        if len(shared) < min_shared:
            continue
        agr = agreement([outcomes[a][k] for k in shared], [outcomes[b][k] for k in shared], resamples=resamples)
        report.pairwise.append((a, b, agr))
    return report


def labeler_report(db, labeler: str, *, resamples: int = 200) -> LabelerReport | None:
    """One labeler's figures only (the label screen's strip, recomputed after every decision); None before any."""
    firsts, repeats = split_repeats(decision_rows(db))
    rows = [r for r in firsts if r.labeler == labeler]
    if not rows:
        return None
    pairs = [(f, r) for f, r in repeats if f.labeler == labeler]
    self_agr = (agreement([_outcome(f) for f, _ in pairs], [_outcome(r) for _, r in pairs], resamples=resamples)
                if pairs else None)
    position, length = _bias(rows)
    return LabelerReport(labeler, len(rows), len(pairs), self_agr, position, length)


def labeler_agreement(db, a: str, b: str, *, resamples: int = 500) -> Agreement:
    """Agreement of two named labelers on the pairs both decided (first decisions)."""
    firsts, _ = split_repeats(decision_rows(db))
    oa = {r.key: _outcome(r) for r in firsts if r.labeler == a}
    ob = {r.key: _outcome(r) for r in firsts if r.labeler == b}
    shared = sorted(set(oa) & set(ob))
    return agreement([oa[k] for k in shared], [ob[k] for k in shared], resamples=resamples)


def _interval(ci: Interval | None) -> dict | None:
    return None if ci is None else {"estimate": ci.estimate, "low": ci.low, "high": ci.high, "n": ci.n}


def _agreement(agr: Agreement | None) -> dict | None:
    if agr is None:
        return None
    return {"n": agr.n, "agree": agr.agree, "percent": _interval(agr.percent), "kappa": agr.kappa,
            "kappa_interval": _interval(agr.kappa_interval)}


def report_dict(report: ConsistencyReport) -> dict:
    """The report as JSON-ready data (`tuilab label agreement --json`, `tuilab data stats --json`)."""
    return {
        "labelers": {
            name: {"decisions": r.decisions, "repeats": r.repeats, "self_agreement": _agreement(r.self_agreement),
                   "position_left_share": _interval(r.position), "length_longer_share": _interval(r.length)}
            for name, r in report.labelers.items()
        },
        "pairwise": [{"a": a, "b": b, **_agreement(agr)} for a, b, agr in report.pairwise],
    }
