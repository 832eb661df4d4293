"""Cancel requests left in the database for a run whose job runs in another process."""

from __future__ import annotations

import time

import pytest

from tuilab.store import runs
from tuilab.store.db import open_db, transaction
from tuilab.store.run_requests import cancel_requested, clear_cancel, request_cancel


def test_a_request_is_seen_until_cleared(db):
    run_id = runs.create_run(db, "ppo", {})
    assert not cancel_requested(db, run_id)
    request_cancel(db, run_id)
    assert cancel_requested(db, run_id)
    clear_cancel(db, run_id)
    assert not cancel_requested(db, run_id)
    clear_cancel(db, run_id)  # nothing to clear: no error


def test_a_request_for_a_run_the_lab_does_not_have_is_refused_by_name(db):
    with pytest.raises(LookupError, match="no run 'ppo-gone' in this lab"):
        request_cancel(db, "ppo-gone")
    assert not cancel_requested(db, "ppo-gone")


def test_a_request_concerns_its_run_only(db):
    asked, other = runs.create_run(db, "ppo", {}), runs.create_run(db, "ppo", {})
    request_cancel(db, asked)
    assert cancel_requested(db, asked) and not cancel_requested(db, other)
    clear_cancel(db, other)
    assert cancel_requested(db, asked)


def test_asking_twice_keeps_the_first_request_time(db):
    run_id = runs.create_run(db, "rm", {})
    request_cancel(db, run_id)
    first = db.execute("SELECT requested_at FROM cancel_requests WHERE run_id = ?", [run_id]).fetchone()[0]
    time.sleep(0.01)
    request_cancel(db, run_id)
    rows = db.execute("SELECT requested_at FROM cancel_requests WHERE run_id = ?", [run_id]).fetchall()
    assert rows == [(first,)]


def test_the_process_running_the_job_sees_the_request(db, tmp_path):
    """The UI and the job share only the file: each opens its own connection."""
    run_id = runs.create_run(db, "ppo", {})
    job = open_db(tmp_path / "lab.db")
    try:
        request_cancel(db, run_id)
        assert cancel_requested(job, run_id)
        clear_cancel(job, run_id)  # the run resumes: the old request must not stop it
        assert not cancel_requested(db, run_id)
    finally:
        job.conn.close()


def test_a_request_inside_a_failed_transaction_is_not_kept(db):
    run_id = runs.create_run(db, "ppo", {})
    with pytest.raises(RuntimeError), transaction(db):
        request_cancel(db, run_id)  # joins the outer transaction
        raise RuntimeError("the caller's write failed")
    assert not cancel_requested(db, run_id)


def test_deleting_the_run_removes_its_request(db):
    run_id = runs.create_run(db, "ppo", {})
    request_cancel(db, run_id)
    runs.delete_run(db, run_id)
    assert db["cancel_requests"].count == 0
