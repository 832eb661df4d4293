"""The runs screen on rows written straight into the database (no torch); the inspector is in test_inspect.py."""

from __future__ import annotations

from runhelp import RM_A, RM_B, RM_FAILED, LabApp, seed, wait_for, write_rm_run

from tuilab.tui.live import LiveRun
from tuilab.tui.screens.inspect import InspectScreen
from tuilab.tui.screens.runs import CompareScreen, RunsScreen, TracebackScreen, compare_rows
from tuilab.tui.widgets.charts import MetricChart


def table_ids(screen: RunsScreen) -> list[str]:
    table = screen.query_one("#runs-table")
    return [str(k.value) for k in table.rows]


async def go_to(pilot, screen: RunsScreen, run_id: str) -> None:
    table = screen.query_one("#runs-table")
    table.focus()
    table.move_cursor(row=table_ids(screen).index(run_id))
    await wait_for(pilot, lambda: run_id in str(screen.query_one("#runs-line").render()))


async def test_runs_lists_every_run_and_redraws_a_finished_one_from_the_database(run_lab):
    home, db = run_lab
    ppo = seed(db)
    # A fresh app is a restart: nothing is in memory, everything comes back from SQLite.
    app = LabApp(home, mode="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await wait_for(pilot, lambda: screen.query_one("#chart-score", MetricChart).point_count > 0)
        assert table_ids(screen) == [ppo, RM_FAILED, RM_B, RM_A]
        assert screen.query_one("#chart-score", MetricChart).point_count > 0
        await go_to(pilot, screen, RM_B)
        # The run line changes first; the reward run's charts are built by the refresh that follows.
        await wait_for(pilot, lambda: screen.query_one("#chart-loss", MetricChart).point_count > 0)
        assert "eval acc 0.82" in str(screen.query_one("#runs-metrics").render())
        assert "length bias" in str(screen.query_one("#runs-warnings").render())


async def test_a_failed_run_shows_its_summary_and_the_traceback_on_demand(run_lab):
    home, db = run_lab
    seed(db)
    app = LabApp(home, mode="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await go_to(pilot, screen, RM_FAILED)
        assert "ModelNotFound: no model 'nope'" in str(screen.query_one("#runs-error").render())
        await pilot.press("e")
        assert isinstance(app.screen, TracebackScreen)
        assert "Traceback (most recent call last)" in str(app.screen.query_one("#tb-text").render())
        await pilot.press("escape")
        assert app.screen is screen


async def test_two_reward_runs_compare_side_by_side(run_lab):
    home, db = run_lab
    seed(db)
    app = LabApp(home, mode="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.press("c")  # nothing marked: refused in words, nothing pushed
        assert app.screen is screen
        await go_to(pilot, screen, RM_A)
        await pilot.press("space")
        await go_to(pilot, screen, RM_B)
        await pilot.press("space")
        assert screen.marked == [RM_A, RM_B]
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen)
                       and app.screen.query_one("#chart-accuracy", MetricChart).curves)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        curves = compare.query_one("#chart-accuracy", MetricChart).curves
        labels = {c.label for c in curves}
        assert {"A train", "B train", "A eval", "B eval"} <= labels
        rows = [compare.query_one("#cmp-table").get_row_at(i) for i in range(3)]
        assert rows[0][0] == "eval/accuracy" and rows[0][1] == "0.79" and rows[0][2] == "0.82"
        await pilot.press("escape")
        assert app.screen is screen


async def test_enter_on_a_ppo_run_opens_the_inspector_on_it(run_lab):
    home, db = run_lab
    ppo = seed(db)
    app = LabApp(home, mode="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await go_to(pilot, app.screen, ppo)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectScreen))
        assert app.screen.run_id == ppo


async def test_empty_lab_says_what_to_do(run_lab):
    home, _ = run_lab
    for mode, text in (("runs", "No runs yet"), ("inspect", "No PPO run yet")):
        app = LabApp(home, mode=mode)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: pilot.app.screen.has_class("-empty"))
            screen = app.screen
            empty = "#runs-empty" if mode == "runs" else "#insp-empty"
            assert text in str(screen.query_one(empty).render())


def test_compare_rows_line_up_the_final_metrics(db):
    a = LiveRun.from_db(db, write_rm_run(db))
    b = LiveRun.from_db(db, write_rm_run(db, "rm-20261129-0700-bbbb", seed=1))
    rows = compare_rows(a, b)
    assert rows[0][0] == "eval/accuracy"
    assert rows[0][3] == "-0.03"
    assert all(r[0] != "warnings" for r in rows)
