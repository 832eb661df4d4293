"""The runs screen and the PPO inspector on rows written straight into the database (no torch)."""

from __future__ import annotations

from runhelp import LabApp, wait_for, write_ppo_run, write_rm_run

from tuilab.records import Sample
from tuilab.store.comparisons import get_comparison
from tuilab.store.samples import hacked_count, list_samples
from tuilab.training.events import Samples
from tuilab.tui.messages import JobEvents
from tuilab.tui.screens.inspect import InspectScreen
from tuilab.tui.screens.note import NoteScreen
from tuilab.tui.screens.runs import CompareScreen, RunsScreen, TracebackScreen
from tuilab.tui.widgets.charts import MetricChart

RM_A = "rm-20261129-0601-aaaa"
RM_B = "rm-20261129-0627-3fa2"
RM_FAILED = "rm-20261129-0650-bad0"


def seed(db) -> str:
    write_rm_run(db, RM_A, seed=1, created="2026-11-29T06:01:00.000Z", name="first")
    write_rm_run(db, RM_B)
    write_rm_run(db, RM_FAILED, status="failed", created="2026-11-29T06:50:00.000Z")
    return write_ppo_run(db, reward_run=RM_B)


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


def column(screen: InspectScreen, key: str) -> list[str]:
    table = screen.query_one("#insp-table")
    return [str(table.get_row_at(i)[[c.value for c in table.columns].index(key)]) for i in range(table.row_count)]


async def test_inspector_sorts_by_each_column(run_lab):
    home, db = run_lab
    ppo = seed(db)
    app = LabApp(home, mode="inspect")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#insp-table").row_count > 0)
        assert screen.run_id == ppo and screen.query_one("#insp-table").row_count == 24
        await pilot.press("s")
        scores = [float(x) for x in column(screen, "score")]
        assert scores == sorted(scores, reverse=True)
        await pilot.press("s")
        assert [float(x) for x in column(screen, "score")] == sorted(scores)
        await pilot.press("k")
        kls = [float(x) for x in column(screen, "kl")]
        assert kls == sorted(kls, reverse=True)
        await pilot.press("l")
        lengths = [int(x.rstrip("✂")) for x in column(screen, "length")]
        assert lengths == sorted(lengths, reverse=True)
        await pilot.press("d")
        spreads = [float(x) for x in column(screen, "spread")]
        assert spreads == sorted(spreads, reverse=True)
        await pilot.press("f")
        flags = column(screen, "flags")
        assert flags[0] == "long cut" and flags[-1] == ""
        # The highlighted sample is shown in full beside the reference, its flags in words.
        detail = str(screen.query_one("#sd-flags").render())
        assert "cut (no eos):" in detail and "cut off at the length cap" in detail
        assert str(screen.query_one("#sd-ref").render()).strip() != ""


async def test_h_marks_a_sample_hacked_as_a_comparison(run_lab):
    home, db = run_lab
    ppo = seed(db)
    app = LabApp(home, mode="inspect")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#insp-table").row_count > 0)
        await pilot.press("f")  # most-flagged first
        sample = screen.query_one("#insp-table").current()
        await pilot.press("h")
        # Committed before the screen shows it: another connection sees it.
        assert hacked_count(db, ppo) == 1
        row = db.conn.execute("SELECT id, origin, decision FROM comparisons WHERE origin = 'hacked'").fetchone()
        assert row[1] == "hacked" and row[2] == "left"
        assert sample.hacked and "hacked marks 1" in str(screen.query_one("#insp-status").render())
        assert column(screen, "hacked")[0] == "hacked"
        await pilot.press("h")
        assert "already marked" in str(screen.query_one("#insp-status").render())
        assert hacked_count(db, ppo) == 1
        # n: with a note
        await pilot.press("down")
        await pilot.press("n")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"wrong and long", "enter")
        await wait_for(pilot, lambda: hacked_count(db, ppo) == 2)
        cid = db.conn.execute("SELECT max(id) FROM comparisons WHERE origin = 'hacked'").fetchone()[0]
        assert get_comparison(db, cid).rationale == "wrong and long"
        # esc on the note prompt marks nothing
        await pilot.press("down", "n", "escape")
        assert hacked_count(db, ppo) == 2


async def test_live_samples_arrive_and_can_be_marked(run_lab):
    home, db = run_lab
    ppo = seed(db)
    app = LabApp(home, mode="inspect")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#insp-table").row_count == 24)
        prompt_id = list_samples(db, ppo, limit=1)[0].prompt_id
        row = Sample(prompt="Answer briefly: what is 2 + 2?", response="Four, which is a number, " * 6,
                     ref_response="4.", score=2.5, kl=3.0, length=60, eos=False, flags=["long", "no_eos"],
                     prompt_id=prompt_id)
        # What the runner does: write first, then forward.
        from tuilab.store.samples import write_samples

        write_samples(db, ppo, 31, [row])
        app.post_message(JobEvents(ppo, [Samples(31, [row])]))
        await wait_for(pilot, lambda: screen.query_one("#insp-table").row_count == 25)
        await pilot.press("s")  # highest score first: the new one
        current = screen.query_one("#insp-table").current()
        # The store gave the sample its id when it wrote it: the inspector marks by id.
        assert current.step == 31 and current.id == list_samples(db, ppo, step=31)[0].id
        await pilot.press("h")
        assert current.id is not None and current.hacked
        assert hacked_count(db, ppo) == 1


async def test_a_sample_without_a_reference_answer_is_refused_in_words(run_lab):
    home, db = run_lab
    ppo = seed(db)
    db.conn.execute("UPDATE samples SET ref_response = NULL")
    app = LabApp(home, mode="inspect")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#insp-table").row_count > 0)
        await pilot.press("h")
        # The seeded run's config names no base model, so no reference can be sampled for it
        # (test_inspect_references.py: one that does gets it sampled, then marked).
        line = str(app.screen.query_one("#insp-status").render())
        assert "does not name its base model" in line and "nothing was marked" in line
    assert hacked_count(db, ppo) == 0


async def test_empty_lab_says_what_to_do(run_lab):
    home, _ = run_lab
    for mode, text in (("runs", "No runs yet"), ("inspect", "No PPO run yet")):
        app = LabApp(home, mode=mode)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: pilot.app.screen.has_class("-empty"))
            screen = app.screen
            empty = "#runs-empty" if mode == "runs" else "#insp-empty"
            assert text in str(screen.query_one(empty).render())
