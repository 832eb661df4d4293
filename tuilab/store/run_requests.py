"""Cancel requests between processes: the UI asks, the process running the job stops it.

A job started by the App is stopped through its `RunControl` (same process).
A run trained elsewhere — a Ray Tune trial of `tuilab sweep`, a `tuilab train`
in a terminal, a torchrun job — shares only the database with the UI, so the
UI leaves a row here and that job's runner looks for it between updates
(`jobs/runner.py`). A request is cleared when the run starts or resumes, so
an old one never stops a resumed run.
"""

from __future__ import annotations

import sqlite_utils

from tuilab.store.db import transaction


def request_cancel(db: sqlite_utils.Database, run_id: str) -> None:
    """Ask whichever process runs `run_id` to cancel it (idempotent: the first request's time is kept)."""
    if not db["runs"].count_where("id = ?", [run_id]):
        raise LookupError(f"no run {run_id!r} in this lab to cancel")
    with transaction(db):
        db["cancel_requests"].insert({"run_id": run_id}, ignore=True)


def cancel_requested(db: sqlite_utils.Database, run_id: str) -> bool:
    return bool(db["cancel_requests"].count_where("run_id = ?", [run_id]))


def clear_cancel(db: sqlite_utils.Database, run_id: str) -> None:
    with transaction(db):
        db["cancel_requests"].delete_where("run_id = ?", [run_id])
