"""Live metric charts: which metrics each kind charts, the curves built from a run, ticks, and the mounted chart."""

from __future__ import annotations

import math

import pytest
from textual.widgets import Static

from tuilab.training.events import Metrics
from tuilab.tui.live import LiveRun
from tuilab.tui.widgets.charts import (
    DPO_CHARTS,
    PPO_CHARTS,
    RM_CHARTS,
    SQRT_KL,
    Curve,
    MetricChart,
    charts_for,
    curves_for,
    legend_text,
    nice_ticks,
    padded_limits,
)

from .hosting import Host

HEALTH = {"critic": "val/explained_variance", "step": "policy/approxkl_avg"}


def _spec(kind: str, key: str):
    return next(c for c in charts_for(kind) if c.key == key)


def test_ppo_charts_name_the_health_metrics():
    specs = {c.key: c for c in charts_for("ppo")}
    for key, metric in HEALTH.items():
        assert metric in specs[key].series[0].names
    assert "policy/clipfrac_avg" in specs["step"].series[1].names
    assert not {"critic", "step"} & {c.key for c in charts_for("dpo")}


def test_charts_for_each_kind_and_reward_model_charts_for_anything_else():
    assert charts_for("ppo") is PPO_CHARTS and charts_for("dpo") is DPO_CHARTS
    assert charts_for("rm") is RM_CHARTS and charts_for("something-new") is RM_CHARTS
    for charts in (RM_CHARTS, PPO_CHARTS, DPO_CHARTS):
        keys = [c.key for c in charts]
        assert len(keys) == len(set(keys))  # the panel finds each chart by `#chart-<key>`


def test_nice_ticks_are_round_and_few():
    assert nice_ticks(0.0, 7.0, 4) == [0.0, 2.0, 4.0, 6.0]
    assert nice_ticks(-1.8, 0.8, 6) == [-1.5, -1.0, -0.5, 0.0, 0.5]
    assert len(nice_ticks(0.1, 0.9, 2)) >= 2
    assert padded_limits([]) is None


def test_nice_ticks_on_an_empty_or_broken_range():
    assert nice_ticks(3.0, 3.0, 4) == [3.0]  # one value: one tick, no loop
    assert nice_ticks(5.0, 1.0, 4) == [5.0]  # reversed range
    assert nice_ticks(0.0, 1.0, 0) == [0.0]
    assert nice_ticks(float("nan"), 1.0, 4) == []
    assert nice_ticks(0.0, float("inf"), 4) == [0.0]


def test_nice_ticks_stay_inside_the_range_one_round_step_apart():
    for lo, hi, most in ((0.0, 1000.0, 6), (-0.37, 0.52, 5), (12.5, 13.1, 3), (1e-4, 9e-4, 4)):
        ticks = nice_ticks(lo, hi, most)
        assert 2 <= len(ticks) <= max(4, most), (lo, hi, ticks)
        assert all(lo - 1e-12 <= t <= hi + 1e-12 for t in ticks), (lo, hi, ticks)
        gaps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:], strict=False)}
        assert len(gaps) == 1
        mantissa = round(gaps.pop() / 10 ** math.floor(math.log10(ticks[1] - ticks[0])), 6)
        assert mantissa in (1.0, 2.0, 5.0), (lo, hi, ticks)


def test_padded_limits_leave_air_and_skip_non_finite_values():
    assert padded_limits([Curve("a", [0, 1], [0.0, 1.0], "red")]) == pytest.approx((-0.05, 1.05))
    # A flat line still gets a range around it (5 % of its value).
    assert padded_limits([Curve("a", [0, 1], [2.0, 2.0], "red")]) == pytest.approx((1.9, 2.1))
    assert padded_limits([Curve("a", [0], [0.0], "red")]) == pytest.approx((-0.05, 0.05))
    both = [Curve("a", [0, 1], [1.0, float("nan")], "red"), Curve("b", [0], [3.0], "blue")]
    assert padded_limits(both) == pytest.approx((0.9, 3.1))
    assert padded_limits([Curve("a", [0], [float("inf")], "red")]) is None


def test_legend_names_each_curve_once_and_marks_sparse_ones():
    curves = [Curve("train raw", [0], [0], "grey42"), Curve("train", [0], [0], "green3"),
              Curve("eval", [0], [0], "orange1", markers=True)]
    text = legend_text(curves)
    assert text.plain == "━ train ● eval"
    assert "raw" not in text.plain
    assert legend_text([]).plain == ""


def test_curves_smooth_noisy_series_and_follow_the_axis():
    live = LiveRun("ppo-x", kind="ppo")
    live.apply([Metrics(s, {"objective/scores": math.sin(s), "objective/kl": s / 10}) for s in range(1, 40)])
    score = next(c for c in PPO_CHARTS if c.key == "score")
    curves = curves_for(score, [("", live)])
    assert [c.label for c in curves] == ["RM score raw", "RM score"]
    by_kl = curves_for(score, [("", live)], SQRT_KL)
    assert by_kl[1].xs[-1] == pytest.approx(math.sqrt(3.9), rel=0.05)
    # Two runs compared: one colour per run, labels prefixed.
    other = LiveRun("ppo-y", kind="ppo")
    other.apply([Metrics(1, {"objective/scores": 0.0})])
    both = curves_for(score, [("A", live), ("B", other)])
    assert {c.label for c in both} >= {"A RM score", "B RM score"}
    assert curves_for(RM_CHARTS[0], [("", live)]) == []  # nothing to draw is nothing, not an error


