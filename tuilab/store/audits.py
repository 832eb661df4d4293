"""Gold audits of a PPO run: blind pairs of the policy at a checkpoint against the reference, and their verdicts.

An audit pair is two generations of one held-out prompt with `origin` "audit",
the run's id and the checkpoint's step, and `params["audit"]` saying which is
the "policy" and which the "reference". No new table: a pair is pending while
no comparison holds both generations, and decided by the first non-skip
comparison that does (a later one is a self-consistency repeat).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from tuilab.store.generations import add_generation

ROLES = ("policy", "reference")


@dataclass(frozen=True)
class AuditPair:
    run_id: str
    step: int
    prompt_id: int
    policy_id: int
    reference_id: int


def queue_audit_pair(db: sqlite_utils.Database, run_id: str, step: int, prompt_id: int,
                     policy: dict, reference: dict) -> AuditPair:
    """Store both answers (dicts of `add_generation` keywords: text, model, adapter, params, n_tokens, finished)."""
    ids = {}
    for role, g in (("policy", policy), ("reference", reference)):
        params = {**g.get("params", {}), "audit": role}
        ids[role] = add_generation(db, prompt_id, g["text"], model=g.get("model", ""), adapter=g.get("adapter", ""),
                                   origin="audit", run_id=run_id, step=step, params=params,
                                   n_tokens=g.get("n_tokens"), finished=g.get("finished"))
    return AuditPair(run_id, step, prompt_id, ids["policy"], ids["reference"])


_PAIRS = (
    "SELECT p.run_id, p.step, p.prompt_id, p.id, r.id FROM generations p JOIN generations r"
    " ON r.run_id = p.run_id AND r.step = p.step AND r.prompt_id = p.prompt_id AND r.origin = 'audit'"
    " AND json_extract(r.params, '$.audit') = 'reference'"
    " WHERE p.origin = 'audit' AND json_extract(p.params, '$.audit') = 'policy'"
)
_DECIDED = (
    "EXISTS (SELECT 1 FROM comparisons c WHERE ((c.left_id = p.id AND c.right_id = r.id)"
    " OR (c.left_id = r.id AND c.right_id = p.id)))"
)


def audit_pairs(db: sqlite_utils.Database, run_id: str) -> list[AuditPair]:
    rows = db.execute(_PAIRS + " AND p.run_id = ? ORDER BY p.step, p.id", [run_id]).fetchall()
    return [AuditPair(*r) for r in rows]


def audited_steps(db: sqlite_utils.Database, run_id: str) -> set[int]:
    return {r[0] for r in db.execute(
        "SELECT DISTINCT step FROM generations WHERE origin = 'audit' AND run_id = ?", [run_id])}


def pending_audit_pairs(db: sqlite_utils.Database, *, run_id: str | None = None,
                        limit: int | None = None) -> list[AuditPair]:
    """Audit pairs nobody has decided yet (oldest first): they wait here for the next labeling session."""
    sql = _PAIRS + f" AND NOT {_DECIDED}"
    params: list = []
    if run_id is not None:
        sql += " AND p.run_id = ?"
        params.append(run_id)
    sql += " ORDER BY p.id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [AuditPair(*r) for r in db.execute(sql, params).fetchall()]


def audit_verdicts(db: sqlite_utils.Database, run_id: str) -> list[tuple[int, str]]:
    """(step, verdict) per decided audit pair: "policy", "reference", "tie" or "both_bad" (first non-skip decision)."""
    out = []
    for pair in audit_pairs(db, run_id):
        row = db.execute(
            "SELECT left_id, right_id, decision FROM comparisons WHERE decision != 'skip'"
            " AND ((left_id = ? AND right_id = ?) OR (left_id = ? AND right_id = ?)) ORDER BY id LIMIT 1",
            [pair.policy_id, pair.reference_id, pair.reference_id, pair.policy_id],
        ).fetchone()
        if row is None:
            continue
        left, right, decision = row
        if decision in ("left", "right"):
            winner = left if decision == "left" else right
            out.append((pair.step, "policy" if winner == pair.policy_id else "reference"))
        else:
            out.append((pair.step, decision))
    return out
