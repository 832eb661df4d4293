"""A run as the screens see it, without an app: live state from events and from the database, curves' raw
material (moving average, downsampling, the √KL axis), durations."""

from __future__ import annotations

import pytest
from runhelp import write_ppo_run, write_rm_run

from tuilab.records import Sample
from tuilab.training.events import (
    Cancelled,
    Checkpoint,
    Failed,
    Finished,
    Metrics,
    RunWarning,
    Samples,
)
from tuilab.tui.live import (
    LiveRun,
    downsample,
    fmt_duration,
    moving_average,
    sqrt_kl_axis,
)
from tuilab.tui.widgets.run_panels import run_line


def test_apply_builds_series_progress_and_status():
    live = LiveRun("rm-x")
    live.apply([Metrics(1, {"train/loss": 0.7, "train/accuracy": 0.5}, total_steps=10)], now=0.0)
    live.apply([Metrics(2, {"train/loss": 0.6}), Checkpoint(2, "/tmp/c", {}),
                RunWarning(2, "length_bias", "longer wins")], now=1.0)
    assert live.status == "running" and live.step == 2 and live.total_steps == 10
    assert live.values("train/loss") == [(1, 0.7), (2, 0.6)]
    assert live.checkpoints == [(2, "/tmp/c")]
    assert [w.code for w in live.warnings] == ["length_bias"]
    v = live.version
    live.apply([Finished({"eval/accuracy": 0.8})])
    assert live.status == "completed" and live.final_metrics["eval/accuracy"] == 0.8 and live.version > v
    live.apply([Failed("boom", "Traceback…\nboom")])
    assert live.status == "failed" and live.error_summary == "boom"
    live.apply([Cancelled(3)])
    assert live.status == "cancelled"


def test_a_step_reported_again_keeps_one_value_in_order():
    live = LiveRun("rm-x")
    live.apply([Metrics(s, {"m": float(s)}) for s in (1, 2, 3)])
    live.apply([Metrics(3, {"m": 30.0})])
    live.apply([Metrics(2, {"m": 20.0})])  # a resumed run re-reports an earlier step
    assert live.values("m") == [(1, 1.0), (2, 20.0), (3, 30.0)]


def test_samples_keep_their_step_and_flags():
    live = LiveRun("ppo-x", kind="ppo")
    live.apply([Samples(4, [Sample("p", "r", score=1.0, flags=["long"])])])
    (s,) = live.samples
    assert s.step == 4 and s.flags == ["long"] and s.id is None


def test_eta_from_the_pace_so_far():
    live = LiveRun("rm-x")
    live.mark_started(now=100.0)
    live.apply([Metrics(10, {"m": 1.0}, total_steps=40)], now=110.0)  # 1 s a step
    assert live.eta_seconds(now=110.0) == pytest.approx(30.0)
    assert live.eta_seconds(now=115.0) == pytest.approx(25.0)
    assert live.elapsed_seconds(now=115.0) == pytest.approx(15.0)
    live.apply([Finished({})])
    assert live.eta_seconds(now=120.0) is None


def test_moving_average_is_centred_and_shrinks_at_the_ends():
    assert moving_average([1, 2, 3, 4, 5], 5) == [2.0, 2.5, 3.0, 3.5, 4.0]
    assert moving_average([], 5) == []
    assert moving_average([7.0], 5) == [7.0]


def test_downsample_keeps_ends_and_budget():
    xs = list(range(1000))
    ys = [float(x) for x in xs]
    dx, dy = downsample(xs, ys, 50)
    assert len(dx) == 50 and dx[0] == 0 and dx[-1] == 999 and dy[-1] == 999.0
    assert dx == sorted(dx)
    assert downsample([1, 2], [3, 4], 50) == ([1, 2], [3, 4])


def test_sqrt_kl_axis_reindexes_by_distance():
    xs, ys = sqrt_kl_axis([(1, 0.5), (2, 0.7), (3, 0.9)], [(1, 0.0), (3, 4.0), (2, -0.1)])
    assert xs == [0.0, 0.0, 2.0] and ys == [0.5, 0.7, 0.9]
    assert sqrt_kl_axis([(5, 1.0)], []) == ([], [])






def test_wording():
    assert fmt_duration(3725) == "1:02:05" and fmt_duration(None) == "–"


def test_from_db_rebuilds_what_the_runner_stored(db):
    write_rm_run(db)
    live = LiveRun.from_db(db, "rm-20261129-0627-3fa2")
    assert live.status == "completed" and live.kind == "rm" and live.step == 60
    assert len(live.values("train/loss")) == 60 and len(live.values("eval/accuracy")) == 2
    assert live.warnings[0].code == "length_bias"
    assert "took 4:12" in str(run_line(live))
    ppo = LiveRun.from_db(db, write_ppo_run(db))
    assert len(ppo.samples) == 24 and all(s.id is not None for s in ppo.samples)
    assert [s.step for s in ppo.samples] == sorted(s.step for s in ppo.samples)
