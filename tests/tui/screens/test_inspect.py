"""The PPO / DPO inspector: sorting, the detail pane, `h` / `n` marks, live samples, and a missing reference answer.

A real lab (SQLite) with runs written straight into it (runhelp); for the reference answers, the tiny model
saved into the lab's models/ as the run's base; the App under `run_test`.
"""

from __future__ import annotations

import json
import shutil

from rich.text import Text
from runhelp import LabApp, seed, wait_for, write_ppo_run

from tuilab.config import LabPaths
from tuilab.modeling.host import ModelHost
from tuilab.records import Sample
from tuilab.store.comparisons import get_comparison
from tuilab.store.pairs import preference_pairs
from tuilab.store.samples import get_sample, hacked_count, list_samples
from tuilab.training.events import Samples
from tuilab.tui.app import TuilabApp
from tuilab.tui.messages import JobEvents
from tuilab.tui.screens.inspect import InspectScreen
from tuilab.tui.screens.note import NoteScreen


def ppo_run_without_references(db, home, tiny_model_dir, base: str = "tiny") -> str:
    """The seeded PPO run with its base model named in its config and no reference answer kept at any step."""
    shutil.copytree(tiny_model_dir, home / "models" / "tiny", dirs_exist_ok=True)
    run_id = write_ppo_run(db)
    config = {"base_model": base, "max_new_tokens": 6, "temperature": 1.0, "sample_every": 4}
    with db.conn:
        db.conn.execute("UPDATE runs SET config = ? WHERE id = ?", (json.dumps(config), run_id))
        db.conn.execute("UPDATE samples SET ref_response = NULL")
    return run_id


def status(screen) -> str:
    return str(screen.query_one("#insp-status").render())


def hacked_comparisons(db) -> int:
    return db.conn.execute("SELECT count(*) FROM comparisons WHERE origin = 'hacked'").fetchone()[0]


async def test_h_samples_the_missing_reference_from_the_base_then_marks(run_lab, tiny_model_dir):
    home, db = run_lab
    ppo = ppo_run_without_references(db, home, tiny_model_dir)
    pairs_before = len(preference_pairs(db))
    app = LabApp(home, mode="inspect")  # an App without a shared model host: the screen makes its own
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, InspectScreen)
        await wait_for(pilot, lambda: screen.query_one("#insp-table").row_count > 0)
        sample = screen.query_one("#insp-table").current()
        assert "no reference answer" in str(screen.query_one("#sd-ref").render())
        await pilot.press("h")  # the tiny model answers within the key press; the next test sees it in flight
        await wait_for(pilot, lambda: sample.hacked)
        # Committed before the screen showed it: the test's own connection sees it.
        stored = get_sample(db, sample.id)
        assert stored.hacked and stored.ref_response and stored.ref_response == sample.ref_response
        assert hacked_count(db, ppo) == 1 and hacked_comparisons(db) == 1
        pairs = preference_pairs(db)
        assert len(pairs) == pairs_before + 1
        assert (pairs[-1].chosen, pairs[-1].rejected) == (stored.ref_response, stored.response)
        assert "marked hacked → comparison #" in status(screen) and "hacked marks 1" in status(screen)
        # The row and the detail pane: hacked, and the reference answer shown beside the policy's.
        table = screen.query_one("#insp-table")
        hacked_col = [c.value for c in table.columns].index("hacked")
        assert str(table.get_row_at(table.cursor_row)[hacked_col]) == "hacked"
        assert str(screen.query_one("#sd-ref").content) == stored.ref_response
        await pilot.press("h")
        assert "already marked" in status(screen) and hacked_comparisons(db) == 1
    assert len(screen._hosts) == 0  # the screen's own model host was dropped with the screen


