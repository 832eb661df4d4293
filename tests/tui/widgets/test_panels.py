"""What the label screen shows instead of a pair: the waiting panel (progress) and the error panel."""

from __future__ import annotations

import re
import time

from textual.widgets import Collapsible, ProgressBar, Static

from tuilab.labeling.queue import FeedState
from tuilab.tui.widgets.panels import ErrorPanel, WaitingPanel

from .hosting import Host


def _text(panel, selector: str) -> str:
    return str(panel.query_one(selector, Static).render())


def _elapsed(detail: str) -> int:
    """The whole seconds the panel says the generation has taken: `(12 s` in its detail line."""
    return int(re.search(r"\((\d+) s", detail).group(1))


async def test_waiting_panel_shows_the_decoding_step_when_the_source_reports_it():
    panel = WaitingPanel(id="waiting")
    app = Host(panel)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        state = FeedState(phase="generating", ready=1, capacity=4, source="base vs base", step=12, steps=48,
                          started_at=time.monotonic() - 3.0)
        panel.show_state(state, title="Generating the next pair…")
        await pilot.pause()
        assert _text(panel, "#waiting-title") == "Generating the next pair…"
        detail = _text(panel, "#waiting-detail")
        assert detail.startswith("generating with base vs base: token 12/48  (") and _elapsed(detail) >= 3
        assert detail.endswith("\n1/4 pairs ready · base vs base")
        bar = panel.query_one(ProgressBar)
        assert (bar.total, bar.progress) == (48, 12)
        panel.show_state(FeedState(phase="loading", detail="loading model", source="base"))
        await pilot.pause()
        assert _text(panel, "#waiting-title") == "Generating the next pair…"  # the title stays until changed
        assert _text(panel, "#waiting-detail") == "loading model\n0/4 pairs ready · base"
        assert panel.query_one(ProgressBar).total is None  # nothing to measure: it pulses


async def test_waiting_panel_measures_time_against_the_previous_pair():
    panel = WaitingPanel()
    app = Host(panel)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        panel.show_state(FeedState(phase="generating", source="s", eta_s=10.0, started_at=time.monotonic() - 4.0))
        await pilot.pause()
        bar = panel.query_one(ProgressBar)
        assert bar.total == 10.0 and 4.0 <= bar.progress <= 9.5
        assert "; expected ~10 s)" in _text(panel, "#waiting-detail")
        # Slower than expected: the bar stops short of full rather than claiming it is done.
        panel.show_state(FeedState(phase="generating", source="s", eta_s=2.0, started_at=time.monotonic() - 30.0))
        await pilot.pause()
        assert bar.progress == 0.95 * 2.0 and "; expected ~2 s)" in _text(panel, "#waiting-detail")
        assert _elapsed(_text(panel, "#waiting-detail")) >= 30


async def test_waiting_panel_ticks_only_while_shown():
    panel = WaitingPanel()
    app = Host(panel)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        started = time.monotonic() - 1.0
        panel.show_state(FeedState(phase="generating", source="s", started_at=started))
        assert 1 <= _elapsed(_text(panel, "#waiting-detail")) <= 2  # 2 only on a machine that stalled a second
        await pilot.pause(1.3)  # the 0.5 s timer redraws the elapsed time
        assert _elapsed(_text(panel, "#waiting-detail")) >= 2
        panel.stop()
        before = _text(panel, "#waiting-detail")
        await pilot.pause(1.1)
        assert _text(panel, "#waiting-detail") == before


async def test_error_panel_shows_reason_hint_and_folds_the_traceback():
    panel = ErrorPanel(id="error")
    app = Host(panel)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        panel.show_error("Generation failed", "ModelNotFound: no model 'nope'", "Press c to pick another source.",
                         "Traceback (most recent call last):\n  ...")
        await pilot.pause()
        assert panel.border_title == "Generation failed"
        assert _text(panel, "#error-reason") == "ModelNotFound: no model 'nope'"
        assert _text(panel, "#error-hint") == "Press c to pick another source."
        details = panel.query_one("#error-details", Collapsible)
        assert details.display and details.collapsed
        assert _text(panel, "#error-trace").startswith("Traceback (most recent call last):")
        panel.show_error("No prompts", "The train split has no prompts.", "Import some on F2.")
        await pilot.pause()
        assert panel.border_title == "No prompts" and not details.display  # no traceback: no fold
        assert _text(panel, "#error-reason") == "The train split has no prompts."
