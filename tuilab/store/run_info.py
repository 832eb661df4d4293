"""What hangs off a run: its metrics, samples and checkpoints, and the runs built on it."""

from __future__ import annotations

import json

import sqlite_utils


def run_counts(db: sqlite_utils.Database, run_id: str) -> dict[str, int | None]:
    """Rows per table for one run, and the last step with metrics (None if none)."""
    counts: dict[str, int | None] = {
        table: db[table].count_where("run_id = ?", [run_id]) for table in ("metrics", "samples", "checkpoints")
    }
    counts["last_step"] = db.execute("SELECT MAX(step) FROM metrics WHERE run_id = ?", [run_id]).fetchone()[0]
    counts["comparisons"] = db["comparisons"].count_where("run_id = ?", [run_id])
    return counts


def child_runs(db: sqlite_utils.Database, run_id: str) -> list[str]:
    """Runs that name `run_id` as a parent (a PPO run's reward model)."""
    out = []
    for rid, parents in db.execute("SELECT id, parents FROM runs WHERE id != ? ORDER BY created_at", (run_id,)):
        if run_id in json.loads(parents or "[]"):
            out.append(rid)
    return out
