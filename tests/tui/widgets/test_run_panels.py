"""The training screens' shared widgets: the run header's wording, the chart grid, the warnings list."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static

from tuilab.training.events import Failed, Metrics, RunWarning
from tuilab.tui.live import LiveRun
from tuilab.tui.widgets.charts import MetricChart, charts_for
from tuilab.tui.widgets.run_panels import (
    ChartPanel,
    WarningsView,
    composed,
    fmt_number,
    metrics_line,
    parse_ts,
    run_duration,
    run_line,
    show_failure,
    warnings_text,
)

from .hosting import Host


def test_wording():
    assert str(metrics_line("rm", {"eval/accuracy": 0.8123, "train/loss": 0.2})) == "eval acc 0.812 · train loss 0.2"
    assert "No run yet" in str(run_line(None))
    text = str(warnings_text([]))
    assert text == ""
    live = LiveRun("rm-x")
    live.apply([RunWarning(s, "length_bias", f"w{s}") for s in range(6)])
    text = str(warnings_text(live.warnings, limit=2))
    assert text.index("w5") < text.index("w4") and "2 earlier" not in text and "4 earlier" in text


class _Host(App):
    CSS_PATH = Host.CSS_PATH  # the lab's stylesheet lays the panel out

    def compose(self) -> ComposeResult:
        yield ChartPanel("ppo", id="panel")


@pytest.mark.asyncio
async def test_panel_lays_out_six_charts_and_hides_health_when_short():
    app = _Host()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        panel = app.query_one(ChartPanel)
        assert panel.has_class("-health") and len(list(panel.children)) == 6
        assert all(c.display for c in panel.children)
    app = _Host()
    async with app.run_test(size=(120, 16)) as pilot:
        await pilot.pause()
        panel = app.query_one(ChartPanel)
        shown = [c.id for c in panel.children if c.styles.display != "none"]
        assert shown == ["chart-score", "chart-length"]


def test_timestamps_and_the_duration_of_a_finished_run():
    ts = parse_ts("2026-11-29T06:27:05.000Z")
    assert (ts.hour, ts.minute, ts.second) == (6, 27, 5) and ts.utcoffset().total_seconds() == 0
    assert parse_ts(None) is None and parse_ts("") is None and parse_ts("yesterday") is None
    live = LiveRun("rm-x", status="completed", started_at="2026-11-29T06:27:05.000Z",
                   finished_at="2026-11-29T06:31:17.000Z")
    assert run_duration(live) == 252.0
    assert "took 4:12" in run_line(live).plain
    assert run_duration(LiveRun("rm-x", started_at="2026-11-29T06:27:05.000Z")) is None
    clock_skew = LiveRun("rm-x", started_at="2026-11-29T06:27:05.000Z", finished_at="2026-11-29T06:27:00.000Z")
    assert run_duration(clock_skew) == 0.0


@pytest.mark.parametrize(("value", "shown"), [
    (None, "–"), (True, "yes"), (False, "no"), (7, "7"), (0.8123, "0.812"), (0.0, "0"), (42.5, "42.5"),
    (123.4, "123"), (12345.0, "1.23e+04"), (0.0001, "1.00e-04"), (-0.5, "-0.5"), (float("nan"), "–"),
    (float("inf"), "–"), ("sigmoid", "sigmoid"),
])
def test_fmt_number(value, shown):
    assert fmt_number(value) == shown


def test_metrics_line_shows_what_exists_of_the_headline_in_order():
    final = {"train/loss": 0.2, "eval/loss": 0.43, "eval/accuracy": 0.81, "eval/ece": 0.05,
             "eval/length_corr": 0.6, "warnings": [{"code": "x"}]}
    assert metrics_line("rm", final).plain == "eval acc 0.81 · eval loss 0.43 · train loss 0.2 · ECE 0.05"
    assert metrics_line("rm", final, limit=2).plain == "eval acc 0.81 · eval loss 0.43"
    assert metrics_line("ppo", {"objective/kl": 6.9, "objective/scores": -0.12}).plain == "score -0.12 · KL 6.9"
    assert metrics_line("dpo", {"eval/accuracy": {"bad": 1}, "rewards/margins": 0.3}).plain == "margin 0.3"
    assert metrics_line("new-kind", final).plain == ""
    assert metrics_line("rm", {}).plain == ""


def test_run_line_of_a_running_run_shows_step_clock_and_eta():
    live = LiveRun("ppo-x", kind="ppo", name="first try")
    live.mark_started(now=100.0)
    live.apply([Metrics(10, {"m": 1.0}, total_steps=40)], now=110.0)
    text = run_line(live, now=115.0).plain
    assert text == "● ppo-x “first try”  PPO  running  step 10/40  0:15 elapsed  ETA 0:25"
    assert run_line(live, now=115.0, clock=False).plain == "● ppo-x “first try”  PPO  running  step 10/40"
    live.pending_action = "pausing"
    assert "  pausing…  step 10/40" in run_line(live, now=115.0).plain
    fresh = LiveRun("rm-y")
    assert run_line(fresh).plain == "● rm-y  reward model  pending  ETA –"  # no step, no clock yet


async def test_show_failure_shows_the_line_only_for_a_failed_run():
    line = Static("", id="err")
    app = Host(line)
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        live = LiveRun("rm-x", status="running")
        show_failure(line, live, "Failed: ", "(no reason recorded)", " — see the log")
        assert not line.has_class("-shown")
        live.apply([Failed("ModelNotFound: no model 'nope'", "Traceback…")])
        show_failure(line, live, "Failed: ", "(no reason recorded)", " — see the log")
        assert line.has_class("-shown")
        assert str(line.render()) == "Failed: ModelNotFound: no model 'nope' — see the log"
        live.error_summary = ""
        show_failure(line, live, "Failed: ", "(no reason recorded)", "")
        assert str(line.render()) == "Failed: (no reason recorded)"
        live.status = "running"  # resumed
        show_failure(line, live, "Failed: ", "?", "")
        assert not line.has_class("-shown")


async def test_composed_says_whether_descendants_are_mounted():
    app = Host(ChartPanel("rm", id="panel"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert composed(app.screen, "#panel", "#chart-loss", "#chart-accuracy")
        assert not composed(app.screen, "#panel", "#chart-kl")
        assert composed(app.screen)  # nothing asked: nothing missing


async def test_panel_swaps_its_charts_with_the_run_kind_and_feeds_the_visible_ones():
    app = Host(ChartPanel("rm", id="panel"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        panel = app.query_one(ChartPanel)
        assert [c.id for c in panel.children] == ["chart-loss", "chart-accuracy"]
        assert not panel.has_class("-ppo") and not panel.has_class("-health")
        assert panel.specs == charts_for("rm") and panel.chart("loss").spec is charts_for("rm")[0]
        live = LiveRun("rm-x")
        live.apply([Metrics(s, {"train/loss": 1.0 / s, "train/accuracy": 0.5}) for s in range(1, 6)])
        assert panel.show([("", live)]) == 2
        assert panel.show([("", live)]) == 0  # nothing changed: nothing redrawn
        assert panel.show([("", live)], force=True) == 2
        await panel.set_kind("dpo")
        await pilot.pause()
        assert [c.id for c in panel.children] == ["chart-score", "chart-kl", "chart-length", "chart-accuracy"]
        assert panel.has_class("-ppo") and not panel.has_class("-health")
        assert panel.chart("kl").has_class("-secondary") and not panel.chart("score").has_class("-secondary")
        assert isinstance(panel.chart("length"), MetricChart) and panel.chart("length").spec.title.startswith("Resp")
        await panel.set_kind("ppo")
        await pilot.pause()
        assert panel.has_class("-health") and len(panel.children) == 6


async def test_a_narrow_reward_model_panel_stacks_its_charts():
    app = Host(ChartPanel("rm", id="panel"))
    async with app.run_test(size=(60, 30)) as pilot:
        await pilot.pause()
        assert app.query_one(ChartPanel).has_class("-narrow")
    app = Host(ChartPanel("rm", id="panel"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert not app.query_one(ChartPanel).has_class("-narrow")


async def test_warnings_view_is_shown_only_with_warnings_newest_first():
    view = WarningsView(id="warnings")
    app = Host(view)
    async with app.run_test(size=(100, 12)) as pilot:
        await pilot.pause()
        view.set_warnings([])
        assert not view.has_class("-shown") and str(view.render()) == ""
        live = LiveRun("ppo-x", kind="ppo")
        live.apply([RunWarning(3, "length_growth", "answers grew 1.9×"), RunWarning(7, "length_bias", "r = 0.71")])
        view.set_warnings(live.warnings)
        assert view.has_class("-shown")
        text = str(view.render())
        assert text.index("length bias (step 7): r = 0.71") < text.index("length growth (step 3): answers grew 1.9×")
        live.apply([RunWarning(8, "kl_high", "KL 12")])
        view.set_warnings(live.warnings, limit=2)
        text = str(view.render())
        assert "kl high (step 8): KL 12" in text and "… and 1 earlier warning" in text and "grew" not in text
