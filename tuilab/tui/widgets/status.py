"""One-line strips under the pair: queue state + last decision, and labeling stats."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tuilab.labeling.queue import FeedState
from tuilab.records import LabelStats
from tuilab.tui.format import stats_text

PHASES = {
    "starting": "starting",
    "loading": "loading model",
    "generating": "generating",
    "idle": "queue full",
    "failed": "generation failed",
    "no_prompts": "no prompts",
    "stopped": "stopped",
}


class StatusLine(Static):
    """Queue fill and what the generator does, then the last decision and who wrote each side."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self._state = FeedState()
        self._message: Text = Text()
        self._shown: Text | None = None

    def set_state(self, state: FeedState) -> None:
        self._state = state
        self._redraw()

    def set_message(self, message: Text | str) -> None:
        self._message = message if isinstance(message, Text) else Text(message)
        self._redraw()

    def _redraw(self) -> None:
        s = self._state
        out = Text()
        phase = PHASES.get(s.phase, s.phase)
        if s.phase == "idle" and s.ready < s.capacity:
            phase = "ready"
        style = "bold red" if s.phase in ("failed", "no_prompts") else ("yellow" if s.ready == 0 else "green")
        out.append("● ", style=style)
        out.append(f"{s.ready}/{s.capacity} ready", style="bold")
        out.append(f" · {phase}", style="dim")
        if self._message:
            out.append("  │  ", style="dim")
            out.append_text(self._message)
        if out != self._shown:  # progress ticks mostly change nothing here: skip the redraw
            self._shown = out
            self.update(out)


class StatsStrip(Static):
    """Counts, position bias, length bias and median time to decide (from the store)."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self._stats = LabelStats()
        self._report = None

    def set_stats(self, stats: LabelStats, report=None) -> None:
        """`report`: this labeler's `labeling.consistency.LabelerReport` (intervals, self-agreement), or None."""
        self._stats = stats
        self._report = report
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        self.update(stats_text(self._stats, wide=self.size.width >= 145, report=self._report))
