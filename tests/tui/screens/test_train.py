"""The train screen with real jobs on the tiny model: start, watch points arrive, cancel, fail."""

from __future__ import annotations

import pytest
from runhelp import LabApp, add_pairs, ready, wait_for, write_rm_run

from tuilab.store.db import open_db
from tuilab.store.runs import get_run, list_runs
from tuilab.tui.screens.train import TrainScreen
from tuilab.tui.widgets.charts import MetricChart
from tuilab.tui.widgets.forms import ConfigForm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fill(screen: TrainScreen, **values) -> None:
    form = screen.query_one("#rm-form", ConfigForm)
    for key, value in values.items():
        form.set_value(key, value)


async def test_rm_job_charts_then_cancel(run_lab, tiny_model_dir):
    home, db = run_lab
    add_pairs(db, 24)
    app = LabApp(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, "#rm-form", "#ppo-form", "#train-warnings")
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        # Many epochs of tiny steps: the run is still going when we cancel it.
        _fill(screen, base_model=str(tiny_model_dir), epochs="400", batch_size="2")
        await pilot.press("s")
        run_id = app.training.active
        assert run_id is not None and run_id.startswith("rm-")
        loss = screen.query_one("#chart-loss", MetricChart)
        await wait_for(pilot, lambda: loss.point_count > 0)
        assert app.training.live_run(run_id).values("train/loss")
        assert str(screen.query_one("#btn-pause").label) == "Pause"
        await pilot.press("x")
        await wait_for(pilot, lambda: app.training.live_run(run_id).status == "cancelled")
        assert app.training.active is None
        await wait_for(pilot, lambda: not screen.query_one("#btn-start").disabled)
    check = open_db(home / "db" / "lab.db")
    try:
        assert get_run(check, run_id).status == "cancelled"
    finally:
        check.conn.close()


async def test_pause_then_resume_then_cancel(run_lab, tiny_model_dir):
    home, db = run_lab
    add_pairs(db, 24)
    app = LabApp(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, "#rm-form", "#ppo-form", "#train-warnings")
        screen = app.screen
        _fill(screen, base_model=str(tiny_model_dir), epochs="400", batch_size="2")
        await pilot.press("s")
        run_id = app.training.active
        live = app.training.live_run(run_id)
        await wait_for(pilot, lambda: bool(live.values("train/loss")))
        await pilot.press("p")
        assert live.status == "paused"
        await wait_for(pilot, lambda: get_run(db, run_id).status == "paused")
        await wait_for(pilot, lambda: str(screen.query_one("#btn-pause").label) == "Resume")
        await pilot.press("p")
        await wait_for(pilot, lambda: get_run(db, run_id).status == "running")
        await pilot.press("x")
        await wait_for(pilot, lambda: live.status == "cancelled")
    assert get_run(db, run_id).status == "cancelled"


async def test_bad_base_model_is_refused_before_any_run_and_app_stays_up(run_lab):
    home, db = run_lab
    add_pairs(db, 24)
    app = LabApp(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, "#rm-form", "#ppo-form", "#train-warnings")
        screen = app.screen
        _fill(screen, base_model=str(home / "no-such-model"))
        await pilot.press("s")
        await wait_for(pilot, lambda: "no-such-model" in str(screen.query_one("#form-errors").render()))
        assert "base_model" in str(screen.query_one("#form-errors").render())
        assert app.training.last is None and app.is_running
        # The app still works: the form still refuses in words.
        _fill(screen, epochs="zero")
        await pilot.press("s")
        assert "epochs" in str(screen.query_one("#form-errors").render())
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0  # no run row for a refused config


async def test_too_few_pairs_is_refused_in_words(run_lab):
    home, db = run_lab
    add_pairs(db, 3)
    app = LabApp(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, "#rm-form", "#ppo-form", "#train-warnings")
        await pilot.press("s")
        text = str(app.screen.query_one("#form-errors").render())
        assert "only 3 usable preference pairs" in text
    assert list_runs(db) == []


async def test_bad_field_is_named_and_kept(run_lab):
    home, db = run_lab
    add_pairs(db, 20)
    app = LabApp(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, "#rm-form", "#ppo-form", "#train-warnings")
        screen = app.screen
        _fill(screen, learning_rate="fast", batch_size="2.5")
        await pilot.press("s")
        text = str(screen.query_one("#form-errors").render())
        assert "learning rate: expected a number, got 'fast'" in text
        assert "batch size: expected a whole number" in text
        assert screen.query_one("#rm-learning-rate-row").has_class("-invalid")
        assert screen.query_one("#rm-form", ConfigForm).values()["learning_rate"] == "fast"
    assert list_runs(db) == []


async def test_opens_on_the_latest_run_from_the_database(run_lab):
    home, db = run_lab
    write_rm_run(db)
    app = LabApp(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, "#rm-form", "#ppo-form", "#train-warnings")
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#chart-accuracy", MetricChart).point_count > 0)
        assert "rm-20261129-0627-3fa2" in str(screen.query_one("#run-line").render())
        assert "length bias" in str(screen.query_one("#train-warnings").render())


async def test_a_reward_run_completed_here_is_offered_to_ppo(run_lab):
    from tuilab.tui.live import LiveRun

    home, db = run_lab
    app = LabApp(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, "#rm-form", "#ppo-form", "#train-warnings")
        form = app.screen.query_one("#ppo-form", ConfigForm)
        assert form.values()["reward_run"] == ""
        await pilot.press("s")  # no reward run: refused in words
        app.screen.query_one("#train-tabs").active = "tab-ppo"
        await pilot.press("s")
        assert "pick a reward run" in str(app.screen.query_one("#form-errors").render())
        run_id = write_rm_run(db)  # as if the job thread had just finished it
        app.training.runs[run_id] = LiveRun(run_id, status="completed")
        await wait_for(pilot, lambda: form.values()["reward_run"] == run_id)
        assert form.values()["base_model"] == "smollm2-135m-instruct"
