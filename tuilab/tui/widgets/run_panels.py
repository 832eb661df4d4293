"""Widgets the training screens share: the run header, the chart grid, the warnings list.

Text is built by plain functions (`run_line`, `metrics_line`, `warnings_text`)
so the wording is tested without an app.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container
from textual.css.query import NoMatches
from textual.widgets import Static

from tuilab.tui.live import POLICY_KINDS, LiveRun, WarningView, fmt_duration
from tuilab.tui.widgets.charts import STEP, ChartSpec, MetricChart, charts_for

STATUS_STYLE = {
    "pending": "yellow",
    "running": "bold green",
    "paused": "bold yellow",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}

KIND_LABEL = {"rm": "reward model", "ppo": "PPO", "dpo": "DPO"}

# The final metrics worth a column, per kind: (metric, short label).
HEADLINE = {
    "rm": (("eval/accuracy", "eval acc"), ("eval/loss", "eval loss"), ("train/loss", "train loss"),
           ("eval/ece", "ECE"), ("eval/length_corr", "len corr")),
    "ppo": (("objective/scores", "score"), ("objective/gold", "gold"), ("objective/kl", "KL"),
            ("response/length_mean", "length"), ("objective/rlhf_reward", "rlhf reward")),
    "dpo": (("eval/accuracy", "held-out acc"), ("rewards/margins", "margin"), ("objective/gold", "gold"),
            ("objective/kl", "KL"), ("response/length_mean", "length")),
}


def composed(node, *selectors: str) -> bool:
    """Whether these descendants exist yet: a screen's on_mount can run before its nested
    containers have mounted their own children."""
    try:
        for selector in selectors:
            node.query_one(selector)
    except NoMatches:
        return False
    return True


def parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def run_duration(live: LiveRun) -> float | None:
    """Wall time of a finished run from its database timestamps."""
    start, end = parse_ts(live.started_at), parse_ts(live.finished_at)
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def fmt_number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
            return f"{value:.2e}"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def metrics_line(kind: str, metrics: dict[str, Any], *, limit: int = 4) -> Text:
    """`eval acc 0.81 · eval loss 0.43 · …` from a run's final metrics (what exists of the headline)."""
    out = Text()
    shown = 0
    for key, label in HEADLINE.get(kind, ()):
        value = metrics.get(key)
        if value is None or isinstance(value, dict | list):
            continue
        if shown:
            out.append(" · ", style="dim")
        out.append(f"{label} ", style="dim")
        out.append(fmt_number(value))
        shown += 1
        if shown >= limit:
            break
    return out


def run_line(live: LiveRun | None, *, now: float | None = None, clock: bool = True) -> Text:
    """The header: id, kind, status, step, elapsed / duration, ETA."""
    out = Text()
    if live is None:
        out.append("No run yet: fill in a form and press s to start.", style="dim")
        return out
    style = STATUS_STYLE.get(live.status, "")
    out.append("● ", style=style)
    out.append(live.run_id, style="bold")
    if live.name:
        out.append(f" “{live.name}”")
    out.append(f"  {KIND_LABEL.get(live.kind, live.kind)}  ", style="dim")
    status = live.pending_action + "…" if live.pending_action else live.status
    out.append(status, style=style)
    if live.step is not None:
        total = f"/{live.total_steps}" if live.total_steps else ""
        out.append(f"  step {live.step}{total}")
    if clock and live.is_active:
        elapsed = live.elapsed_seconds(now)
        if elapsed is not None:
            out.append(f"  {fmt_duration(elapsed)} elapsed", style="dim")
        eta = live.eta_seconds(now)
        out.append("  ETA ", style="dim")
        out.append(fmt_duration(eta) if eta is not None else "–")
    elif not live.is_active:
        duration = run_duration(live)
        if duration is not None:
            out.append(f"  took {fmt_duration(duration)}", style="dim")
    return out


def show_failure(line: Static, live: LiveRun, lead: str, unknown: str, hint: str) -> None:
    """A failed run's error summary (`unknown` when it has none) between a bold `lead` and a dim
    `hint` on `line`, which is shown (class `-shown`) only while the run has failed."""
    failed = live.status == "failed"
    if failed:
        line.update(Text.assemble((lead, "bold"), live.error_summary or unknown, (hint, "dim")))
    line.set_class(failed, "-shown")


def warnings_text(warnings: Sequence[WarningView], *, limit: int = 4) -> Text:
    """Run-level warnings in words, newest first (so a short screen still shows the latest)."""
    out = Text()
    if not warnings:
        return out
    shown = list(reversed(warnings[-limit:]))
    for i, w in enumerate(shown):
        if i:
            out.append("\n")
        out.append("⚠ ", style="bold yellow")
        out.append(w.code.replace("_", " "), style="bold yellow")
        out.append(f" (step {w.step}): ", style="dim")
        out.append(w.message)
    hidden = len(warnings) - len(shown)
    if hidden > 0:
        out.append(f"\n… and {hidden} earlier warning{'s' if hidden != 1 else ''}", style="dim")
    return out


class ChartPanel(Container):
    """The charts of one run kind in a grid; `show` feeds every chart from the same sources."""

    SECONDARY = ("kl", "entropy", "accuracy", "critic", "step")

    def __init__(self, kind: str = "rm", **kwargs) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.set_class(kind in POLICY_KINDS, "-ppo")
        self.set_class(kind == "ppo", "-health")

    def _charts(self, kind: str) -> list[MetricChart]:
        return [MetricChart(spec, id=f"chart-{spec.key}",
                            classes="-secondary" if kind in POLICY_KINDS and spec.key in self.SECONDARY else "")
                for spec in charts_for(kind)]

    def compose(self) -> ComposeResult:
        yield from self._charts(self.kind)

    @property
    def specs(self) -> tuple[ChartSpec, ...]:
        return charts_for(self.kind)

    async def set_kind(self, kind: str) -> None:
        if kind == self.kind:
            return
        self.kind = kind
        self.set_class(kind in POLICY_KINDS, "-ppo")
        self.set_class(kind == "ppo", "-health")
        await self.remove_children()
        await self.mount_all(self._charts(kind))

    def show(self, sources: Sequence[tuple[str, LiveRun]], x_mode: str = STEP, *, force: bool = False) -> int:
        """Replot the visible charts whose data changed; returns how many were redrawn."""
        return sum(chart.show(sources, x_mode, force=force) for chart in self.query(MetricChart)
                   if chart.display)

    def chart(self, key: str) -> MetricChart:
        return self.query_one(f"#chart-{key}", MetricChart)

    def on_resize(self) -> None:
        self.set_class(self.size.width < 70 and self.kind == "rm", "-narrow")
        self.set_class(self.size.height < 20, "-short")


class WarningsView(Static):
    """Warnings in words, under the charts; hidden while there are none."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self._shown: tuple = ()

    def set_warnings(self, warnings: Sequence[WarningView], *, limit: int = 4) -> None:
        key = tuple((w.step, w.code, w.message) for w in warnings[-limit - 1:]) + (len(warnings),)
        if key == self._shown:
            return
        self._shown = key
        self.update(warnings_text(warnings, limit=limit))
        self.set_class(bool(warnings), "-shown")
