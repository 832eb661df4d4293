"""Gold audits of a PPO run: blind pairs of the policy at a checkpoint against the reference, and their verdicts.

An audit pair is two generations of one held-out prompt with `origin` "audit",
the run's id and the checkpoint's step, and `params["audit"]` saying which is
the "policy" and which the "reference". No new table: a pair is pending while
no comparison holds both generations, and decided by the first non-skip
comparison that does (a later one is a self-consistency repeat).

`queue_audit_step` is the one path that audits a step, whoever brings the
model: `tuilab label audit RUN` (a model host reading a checkpoint's adapter,
after or beside training) and a PPO run auditing itself at its checkpoints
(the model it is training, already in memory). Same held-out prompts, same
seeds per step and side, same rows, and a step is audited once: whichever
comes second finds it done.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlite_utils

from tuilab.config import SamplingConfig
from tuilab.records import Message, Prompt
from tuilab.store.db import transaction
from tuilab.store.generations import add_generation
from tuilab.store.prompts import sample_prompts

ROLES = ("policy", "reference")


@dataclass(frozen=True)
class AuditSettings:
    pairs: int = 4  # audit pairs per checkpoint
    max_new_tokens: int | None = None  # None: the run's own
    temperature: float | None = None  # None: the run's own (both sides alike)
    split: str = "test"
    seed: int = 0

    def check(self) -> None:
        if self.pairs < 1:
            raise ValueError(f"audit pairs per checkpoint must be at least 1, got {self.pairs}")
        if self.split not in ("train", "test"):
            raise ValueError(f"audit split must be train or test, got {self.split!r}")


@dataclass(frozen=True)
class AuditPlan:
    """What every audited step of one run shares: the held-out prompts and how both sides sample."""

    run_id: str
    prompts: list[Prompt]
    sampling: SamplingConfig  # its seed is set per step and side
    seed: int = 0


# (side, sampling with that side's seed, the prompts' messages) → one answer per prompt, in order,
# each with .text, .n_tokens and .finished (modeling.generation.GenResult). Fewer answers: stopped.
Answer = Callable[[str, SamplingConfig, list[list[Message]]], Sequence[Any]]


class AuditStopped(Exception):
    """The model stopped answering before every prompt had its answer (the run was cancelled)."""


def plan_audits(db: sqlite_utils.Database, run_id: str, run_config: dict, settings: AuditSettings) -> AuditPlan:
    """The held-out prompts (the same at every step, so the steps compare) and the run's own sampling."""
    settings.check()
    prompts = sample_prompts(db, settings.pairs, split=settings.split, seed=settings.seed)
    if not prompts:
        raise ValueError(f"no {settings.split} prompts to audit on; add some (tuilab data import --split test …)")
    cfg = run_config or {}
    sampling = SamplingConfig(max_new_tokens=settings.max_new_tokens or int(cfg.get("max_new_tokens", 48)),
                              temperature=settings.temperature or float(cfg.get("temperature", 0.9)),
                              batch_size=len(prompts))
    return AuditPlan(run_id, prompts, sampling, settings.seed)


def side_seed(run_id: str, step: int, role: str, seed: int) -> int:
    """The sampling seed of one side at one step: fixed, so re-auditing a step reproduces its answers."""
    return random.Random(f"{run_id}:{step}:{role}:{seed}").randrange(2**31)


def queue_audit_step(db: sqlite_utils.Database, plan: AuditPlan, step: int, answer: Answer, *, model: str,
                     policy_adapter: str, progress: Callable[[str], Any] | None = None) -> int:
    """Both sides answer the plan's prompts, then one pair per prompt is stored; returns how many.

    0 when `step` is already audited (checked before generating, and again in the
    write transaction, so a `label audit` and the run itself never both audit it).
    `policy_adapter` is the checkpoint's adapter folder that the policy side records.
    """
    if step in audited_steps(db, plan.run_id):
        return 0
    messages = [p.messages for p in plan.prompts]
    sides: dict[str, list[dict]] = {}
    for role, adapter in (("policy", policy_adapter), ("reference", "")):
        if progress:
            progress(f"audit step {step}: {role} answers to {len(messages)} held-out prompts")
        sampling = replace(plan.sampling, seed=side_seed(plan.run_id, step, role, plan.seed))
        results = list(answer(role, sampling, messages))
        if len(results) < len(messages):
            raise AuditStopped(f"audit step {step}: {len(results)} of {len(messages)} {role} answers")
        sides[role] = [{"text": r.text, "model": model, "adapter": adapter, "n_tokens": r.n_tokens,
                        "finished": r.finished, "params": {"temperature": sampling.temperature,
                                                           "max_new_tokens": sampling.max_new_tokens}}
                       for r in results]
    with transaction(db):
        if step in audited_steps(db, plan.run_id):
            return 0
        for i, prompt in enumerate(plan.prompts):
            queue_audit_pair(db, plan.run_id, step, prompt.id, sides["policy"][i], sides["reference"][i])
    return len(plan.prompts)


@dataclass(frozen=True)
class AuditPair:
    run_id: str
    step: int
    prompt_id: int
    policy_id: int
    reference_id: int


def queue_audit_pair(db: sqlite_utils.Database, run_id: str, step: int, prompt_id: int,
                     policy: dict, reference: dict) -> AuditPair:
    """Store both answers (dicts of `add_generation` keywords: text, model, adapter, params, n_tokens, finished).

    A pair is found again by run, step and prompt, so a step holds one pair per prompt: a second
    one would be paired crosswise with the first, and is refused.
    """
    ids = {}
    with transaction(db):
        if db["generations"].count_where("origin = 'audit' AND run_id = ? AND step = ? AND prompt_id = ?",
                                         [run_id, step, prompt_id]):
            raise ValueError(f"run {run_id} already has an audit pair for prompt {prompt_id} at step {step}")
        for role, g in (("policy", policy), ("reference", reference)):
            params = {**g.get("params", {}), "audit": role}
            ids[role] = add_generation(db, prompt_id, g["text"], model=g.get("model", ""),
                                       adapter=g.get("adapter", ""), origin="audit", run_id=run_id, step=step,
                                       params=params, n_tokens=g.get("n_tokens"), finished=g.get("finished"))
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
