"""Runs, metrics and checkpoints in a real SQLite database."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tuilab.store import runs
from tuilab.store.db import transaction


def test_create_and_get_run(db):
    run_id = runs.create_run(db, "rm", {"epochs": 2, "lora": {"r": 8}}, name="first", output_dir="/x/y")
    assert re.fullmatch(r"rm-\d{8}-\d{4}-[0-9a-f]{4}", run_id)
    run = runs.get_run(db, run_id)
    assert run.kind == "rm" and run.name == "first" and run.status == "pending"
    assert run.config == {"epochs": 2, "lora": {"r": 8}}
    assert run.output_dir == "/x/y" and run.parents == [] and run.final_metrics == {}
    assert run.started_at is None and run.finished_at is None


def test_run_id_format():
    assert runs.new_run_id("ppo", datetime(2026, 11, 29, 7, 12)).startswith("ppo-20261129-0712-")


def test_bad_kind_and_status_are_refused(db):
    with pytest.raises(ValueError, match="kind"):
        runs.create_run(db, "sft", {})
    run_id = runs.create_run(db, "rm", {})
    with pytest.raises(ValueError, match="status"):
        runs.set_run_status(db, run_id, "exploded")
    with pytest.raises(runs.RunNotFound, match="no run 'nope'"):
        runs.set_run_status(db, "nope", "running")
    with pytest.raises(runs.RunNotFound):
        runs.get_run(db, "nope")


def test_status_lifecycle_stamps_times(db):
    run_id = runs.create_run(db, "rm", {})
    runs.set_run_status(db, run_id, "running")
    started = runs.get_run(db, run_id).started_at
    assert started
    runs.set_run_status(db, run_id, "paused")
    runs.set_run_status(db, run_id, "running")
    assert runs.get_run(db, run_id).started_at == started  # resuming keeps the first start
    runs.set_run_status(db, run_id, "failed", error="Traceback…\nValueError: boom", error_summary="ValueError: boom",
                        final_metrics={"steps": 3})
    run = runs.get_run(db, run_id)
    assert run.status == "failed" and run.finished_at
    assert run.error_summary == "ValueError: boom" and run.error.startswith("Traceback")
    assert run.final_metrics == {"steps": 3}
    # Resuming: running again clears the old ending but keeps the first start.
    runs.set_run_status(db, run_id, "running")
    run = runs.get_run(db, run_id)
    assert run.status == "running" and run.finished_at is None and run.error == run.error_summary == ""
    assert run.started_at == started


def test_parents_and_list_runs(db):
    rm = runs.create_run(db, "rm", {})
    ppo = runs.create_run(db, "ppo", {}, parents=[rm], total_steps=30)
    assert runs.get_run(db, ppo).parents == [rm]
    assert runs.get_run(db, ppo).total_steps == 30
    assert [r.id for r in runs.list_runs(db)] == [ppo, rm]
    assert [r.id for r in runs.list_runs(db, kind="rm")] == [rm]
    runs.update_run(db, rm, total_steps=12, name="renamed")
    assert runs.get_run(db, rm).total_steps == 12 and runs.get_run(db, rm).name == "renamed"
    with pytest.raises(ValueError, match="status"):
        runs.update_run(db, rm, status="completed")


def test_metrics_upsert_never_duplicates(db):
    run_id = runs.create_run(db, "rm", {})
    runs.write_metrics(db, run_id, [(1, "train/loss", 0.7), (2, "train/loss", 0.6), (2, "eval/accuracy", 0.5)])
    # A resumed run writes step 2 again: the value is replaced, not doubled.
    runs.write_metrics(db, run_id, [(2, "train/loss", 0.55), (3, "train/loss", 0.5)])
    got = runs.read_metrics(db, run_id)
    assert got["train/loss"] == [(1, 0.7), (2, 0.55), (3, 0.5)]
    assert got["eval/accuracy"] == [(2, 0.5)]
    assert runs.read_metrics(db, run_id, names=["eval/accuracy"]) == {"eval/accuracy": [(2, 0.5)]}
    assert runs.read_metrics(db, run_id, names=[]) == {}
    assert runs.metric_names(db, run_id) == ["eval/accuracy", "train/loss"]
    count = db.execute("SELECT count(*) FROM metrics WHERE run_id = ?", [run_id]).fetchone()[0]
    assert count == 4


def test_checkpoints(db):
    run_id = runs.create_run(db, "rm", {})
    assert runs.latest_checkpoint(db, run_id) is None
    first = runs.add_checkpoint(db, run_id, 100, "/runs/a/step-100", {"train/loss": 0.4})
    runs.add_checkpoint(db, run_id, 200, "/runs/a/step-200")
    assert isinstance(first, int)
    assert runs.latest_checkpoint(db, run_id) == (200, "/runs/a/step-200")
    assert runs.list_checkpoints(db, run_id)[0] == (100, "/runs/a/step-100", {"train/loss": 0.4})


def test_batch_is_one_transaction(db):
    run_id = runs.create_run(db, "rm", {})
    with pytest.raises(RuntimeError), transaction(db):
        runs.write_metrics(db, run_id, [(1, "train/loss", 1.0)])
        runs.add_checkpoint(db, run_id, 1, "/p")
        raise RuntimeError("crash mid-flush")
    assert runs.read_metrics(db, run_id) == {}
    assert runs.latest_checkpoint(db, run_id) is None
    with transaction(db):
        runs.write_metrics(db, run_id, [(1, "train/loss", 1.0)])
        runs.set_run_status(db, run_id, "running")
    assert runs.get_run(db, run_id).status == "running"
    assert not db.conn.in_transaction


def test_writes_are_visible_to_another_connection(db, tmp_path):
    from tuilab.store.db import open_db

    run_id = runs.create_run(db, "rm", {})
    runs.write_metrics(db, run_id, [(1, "train/loss", 1.0)])
    other = open_db(tmp_path / "lab.db")
    try:
        assert runs.read_metrics(other, run_id) == {"train/loss": [(1, 1.0)]}
    finally:
        other.conn.close()


def test_deleting_a_run_removes_its_rows(db):
    run_id = runs.create_run(db, "rm", {})
    runs.write_metrics(db, run_id, [(1, "train/loss", 1.0)])
    runs.add_checkpoint(db, run_id, 1, "/p")
    runs.delete_run(db, run_id)
    assert db.execute("SELECT count(*) FROM metrics").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 0


def test_mark_interrupted(db):
    live = runs.create_run(db, "rm", {})
    runs.set_run_status(db, live, "running")
    done = runs.create_run(db, "rm", {})
    runs.set_run_status(db, done, "completed")
    assert runs.mark_interrupted(db) == [live]
    assert runs.get_run(db, live).status == "failed"
    assert "interrupted" in runs.get_run(db, live).error_summary
    assert runs.get_run(db, done).status == "completed"
