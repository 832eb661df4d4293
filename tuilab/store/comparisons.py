"""Comparisons: a human (or import, or hacked-sample) decision between two responses.

`left_id`/`right_id` are as shown on screen, so position bias is measurable;
`swapped` says whether candidate A was shown on the right. An *edit* is a
comparison whose `edited_id` points to a rewrite preferred over both sides.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import sqlite_utils

from tuilab.records import DECISIONS, Comparison, LabelStats, Message
from tuilab.store.prompts import NotFound, like_pattern, transaction

_UPDATABLE = {f.name for f in fields(Comparison)} - {"prompt_id", "id", "created_at"}


@dataclass
class ComparisonView:
    """A comparison with the texts a browser shows: prompt, both responses, the edit if any."""

    comparison: Comparison
    prompt_text: str
    messages: list[Message]
    left_text: str
    right_text: str
    edited_text: str | None = None
    split: str = "train"
    left_tokens: int | None = None
    right_tokens: int | None = None

    @property
    def id(self) -> int:
        return self.comparison.id

    @property
    def decision(self) -> str:
        return self.comparison.decision

    @property
    def created_at(self) -> str:
        return self.comparison.created_at


def _check(decision: str | None = None, strength: int | None = None) -> None:
    if decision is not None and decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if strength is not None and strength not in (1, 2):
        raise ValueError(f"strength must be 1 (better) or 2 (much better), got {strength!r}")


def _check_generations(
    db: sqlite_utils.Database, prompt_id: int, ids: dict[str, int | None]
) -> None:
    for name, gid in ids.items():
        if gid is None:
            continue
        row = db.execute("SELECT prompt_id FROM generations WHERE id = ?", [gid]).fetchone()
        if row is None:
            raise ValueError(f"{name} {gid}: no such generation")
        if row[0] != prompt_id:
            raise ValueError(f"{name} {gid} answers prompt {row[0]}, not prompt {prompt_id}")


def record_comparison(
    db: sqlite_utils.Database, c: Comparison, *, created_at: str | None = None
) -> int:
    """Store a decision and return its id (also set on `c.id`); committed on return (or joins an open transaction).

    `created_at` (ISO UTC) is for imports that keep the original time; else now.
    """
    _check(c.decision, c.strength)
    if c.left_id == c.right_id:
        raise ValueError(f"left and right are the same generation ({c.left_id})")
    _check_generations(
        db, c.prompt_id, {"left_id": c.left_id, "right_id": c.right_id, "edited_id": c.edited_id}
    )
    row = {
        "prompt_id": c.prompt_id, "left_id": c.left_id, "right_id": c.right_id, "swapped": int(bool(c.swapped)),
        "decision": c.decision, "strength": c.strength, "margin": c.margin, "rationale": c.rationale,
        "edited_id": c.edited_id, "seconds": c.seconds, "annotator": c.annotator, "origin": c.origin,
        "run_id": c.run_id,
    }  # fmt: skip
    if created_at is not None:
        row["created_at"] = created_at
    c.id = int(db["comparisons"].insert(row).last_rowid)
    return c.id


_COLUMNS = (
    "c.id, c.prompt_id, c.left_id, c.right_id, c.decision, c.swapped, c.strength, c.margin, "
    "c.rationale, c.edited_id, c.seconds, c.annotator, c.origin, c.run_id, c.created_at"
)


def _comparison(row: tuple) -> Comparison:
    (cid, pid, left, right, decision, swapped, strength, margin, rationale, edited, seconds,
     annotator, origin, run_id, created_at) = row  # fmt: skip
    return Comparison(
        prompt_id=pid,
        left_id=left,
        right_id=right,
        decision=decision,
        swapped=bool(swapped),
        strength=strength,
        margin=margin,
        rationale=rationale,
        edited_id=edited,
        seconds=seconds,
        annotator=annotator,
        origin=origin,
        run_id=run_id,
        id=cid,
        created_at=created_at,
    )


def get_comparison(db: sqlite_utils.Database, cid: int) -> Comparison:
    row = db.execute(f"SELECT {_COLUMNS} FROM comparisons c WHERE c.id = ?", [cid]).fetchone()
    if row is None:
        raise NotFound(f"no comparison with id {cid}")
    return _comparison(row)


def delete_comparison(db: sqlite_utils.Database, cid: int) -> None:
    """Remove a decision (undo). Its edit, if no other comparison uses it, goes with it."""
    with transaction(db):
        c = get_comparison(db, cid)
        db["comparisons"].delete(cid)
        if c.edited_id is not None:
            db.execute(
                "DELETE FROM generations WHERE id = ? AND origin = 'edit' AND NOT EXISTS ("
                "SELECT 1 FROM comparisons WHERE edited_id = ? OR left_id = ? OR right_id = ?)",
                [c.edited_id] * 4,
            )


def update_comparison(db: sqlite_utils.Database, cid: int, **changes) -> None:
    """Change fields of a recorded decision (a relabel, a rationale added later)."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(
            f"cannot update {', '.join(sorted(unknown))}; fields: {', '.join(sorted(_UPDATABLE))}"
        )
    if not changes:
        return
    _check(changes.get("decision"), changes.get("strength"))
    with transaction(db):
        current = get_comparison(db, cid)
        ids = {k: changes[k] for k in ("left_id", "right_id", "edited_id") if k in changes}
        _check_generations(db, current.prompt_id, ids)
        if "swapped" in changes:
            changes["swapped"] = int(bool(changes["swapped"]))
        db["comparisons"].update(cid, changes)


