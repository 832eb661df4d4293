"""Generations: one response to one prompt, with where it came from (model, adapter, run, step)."""

from __future__ import annotations

import json

import sqlite_utils

from tuilab.records import Generation
from tuilab.store.prompts import NotFound


def add_generation(db: sqlite_utils.Database, prompt_id: int, text: str, *, model: str = "", adapter: str = "",
                   origin: str = "model", run_id: str | None = None, step: int | None = None,
                   params: dict | None = None, n_tokens: int | None = None, finished: bool | None = None,
                   created_at: str | None = None) -> int:
    """Store a response and return its id (committed on return, or joins an open transaction)."""
    if not isinstance(text, str):
        raise TypeError(f"generation text must be a string, got {type(text).__name__}")
    row = _row(prompt_id, text, model=model, adapter=adapter, origin=origin, run_id=run_id, step=step,
               params=params, n_tokens=n_tokens, finished=finished)
    if created_at is not None:
        row["created_at"] = created_at
    return int(db["generations"].insert(row).last_rowid)


def _row(prompt_id: int, text: str, *, model: str = "", adapter: str = "", origin: str = "model",
         run_id: str | None = None, step: int | None = None, params: dict | None = None,
         n_tokens: int | None = None, finished: bool | None = None) -> dict:
    """A generation's columns as stored (params as sorted JSON, finished as 0/1)."""
    return {
        "prompt_id": prompt_id, "text": text, "model": model, "adapter": adapter, "origin": origin,
        "run_id": run_id, "step": step, "params": json.dumps(params or {}, ensure_ascii=False, sort_keys=True),
        "n_tokens": n_tokens, "finished": None if finished is None else int(bool(finished)),
    }


_COLUMNS = "id, prompt_id, text, model, adapter, origin, run_id, step, params, n_tokens, finished"


def _generation(row: tuple) -> Generation:
    gid, pid, text, model, adapter, origin, run_id, step, params, n_tokens, finished = row
    return Generation(
        id=gid,
        prompt_id=pid,
        text=text,
        model=model,
        adapter=adapter,
        origin=origin,
        run_id=run_id,
        step=step,
        params=json.loads(params) if params else {},
        n_tokens=n_tokens,
        finished=None if finished is None else bool(finished),
    )


def get_generation(db: sqlite_utils.Database, gen_id: int) -> Generation:
    row = db.execute(f"SELECT {_COLUMNS} FROM generations WHERE id = ?", [gen_id]).fetchone()
    if row is None:
        raise NotFound(f"no generation with id {gen_id}")
    return _generation(row)


def list_generations(
    db: sqlite_utils.Database, prompt_id: int, *, origin: str | None = None
) -> list[Generation]:
    """Every response stored for a prompt, oldest first."""
    sql = f"SELECT {_COLUMNS} FROM generations WHERE prompt_id = ?"
    params: list = [prompt_id]
    if origin is not None:
        sql += " AND origin = ?"
        params.append(origin)
    return [_generation(r) for r in db.execute(sql + " ORDER BY id", params).fetchall()]


def find_generation(db: sqlite_utils.Database, prompt_id: int, text: str, *, origin: str, **fields) -> int | None:
    """The id of a stored generation equal in every recorded field (imports reuse it rather than copy).

    `fields` are `add_generation`'s (model, adapter, run_id, step, params, n_tokens, finished).
    """
    row = _row(prompt_id, text, origin=origin, **fields)
    found = db["generations"].rows_where(" AND ".join(f"{k} IS ?" for k in row), list(row.values()),
                                         select="id", order_by="id", limit=1)
    return next((r["id"] for r in found), None)
