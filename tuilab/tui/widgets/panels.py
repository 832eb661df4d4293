"""What the label screen shows instead of a pair: generating (with progress) or an error."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Collapsible, ProgressBar, Static

from tuilab.labeling.queue import FeedState


class WaitingPanel(Vertical):
    """The queue is empty: say what is being generated and how far along it is.

    Progress is the decoding step of the model call when the source reports it,
    else the elapsed time against the previous pair's; with neither, it pulses.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._state = FeedState()
        self._title = "Generating candidates…"

    def compose(self) -> ComposeResult:
        yield Static(id="waiting-title", markup=False)
        yield ProgressBar(id="waiting-progress", show_eta=False, show_percentage=False)
        yield Static(id="waiting-detail", markup=False)
        yield Static(
            "The screen stays responsive: F2 browses the data, c changes the candidate source, ? shows the keys.",
            id="waiting-hint",
            markup=False,
        )

    def on_mount(self) -> None:
        self._timer = self.set_interval(0.5, self._tick, pause=True)

    def show_state(self, state: FeedState, title: str | None = None) -> None:
        self._state = state
        if title is not None:
            self._title = title
        self._tick()
        if self.display:
            self._timer.resume()

    def stop(self) -> None:
        self._timer.pause()

    def _tick(self) -> None:
        s = self._state
        self.query_one("#waiting-title", Static).update(Text(self._title, style="bold"))
        detail = Text()
        detail.append(s.detail or f"generating with {s.source or '…'}")
        bar = self.query_one("#waiting-progress", ProgressBar)
        if s.steps:
            detail.append(f": token {s.step}/{s.steps}", style="bold")
            bar.update(total=s.steps, progress=s.step or 0)
        elif s.eta_s and s.started_at is not None:
            elapsed = max(0.0, time.monotonic() - s.started_at)
            bar.update(total=max(s.eta_s, 0.1), progress=min(elapsed, 0.95 * s.eta_s))
        else:
            bar.update(total=None)
        if s.started_at is not None:
            elapsed = max(0.0, time.monotonic() - s.started_at)
            detail.append(f"  ({elapsed:.0f} s", style="dim")
            if s.eta_s:
                detail.append(f"; expected ~{s.eta_s:.0f} s", style="dim")
            detail.append(")", style="dim")
        detail.append(f"\n{s.ready}/{s.capacity} pairs ready · {s.source}", style="dim")
        self.query_one("#waiting-detail", Static).update(detail)


class ErrorPanel(VerticalScroll):
    """A failure with its reason in plain words, what to do next, and the traceback folded."""

    def compose(self) -> ComposeResult:
        yield Static(id="error-reason", markup=False)
        yield Static(id="error-hint", markup=False)
        with Collapsible(title="Details (traceback)", collapsed=True, id="error-details"):
            yield Static(id="error-trace", markup=False)

    def show_error(self, title: str, reason: str, hint: str, detail: str = "") -> None:
        self.border_title = title
        self.query_one("#error-reason", Static).update(Text(reason, style="bold"))
        self.query_one("#error-hint", Static).update(Text(hint))
        details = self.query_one("#error-details", Collapsible)
        details.display = bool(detail)
        self.query_one("#error-trace", Static).update(Text(detail, style="dim"))