async def test_a_second_h_while_sampling_marks_once_and_the_apps_host_is_reused(run_lab, tiny_model_dir):
    home, db = run_lab
    ppo = ppo_run_without_references(db, home, tiny_model_dir)
    app = TuilabApp(LabPaths(home), start_feeder=False, mode="inspect", model="tiny")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: isinstance(screen, InspectScreen)
                       and screen.query_one("#insp-table").row_count > 0)
        # The label screen would have built the App's host on the same base; hold its lock as its queue would.
        app.model_host = host = ModelHost(app.paths.models, "tiny")
        sample = screen.query_one("#insp-table").current()
        with host.lock:
            await pilot.press("h")
            assert "sampling the reference answer for sample" in status(screen)  # at once, the UI not waiting
            await pilot.press("h")
            assert "still sampling the reference answer" in status(screen)
            await pilot.press("n")  # no note prompt either: it is on its way
            assert app.screen is screen and "still sampling" in status(screen)
            await pilot.pause(0.3)
            assert hacked_comparisons(db) == 0 and not sample.hacked  # nothing until the answer arrives
        await wait_for(pilot, lambda: sample.hacked)
        await pilot.pause(0.3)
        assert hacked_count(db, ppo) == 1 and hacked_comparisons(db) == 1
        assert host.is_loaded and not screen._hosts  # sampled on the App's host, no second copy of the model


async def test_a_run_whose_base_model_is_missing_marks_nothing_and_says_why(run_lab, tiny_model_dir):
    home, db = run_lab
    ppo = ppo_run_without_references(db, home, tiny_model_dir, base="gone-model")
    generations = db.conn.execute("SELECT count(*) FROM generations").fetchone()[0]
    app = LabApp(home, mode="inspect")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#insp-table").row_count > 0)
        sample = screen.query_one("#insp-table").current()
        await pilot.press("h")
        await wait_for(pilot, lambda: "could not sample" in status(screen))
        line = status(screen)
        assert f"sample {sample.id}" in line and "not marked" in line and "no model 'gone-model'" in line
        assert app.is_running and not sample.hacked
        # Nothing half-written: no reference stored, no comparison, no generation.
        assert get_sample(db, sample.id).ref_response is None
        assert hacked_count(db, ppo) == 0 and hacked_comparisons(db) == 0
        assert db.conn.execute("SELECT count(*) FROM generations").fetchone()[0] == generations
        # The failure is not left in flight: h again tries again (and says why again).
        screen._say(Text(""))
        await pilot.press("h")
        await wait_for(pilot, lambda: "could not sample" in status(screen))
        assert not screen._sampling and hacked_count(db, ppo) == 0


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
        # (test_h_samples_the_missing_reference_from_the_base_then_marks: one that does gets it sampled, then marked).
        line = str(app.screen.query_one("#insp-status").render())
        assert "does not name its base model" in line and "nothing was marked" in line
    assert hacked_count(db, ppo) == 0


async def test_a_forwarded_sample_the_store_has_not_written_is_not_marked(run_lab):
    home, db = run_lab
    ppo = seed(db)
    app = LabApp(home, mode="inspect")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#insp-table").row_count == 24)
        row = Sample(prompt="Answer briefly: what is 2 + 2?", response="Four, a number. " * 6, ref_response="4.",
                     score=9.5, kl=3.0, length=30, eos=True, prompt_id=list_samples(db, ppo, limit=1)[0].prompt_id)
        app.post_message(JobEvents(ppo, [Samples(32, [row])]))  # forwarded without being written: no id
        await wait_for(pilot, lambda: screen.query_one("#insp-table").row_count == 25)
        await pilot.press("s")
        assert screen.query_one("#insp-table").current() is not None
        assert screen.query_one("#insp-table").current().id is None
        await pilot.press("h")
        assert "not in the database yet" in status(screen)
        assert not row.hacked and hacked_count(db, ppo) == 0 and hacked_comparisons(db) == 0


async def test_r_rereads_the_samples_another_connection_wrote(run_lab):
    from tuilab.store.samples import write_samples

    home, db = run_lab
    ppo = seed(db)
    app = LabApp(home, mode="inspect")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#insp-table").row_count == 24)
        await pilot.press("k")
        prompt_id = list_samples(db, ppo, limit=1)[0].prompt_id
        write_samples(db, ppo, 31, [Sample(prompt="Answer briefly: what is 2 + 2?", response="4", ref_response="4.",
                                           score=0.1, kl=99.0, length=2, eos=True, prompt_id=prompt_id)])
        await pilot.pause(0.6)  # a redraw tick or more: a finished run is not polled
        assert screen.query_one("#insp-table").row_count == 24
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.query_one("#insp-table").row_count == 25)
        assert screen.sort_key == "kl" and float(column(screen, "kl")[0]) == 99.0  # the sort is kept
