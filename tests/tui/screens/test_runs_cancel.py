"""Cancel from the runs screen (x): a run trained by another process stops through the database.

The other process is a real `tuilab train rm` on the tiny model in a terminal of
its own (the same runner a `tuilab sweep` trial runs, see tests/jobs/test_sweep.py);
the App shares only the lab's database with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from runhelp import LabApp, wait_for, write_rm_run

from tests.jobs.rm_data import insert_pairs
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.store.run_requests import cancel_requested

REPO = Path(__file__).resolve().parents[3]


def messages(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_x_on_a_finished_run_says_it_is_not_running(run_lab):
    home, db = run_lab
    write_rm_run(db, "rm-20261129-0627-3fa2")
    app = LabApp(home, mode="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.selected == "rm-20261129-0627-3fa2")
        await pilot.press("x")
        assert any("is not running (completed)" in m for m in messages(app)), messages(app)
        assert not cancel_requested(db, "rm-20261129-0627-3fa2")


@pytest.mark.slow
async def test_x_cancels_a_run_another_process_trains(tmp_path, tiny_model_dir):
    home = tmp_path / "lab"
    setup = open_db(home / "db" / "lab.db")
    insert_pairs(setup, 32)
    setup.conn.close()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Long enough never to finish by itself here (5000 epochs of 7 steps: ~10 min here).
    job = subprocess.Popen(
        [sys.executable, "-m", "tuilab", "--home", str(home), "train", "rm", "--quiet", "--set",
         f"base_model={tiny_model_dir}", "--set", "epochs=5000", "--set", "batch_size=4", "--set", "min_pairs=8",
         "--set", "checkpoint_every=0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        app = LabApp(home, mode="runs")
        async with app.run_test(size=(120, 40)) as pilot:
            db = app.db  # read what the runs screen reads, through the App's own connection

            def training() -> str | None:
                found = runs.list_runs(db, "rm")
                if found and found[0].status == "running" and runs.last_metric_step(db, found[0].id) >= 2:
                    return found[0].id
                return None

            try:
                await wait_for(pilot, training, limit=180)
            except AssertionError:
                job.kill()
                seen = [(r.id, r.status, runs.last_metric_step(db, r.id)) for r in runs.list_runs(db)]
                raise AssertionError(f"the job never trained two steps: {seen} {job.communicate()[1][-3000:]}") \
                    from None
            run_id = training()
            screen = app.screen
            screen.show_run(run_id)
            await wait_for(pilot, lambda: screen.selected == run_id)
            await pilot.press("x")
            said = [m for m in messages(app) if run_id in m]
            assert said and "cancel requested" in said[-1] and "after its current update" in said[-1], said
            stdout, stderr = job.communicate(timeout=120)
            assert job.returncode == 130, stderr[-3000:]  # the CLI's exit status for a cancelled run
            assert f"run {run_id} cancelled at step" in stderr
            # The runs screen shows it cancelled (its list is re-read every 2 s).
            await wait_for(pilot, lambda: "cancelled" in str(screen.query_one("#runs-table").get_row(run_id)),
                           limit=30)
        db = open_db(home / "db" / "lab.db")
        run = runs.get_run(db, run_id)
        assert run.status == "cancelled" and run.finished_at
        last = runs.last_metric_step(db, run_id)
        assert 2 <= last < run.total_steps  # stopped early, after the update it was in
        assert runs.list_checkpoints(db, run_id)  # a cancelled reward model keeps a loadable checkpoint
        assert not cancel_requested(db, run_id)
        db.conn.close()
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
