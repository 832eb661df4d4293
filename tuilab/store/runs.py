"""Training runs, their metrics and checkpoints.

Every function commits before it returns, unless called inside `transaction(db)`,
which wraps several writes in one transaction: the job runner flushes a
quarter-second of metrics, checkpoints and a status change as one commit.
Metrics are keyed (run, name, step), so a resumed run overwrites, never duplicates.

Rows are inserted, read, updated and deleted by key through sqlite-utils' table
API; upserts, aggregates and updates computed by SQLite (timestamps) are SQL.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlite_utils
from sqlite_utils.db import NotFoundError

from tuilab.records import Run
from tuilab.store.db import transaction

KINDS = ("rm", "ppo", "dpo")
STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
FINAL_STATUSES = ("completed", "failed", "cancelled")
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


class RunNotFound(KeyError):
    def __str__(self) -> str:
        return f"no run {self.args[0]!r} in this lab"




def new_run_id(kind: str, now: datetime | None = None) -> str:
    """`rm-20261129-0712-3fa2`: kind, local date and time, four random hex digits."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M")
    return f"{kind}-{stamp}-{secrets.token_hex(2)}"


def create_run(
    db: sqlite_utils.Database,
    kind: str,
    config: dict,
    *,
    name: str = "",
    parents: Iterable[str] = (),
    output_dir: str = "",
    total_steps: int | None = None,
    run_id: str | None = None,
) -> str:
    """Insert a pending run; returns its id (a fresh one unless `run_id` is given)."""
    if kind not in KINDS:
        raise ValueError(f"run kind must be one of {', '.join(KINDS)}; got {kind!r}")
    with transaction(db):
        if run_id is None:
            run_id = new_run_id(kind)
            while db["runs"].count_where("id = ?", [run_id]):
                run_id = new_run_id(kind)
        db["runs"].insert({
            "id": run_id, "kind": kind, "name": name, "config": json.dumps(config, default=str),
            "parents": json.dumps(list(parents)), "output_dir": str(output_dir), "total_steps": total_steps,
        })
    return run_id


def _row_to_run(data: dict[str, Any]) -> Run:
    return Run(
        id=data["id"],
        kind=data["kind"],
        name=data["name"],
        config=json.loads(data["config"] or "{}"),
        status=data["status"],
        parents=json.loads(data["parents"] or "[]"),
        output_dir=data["output_dir"],
        error=data["error"],
        error_summary=data["error_summary"],
        final_metrics=json.loads(data["final_metrics"] or "{}"),
        total_steps=data["total_steps"],
        created_at=data["created_at"],
        started_at=data["started_at"],
        finished_at=data["finished_at"],
    )


def get_run(db: sqlite_utils.Database, run_id: str) -> Run:
    try:
        return _row_to_run(db["runs"].get(run_id))
    except NotFoundError:
        raise RunNotFound(run_id) from None


def list_runs(db: sqlite_utils.Database, kind: str | None = None) -> list[Run]:
    """Newest first."""
    where, args = ("kind = ?", [kind]) if kind else (None, None)
    return [_row_to_run(row) for row in db["runs"].rows_where(where, args, order_by="created_at DESC, rowid DESC")]


def set_run_status(
    db: sqlite_utils.Database,
    run_id: str,
    status: str,
    *,
    error: str = "",
    error_summary: str = "",
    final_metrics: dict | None = None,
) -> None:
    """Move a run to `status`; stamps started_at on the first "running" and finished_at on a final status.

    "running" clears a previous ending (finished_at, error): that is how a resumed run starts again.
    """
    if status not in STATUSES:
        raise ValueError(f"run status must be one of {', '.join(STATUSES)}; got {status!r}")
    sets = ["status = ?"]
    params: list[Any] = [status]
    if status == "running":  # (again, for a resumed run: the old ending no longer applies)
        sets += [f"started_at = COALESCE(started_at, {NOW})", "finished_at = NULL"]
        if not (error or error_summary):
            sets += ["error = ''", "error_summary = ''"]
    if status in FINAL_STATUSES:
        sets.append(f"finished_at = {NOW}")
    if error or error_summary:
        sets += ["error = ?", "error_summary = ?"]
        params += [error, error_summary]
    if final_metrics is not None:
        sets.append("final_metrics = ?")
        params.append(json.dumps(final_metrics, default=str))
    with transaction(db):
        cur = db.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*params, run_id))
        if cur.rowcount == 0:
            raise RunNotFound(run_id)


