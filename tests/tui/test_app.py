"""The training screens inside the lab's own App: F3 / F4 / F5, jobs started by the App, errors reported."""

from __future__ import annotations

from runhelp import add_pairs, ready, wait_for, write_ppo_run, write_rm_run

from tuilab.config import LabPaths
from tuilab.tui.app import TuilabApp
from tuilab.tui.screens.inspect import InspectScreen
from tuilab.tui.screens.runs import RunsScreen
from tuilab.tui.screens.train import TrainScreen


async def test_function_keys_open_the_training_screens(run_lab):
    home, db = run_lab
    ppo = write_ppo_run(db, reward_run=write_rm_run(db))
    app = TuilabApp(LabPaths(home), start_feeder=False, mode="data")
    async with app.run_test(size=(120, 36)) as pilot:
        for key, cls in (("f3", TrainScreen), ("f4", RunsScreen), ("f5", InspectScreen)):
            await pilot.press(key)
            await wait_for(pilot, lambda cls=cls: isinstance(app.screen, cls))
        await wait_for(pilot, lambda: app.screen.run_id == ppo and app.screen.query_one("#insp-table").row_count)
        await pilot.press("f3")
        await wait_for(pilot, lambda: ppo in str(app.screen.query_one("#run-line").render()))


async def test_a_failing_job_is_reported_by_the_lab_app_which_stays_up(run_lab):
    home, db = run_lab
    add_pairs(db, 20)
    broken = home / "broken-model"  # passes the start checks (config.json), fails to load
    broken.mkdir(parents=True)
    (broken / "config.json").write_text('{"model_type": "llama"}')
    app = TuilabApp(LabPaths(home), start_feeder=False, mode="train")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, "#rm-form", "#train-warnings")
        app.screen.query_one("#rm-form").set_value("base_model", str(broken))
        await pilot.press("s")
        run_id = app.training.last
        await wait_for(pilot, lambda: app.training.live_run(run_id).status == "failed")
        await wait_for(pilot, lambda: any(run_id in e.where for e in app.errors))
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await wait_for(pilot, lambda: str(app.screen.query_one("#runs-error").render()).strip() != "")
        assert app.is_running


async def test_a_config_that_cannot_run_is_refused_before_any_run_exists(run_lab):
    home, db = run_lab
    add_pairs(db, 20)
    app = TuilabApp(LabPaths(home), start_feeder=False, mode="train")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, "#rm-form", "#train-warnings")
        app.screen.query_one("#rm-form").set_value("base_model", str(home / "missing-model"))
        await pilot.press("s")
        await wait_for(pilot, lambda: "missing-model" in str(app.screen.query_one("#form-errors").render()))
        assert app.training.last is None and app.is_running
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    assert not (home / "models" / "runs").exists() or not any((home / "models" / "runs").iterdir())
