"""The label screen's strips: queue state with the last decision, and the labeling stats."""

from __future__ import annotations

from rich.text import Text

from tuilab.diagnostics.agreement import Agreement
from tuilab.diagnostics.intervals import wilson
from tuilab.labeling.consistency import LabelerReport
from tuilab.labeling.queue import FeedState
from tuilab.records import LabelStats
from tuilab.tui.format import stats_text
from tuilab.tui.widgets.status import PHASES, StatsStrip, StatusLine

from .hosting import Host


def _dot_style(line: StatusLine) -> str:
    shown = line.content  # the Text the line was last updated with
    return str(next(s.style for s in shown.spans if s.start == 0))


async def test_status_line_says_how_full_the_queue_is_and_what_the_generator_does():
    line = StatusLine(id="status")
    app = Host(line)
    async with app.run_test(size=(100, 5)) as pilot:
        await pilot.pause()
        line.set_state(FeedState(phase="generating", ready=0, capacity=3))
        assert str(line.render()) == "● 0/3 ready · generating" and _dot_style(line) == "yellow"
        line.set_state(FeedState(phase="idle", ready=3, capacity=3))
        assert str(line.render()) == "● 3/3 ready · queue full" and _dot_style(line) == "green"
        line.set_state(FeedState(phase="idle", ready=2, capacity=3))  # idle but not full: waiting on settings
        assert str(line.render()) == "● 2/3 ready · ready"
        line.set_state(FeedState(phase="failed", ready=2, capacity=3))
        assert str(line.render()) == "● 2/3 ready · generation failed" and _dot_style(line) == "bold red"
        line.set_state(FeedState(phase="no_prompts", ready=0, capacity=3))
        assert "no prompts" in str(line.render()) and _dot_style(line) == "bold red"
        line.set_state(FeedState(phase="warming up", ready=1, capacity=3))  # a phase without a label: as is
        assert str(line.render()) == "● 1/3 ready · warming up"
        assert set(PHASES) >= {"starting", "loading", "generating", "idle", "failed", "no_prompts", "stopped"}


async def test_status_line_keeps_the_last_message_across_queue_updates():
    line = StatusLine()
    app = Host(line)
    async with app.run_test(size=(100, 5)) as pilot:
        await pilot.pause()
        line.set_message("saved #12: left better")
        line.set_state(FeedState(phase="generating", ready=1, capacity=3))
        assert str(line.render()) == "● 1/3 ready · generating  │  saved #12: left better"
        line.set_message(Text("undone", style="bold"))
        assert str(line.render()).endswith("  │  undone")
        line.set_message("")
        assert str(line.render()) == "● 1/3 ready · generating"


async def test_stats_strip_shows_the_store_figures_wide_or_narrow():
    stats = LabelStats(session=3, total=40, by_decision={"left": 12, "right": 9, "tie": 2}, left_share=12 / 21,
                       longer_share=0.81, median_seconds=4.25)
    for width, wide in ((160, True), (100, False)):
        strip = StatsStrip(id="stats")
        app = Host(strip)
        async with app.run_test(size=(width, 5)) as pilot:
            await pilot.pause()
            assert (strip.size.width >= 145) == wide
            assert str(strip.render()) == stats_text(LabelStats(), wide=wide).plain  # nothing counted yet
            strip.set_stats(stats)
            assert str(strip.render()) == stats_text(stats, wide=wide).plain
    text = stats_text(stats, wide=True).plain
    assert "labeled 3 session · 40 total" in text and "left picks 57%" in text and "median 4.2s" in text


async def test_stats_strip_takes_a_second_line_for_the_labelers_intervals():
    strip = StatsStrip()
    app = Host(strip)
    async with app.run_test(size=(160, 5)) as pilot:
        await pilot.pause()
        stats = LabelStats(session=20, total=20, by_decision={"left": 16, "right": 4}, left_share=0.8,
                           longer_share=0.5)
        report = LabelerReport("me", decisions=20, repeats=4,
                               self_agreement=Agreement(4, 3, wilson(3, 4), None, None),
                               position=wilson(16, 20), length=wilson(10, 20))
        strip.set_stats(stats, report)
        await pilot.pause()
        text = str(strip.render())
        assert text == stats_text(stats, wide=True, report=report).plain
        assert "\n" in text and "left picks 80% [58–92%] n=20" in text and "self-agreement 75%" in text
        assert strip.size.height == 2
        strip.set_stats(stats)  # the report gone: back to one line
        await pilot.pause()
        assert "\n" not in str(strip.render()) and strip.size.height == 1