def update_run(db: sqlite_utils.Database, run_id: str, **fields: Any) -> None:
    """Change other run fields (name, total_steps, output_dir, config, parents)."""
    allowed = {"name", "total_steps", "output_dir", "config", "parents"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"update_run: cannot set {', '.join(sorted(unknown))}")
    if not fields:
        return
    values = {k: json.dumps(v, default=str) if k in ("config", "parents") else v for k, v in fields.items()}
    try:
        with transaction(db):
            db["runs"].update(run_id, values)
    except NotFoundError:
        raise RunNotFound(run_id) from None


def delete_run(db: sqlite_utils.Database, run_id: str) -> None:
    """Remove a run with its metrics, samples and checkpoint rows (files on disk are left alone)."""
    with transaction(db):
        db["runs"].delete_where("id = ?", [run_id])


def write_metrics(db: sqlite_utils.Database, run_id: str, rows: Iterable[tuple[int, str, float]]) -> None:
    """Upsert (step, name, value) rows: a step written twice keeps the newer value."""
    rows = [(run_id, int(step), name, None if value is None else float(value)) for step, name, value in rows]
    if not rows:
        return
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO metrics (run_id, step, name, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_id, name, step) DO UPDATE SET value = excluded.value",
            rows,
        )


def read_metrics(
    db: sqlite_utils.Database, run_id: str, names: Iterable[str] | None = None
) -> dict[str, list[tuple[int, float]]]:
    """{name: [(step, value), …]} in step order."""
    sql = "SELECT name, step, value FROM metrics WHERE run_id = ?"
    params: list[Any] = [run_id]
    if names is not None:
        names = list(names)
        if not names:
            return {}
        sql += f" AND name IN ({', '.join('?' for _ in names)})"
        params += names
    out: dict[str, list[tuple[int, float]]] = {}
    for name, step, value in db.execute(sql + " ORDER BY name, step", params):
        out.setdefault(name, []).append((step, value))
    return out


def last_metric_step(db: sqlite_utils.Database, run_id: str) -> int:
    """The newest step with a metric recorded (0 when none): how far a run's history reached the database."""
    row = db.execute("SELECT MAX(step) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def metric_names(db: sqlite_utils.Database, run_id: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name", (run_id,))]


def add_checkpoint(
    db: sqlite_utils.Database, run_id: str, step: int, path: str, metrics: dict | None = None
) -> int:
    with transaction(db):
        table = db["checkpoints"].insert(
            {"run_id": run_id, "step": int(step), "path": str(path), "metrics": json.dumps(metrics or {}, default=str)}
        )
    return int(table.last_rowid)


def list_checkpoints(db: sqlite_utils.Database, run_id: str) -> list[tuple[int, str, dict]]:
    """(step, path, metrics) in step order."""
    rows = db["checkpoints"].rows_where("run_id = ?", [run_id], order_by="step, id")
    return [(r["step"], r["path"], json.loads(r["metrics"] or "{}")) for r in rows]


def latest_checkpoint(db: sqlite_utils.Database, run_id: str) -> tuple[int, str] | None:
    rows = db["checkpoints"].rows_where("run_id = ?", [run_id], order_by="step DESC, id DESC", limit=1)
    row = next(iter(rows), None)
    return (int(row["step"]), row["path"]) if row else None


def mark_interrupted(db: sqlite_utils.Database) -> list[str]:
    """Runs left "running"/"paused" by a process that died: mark them failed. Returns their ids.

    Call only when no other tuilab process is using this database (their live
    runs look the same from here).
    """
    with transaction(db):
        rows = db.execute(
            f"UPDATE runs SET status = 'failed', finished_at = {NOW}, "
            "error_summary = 'interrupted: the process ended while the run was active' "
            "WHERE status IN ('running', 'paused') RETURNING id"
        ).fetchall()
    return sorted(r[0] for r in rows)