def test_a_renamed_metric_is_found_under_its_fallback_name():
    live = LiveRun("ppo-old", kind="ppo")
    live.apply([Metrics(s, {"ppo/kl": 0.1 * s}) for s in range(1, 5)])
    (raw, kl) = curves_for(_spec("ppo", "kl"), [("", live)])
    assert (raw.label, kl.label) == ("KL raw", "KL")
    assert raw.ys == pytest.approx([0.1, 0.2, 0.3, 0.4]) and raw.color == "grey42"
    assert kl.ys == pytest.approx([0.2, 0.25, 0.25, 0.3])  # the 5-point moving average, shrunk at the ends


def test_sparse_eval_points_are_markers_and_short_series_are_not_smoothed():
    live = LiveRun("rm-x")
    live.apply([Metrics(1, {"train/loss": 0.7}), Metrics(2, {"train/loss": 0.6, "eval/loss": 0.65})])
    train, evaluation = curves_for(_spec("rm", "loss"), [("", live)])
    assert (train.label, train.markers, train.ys) == ("train", False, [0.7, 0.6])  # two points: drawn as they are
    assert (evaluation.label, evaluation.markers, evaluation.xs) == ("eval", True, [2.0])


def test_curves_keep_to_the_point_budget_and_the_ends():
    live = LiveRun("rm-x")
    live.apply([Metrics(s, {"train/loss": 1.0 / s}) for s in range(1, 1001)])
    for curve in curves_for(_spec("rm", "loss"), [("", live)], limit=40):
        assert len(curve.xs) <= 40 and curve.xs[0] == 1.0 and curve.xs[-1] == 1000.0


def test_the_sqrt_kl_axis_needs_kl_values():
    live = LiveRun("ppo-x", kind="ppo")
    live.apply([Metrics(s, {"objective/scores": float(s)}) for s in range(1, 10)])
    assert curves_for(_spec("ppo", "score"), [("", live)], SQRT_KL) == []
    assert curves_for(_spec("ppo", "score"), [("", live)]) != []


def _placeholder(chart: MetricChart) -> str:
    return str(chart.query_one(".chart-empty", Static).render())


async def test_a_mounted_chart_replots_only_when_its_data_moved():
    chart = MetricChart(_spec("ppo", "score"), id="chart")
    app = Host(chart)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not chart.drawn and chart.border_title == "Score"
        assert chart.show([]) is True
        assert _placeholder(chart) == "no points yet" and chart.point_count == 0
        live = LiveRun("ppo-x", kind="ppo")
        live.apply([Metrics(s, {"objective/scores": 0.1 * s, "objective/kl": 0.01 * s}) for s in range(1, 30)])
        assert chart.show([("", live)]) is True
        plot = chart.children[1]
        assert plot.display and not chart.query_one(".chart-empty").display
        assert chart.point_count == 29 and chart.drawn
        assert "RM score" in str(chart.border_subtitle) and "x: step" in str(chart.border_subtitle)
        redraws = chart.redraws
        assert chart.show([("", live)]) is False and chart.redraws == redraws  # nothing new: no redraw
        live.apply([Metrics(30, {"objective/scores": 3.0})])
        assert chart.show([("", live)]) is True and chart.point_count == 30
        assert chart.show([("", live)], force=True) is True and chart.redraws == redraws + 2
        assert chart.show([("", live)], SQRT_KL) is True and "x: √KL" in str(chart.border_subtitle)


async def test_a_chart_on_the_sqrt_kl_axis_says_why_it_is_empty():
    chart = MetricChart(_spec("ppo", "score"))
    app = Host(chart)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        live = LiveRun("ppo-x", kind="ppo")
        live.apply([Metrics(s, {"objective/scores": float(s)}) for s in range(1, 5)])
        chart.show([("", live)], SQRT_KL)
        assert _placeholder(chart) == "no points yet (the √KL axis needs KL values)"
        assert chart.query_one(".chart-empty").display and chart.point_count == 0


async def test_a_resized_chart_replots_with_a_point_budget_for_its_width():
    chart = MetricChart(_spec("rm", "loss"))
    app = Host(chart)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        live = LiveRun("rm-x")
        live.apply([Metrics(s, {"train/loss": 1.0 / s}) for s in range(1, 2001)])
        assert chart.show([("", live)]) is True
        narrow = chart.point_count
        assert narrow <= 2 * max(chart.content_size.width - 8, 10) < 2000
        assert chart.show([("", live)]) is False
        await pilot.resize_terminal(160, 20)
        await pilot.pause()
        assert not chart.drawn  # the width changed: a redraw is due
        assert chart.show([("", live)]) is True and chart.point_count > narrow
