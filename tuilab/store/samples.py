"""PPO samples: every rollout a run produced, sortable for the inspector, and "mark hacked".

Marking a sample hacked turns what the researcher saw into training data: the
reference policy's answer and the hacked answer become generations, and a
comparison (origin "hacked") prefers the reference, so the next reward model
learns not to pay for that behaviour.

`write_samples` joins an open transaction (the job runner writes a flush of
metrics and samples as one commit); alone, it commits before returning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import sqlite_utils

from tuilab.records import Comparison, Sample
from tuilab.store.comparisons import record_comparison
from tuilab.store.generations import add_generation
from tuilab.store.prompts import NotFound, transaction

# Sort keys the inspector offers → SQL expression.
ORDER_KEYS = {
    "score": "score",
    "kl": "kl",
    "length": "length",
    "spread": "spread",
    "gold": "gold",
    "flags": "json_array_length(flags)",
    "step": "step",
    "id": "id",
}

_COLUMNS = ("id, run_id, step, prompt_id, prompt, response, ref_response, score, spread, gold, kl, "
            "length, eos, flags, hacked, created_at")


def _sample(row: tuple) -> Sample:
    (sid, run_id, step, prompt_id, prompt, response, ref, score, spread, gold, kl, length, eos, flags,
     hacked, created) = row
    return Sample(id=sid, run_id=run_id, step=step, prompt=prompt, response=response, prompt_id=prompt_id,
                        ref_response=ref, score=score, spread=spread, gold=gold, kl=kl, length=length,
                        eos=None if eos is None else bool(eos), flags=json.loads(flags or "[]"),
                        hacked=bool(hacked), created_at=created)


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def write_samples(db: sqlite_utils.Database, run_id: str, step: int, rows: Iterable[Sample]) -> None:
    """Store one step's samples, replacing any earlier rows of that step; each `Sample` gets its id.

    The rows are the loop's own objects: `id`, `run_id` and `step` are set on
    them here, so whoever receives them next (the UI, through the job runner)
    holds samples that name their database row. A resumed run re-runs the
    steps after its checkpoint; replacing keeps one set of samples per step, as
    the metrics' upsert keeps one value.
    """
    rows = list(rows)
    with transaction(db):
        db["samples"].delete_where("run_id = ? AND step = ?", [run_id, int(step)])
        # A prompt deleted since the rollout keeps its text here; only the link is dropped.
        asked = [r.prompt_id for r in rows if r.prompt_id is not None]
        known = {r[0] for r in db.execute(
            f"SELECT id FROM prompts WHERE id IN ({', '.join('?' for _ in asked)})", asked)} if asked else set()
        for r in rows:
            if r.prompt_id not in known:
                r.prompt_id = None
            r.id = db["samples"].insert({
                "run_id": run_id, "step": int(step), "prompt_id": r.prompt_id, "prompt": r.prompt,
                "response": r.response, "ref_response": r.ref_response, "score": _num(r.score),
                "spread": _num(r.spread), "gold": _num(r.gold), "kl": _num(r.kl), "length": r.length,
                "eos": None if r.eos is None else int(bool(r.eos)), "flags": json.dumps(list(r.flags or [])),
            }).last_rowid
            r.run_id, r.step = run_id, int(step)


def list_samples(
    db: sqlite_utils.Database,
    run_id: str,
    *,
    step: int | None = None,
    order_by: str = "score",
    descending: bool = True,
    limit: int = 200,
    offset: int = 0,
    flag: str | None = None,
    hacked: bool | None = None,
) -> list[Sample]:
    """A run's samples, sorted by score, kl, length, spread, gold, flags (count), step or id.

    Missing values (no gold scorer, a single reward model) sort last either way;
    ties break by step then id, so paging is stable.
    """
    if order_by not in ORDER_KEYS:
        raise ValueError(f"order_by must be one of {', '.join(ORDER_KEYS)}; got {order_by!r}")
    expr = ORDER_KEYS[order_by]
    direction = "DESC" if descending else "ASC"
    where = ["run_id = ?"]
    params: list = [run_id]
    if step is not None:
        where.append("step = ?")
        params.append(int(step))
    if flag:
        where.append("EXISTS (SELECT 1 FROM json_each(samples.flags) WHERE json_each.value = ?)")
        params.append(flag)
    if hacked is not None:
        where.append("hacked = ?")
        params.append(int(hacked))
    sql = (f"SELECT {_COLUMNS} FROM samples WHERE {' AND '.join(where)} "
           f"ORDER BY ({expr}) IS NULL, {expr} {direction}, step {direction}, id {direction} LIMIT ? OFFSET ?")
    return [_sample(r) for r in db.execute(sql, (*params, int(limit), int(offset)))]


def count_samples(db: sqlite_utils.Database, run_id: str, *, step: int | None = None) -> int:
    if step is None:
        return db["samples"].count_where("run_id = ?", [run_id])
    return db["samples"].count_where("run_id = ? AND step = ?", [run_id, int(step)])


def sample_steps(db: sqlite_utils.Database, run_id: str) -> list[int]:
    return [r[0] for r in db.execute("SELECT DISTINCT step FROM samples WHERE run_id = ? ORDER BY step", (run_id,))]


def get_sample(db: sqlite_utils.Database, sample_id: int) -> Sample:
    row = db.execute(f"SELECT {_COLUMNS} FROM samples WHERE id = ?", (sample_id,)).fetchone()
    if row is None:
        raise NotFound(f"no sample {sample_id}")
    return _sample(row)


def mark_hacked(db: sqlite_utils.Database, sample_id: int, *, note: str = "") -> int:
    """Record "the reference answer is better than this hacked one"; returns the comparison id.

    Both answers are stored as generations (origin "ppo", with the run and
    step; the hacked one with adapter "policy", the reference with none), and
    a comparison with origin "hacked" shows the reference on the left and
    prefers it (decision "left"), the note as its rationale. The sample is
    flagged hacked. Marking the same sample twice records nothing new and
    returns the first comparison.
    """
    s = get_sample(db, sample_id)
    if s.prompt_id is None:
        raise ValueError(f"sample {sample_id}: its prompt was deleted, so no comparison can be recorded")
    if not s.ref_response:
        raise ValueError(
            f"sample {sample_id} (step {s.step}) has no reference response to prefer; reference answers "
            "are sampled every `sample_every` steps, so pick a sample from a step that has one"
        )
    with transaction(db):
        existing = db.execute(
            "SELECT c.id FROM comparisons c JOIN generations g ON g.id = c.right_id WHERE c.origin = 'hacked' "
            "AND json_extract(g.params, '$.sample_id') = ? ORDER BY c.id LIMIT 1",
            (s.id,),
        ).fetchone()
        if existing:
            return int(existing[0])
        ref_id = add_generation(db, s.prompt_id, s.ref_response, adapter="", origin="ppo", run_id=s.run_id,
                                step=s.step, params={"role": "reference", "sample_id": s.id})
        hacked_id = add_generation(db, s.prompt_id, s.response, adapter="policy", origin="ppo", run_id=s.run_id,
                                   step=s.step, n_tokens=s.length, finished=s.eos,
                                   params={"role": "hacked", "sample_id": s.id})
        cid = record_comparison(db, Comparison(
            prompt_id=s.prompt_id, left_id=ref_id, right_id=hacked_id, decision="left", rationale=note,
            origin="hacked", run_id=s.run_id, annotator="",
        ))
        db["samples"].update(sample_id, {"hacked": 1})
    return int(cid)


def set_reference(db: sqlite_utils.Database, sample_id: int, text: str) -> None:
    """Store a reference answer sampled after the run (`data mark-hacked` does, for steps the run skipped)."""
    if not text:
        raise ValueError(f"sample {sample_id}: an empty reference answer")
    with transaction(db):
        db["samples"].update(sample_id, {"ref_response": text})


def hacked_count(db: sqlite_utils.Database, run_id: str) -> int:
    """Samples of this run marked hacked."""
    return db["samples"].count_where("run_id = ? AND hacked = 1", [run_id])