def _filters(decision: str | Iterable[str] | None, search: str | None) -> tuple[str, list]:
    clauses, params = [], []
    if decision is not None:
        wanted = [decision] if isinstance(decision, str) else list(decision)
        for d in wanted:
            _check(d)
        clauses.append(f"c.decision IN ({', '.join('?' for _ in wanted)})")
        params += wanted
    if search:
        pattern = like_pattern(search)
        clauses.append(
            "(p.text LIKE ? ESCAPE '\\' OR l.text LIKE ? ESCAPE '\\' OR r.text LIKE ? ESCAPE '\\' "
            "OR e.text LIKE ? ESCAPE '\\')"
        )
        params += [pattern] * 4
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


_JOINS = (
    " FROM comparisons c JOIN prompts p ON p.id = c.prompt_id"
    " JOIN generations l ON l.id = c.left_id JOIN generations r ON r.id = c.right_id"
    " LEFT JOIN generations e ON e.id = c.edited_id"
)


def list_comparisons(
    db: sqlite_utils.Database,
    *,
    decision: str | Iterable[str] | None = None,
    search: str | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = True,
) -> list[ComparisonView]:
    """Comparisons with their texts; `decision` (one or several) and `search` (prompt and
    response text, case-insensitive for ASCII) narrow the list."""
    where, params = _filters(decision, search)
    order = "DESC" if newest_first else "ASC"
    rows = db.execute(
        f"SELECT {_COLUMNS}, p.text, p.messages, p.split, l.text, r.text, e.text, l.n_tokens, r.n_tokens"
        f"{_JOINS}{where} ORDER BY c.id {order} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    out = []
    for row in rows:
        ptext, messages, split, left, right, edited, ltok, rtok = row[15:]
        out.append(
            ComparisonView(
                comparison=_comparison(row[:15]),
                prompt_text=ptext,
                messages=json.loads(messages),
                left_text=left,
                right_text=right,
                edited_text=edited,
                split=split,
                left_tokens=ltok,
                right_tokens=rtok,
            )
        )
    return out


def count_comparisons(
    db: sqlite_utils.Database,
    *,
    decision: str | Iterable[str] | None = None,
    search: str | None = None,
) -> int:
    where, params = _filters(decision, search)
    return db.execute(f"SELECT count(*){_JOINS}{where}", params).fetchone()[0]


def db_timestamp(when: str | datetime) -> str:
    """An ISO time (any offset, or naive = UTC) in the database's `…T…:..:..mmmZ` form, so text order is time order."""
    moment = datetime.fromisoformat(when) if isinstance(when, str) else when
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def label_stats(db: sqlite_utils.Database, *, since: str | None = None) -> LabelStats:
    """Counts and bias figures for the label screen.

    `session` counts comparisons created at/after `since` (all of them when
    None). The shares and the median time are over human decisions only:
    imported and hacked-sample comparisons have their sides set by a program.
    `left_share` = left picks / (left + right picks); `longer_share` = picks
    of the response with more tokens (characters when a count is missing),
    equal lengths left out.
    """
    total = db["comparisons"].count
    if since is None:
        session = total
    else:
        session = db["comparisons"].count_where("created_at >= ?", [db_timestamp(since)])
    by_decision = dict.fromkeys(DECISIONS, 0)
    for decision, n in db.execute("SELECT decision, count(*) FROM comparisons GROUP BY decision"):
        by_decision[decision] = n
    rows = db.execute(
        "SELECT c.decision, l.n_tokens, r.n_tokens, length(l.text), length(r.text) FROM comparisons c"
        " JOIN generations l ON l.id = c.left_id JOIN generations r ON r.id = c.right_id"
        " WHERE c.origin = 'human' AND c.decision IN ('left', 'right')"
    ).fetchall()
    left = sum(1 for r in rows if r[0] == "left")
    longer = counted = 0
    for decision, ltok, rtok, lchars, rchars in rows:
        a, b = (ltok, rtok) if ltok is not None and rtok is not None else (lchars, rchars)
        if a == b:
            continue
        counted += 1
        if (decision == "left") == (a > b):
            longer += 1
    seconds = [
        r[0]
        for r in db.execute(
            "SELECT seconds FROM comparisons WHERE origin = 'human' AND seconds IS NOT NULL"
        ).fetchall()
    ]
    return LabelStats(
        session=session,
        total=total,
        by_decision=by_decision,
        left_share=left / len(rows) if rows else None,
        longer_share=longer / counted if counted else None,
        median_seconds=statistics.median(seconds) if seconds else None,
    )
