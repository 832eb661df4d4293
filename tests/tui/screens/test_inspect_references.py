"""`h` in the inspector on a sample from a step the run kept no reference answer for: one is sampled, then marked.

A real lab (SQLite), the tiny model saved into the lab's models/ as the run's base, the App under `run_test`.
"""

from __future__ import annotations

import json
import shutil

from rich.text import Text
from runhelp import LabApp, wait_for, write_ppo_run

from tuilab.config import LabPaths
from tuilab.modeling.host import ModelHost
from tuilab.store.pairs import preference_pairs
from tuilab.store.samples import get_sample, hacked_count
from tuilab.tui.app import TuilabApp
from tuilab.tui.screens.inspect import InspectScreen


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
