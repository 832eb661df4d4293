"""Audit pairs a PPO run writes while the lab is open are the very next pair on the label screen (tiny real model)."""

from __future__ import annotations

import asyncio

from tuihelp import rows, wait_for

from tuilab.labeling.candidates import SourceSpec
from tuilab.store.audits import (
    AuditSettings,
    audit_verdicts,
    pending_audit_pairs,
    plan_audits,
    queue_audit_step,
)
from tuilab.store.db import open_db
from tuilab.store.prompts import add_prompts
from tuilab.store.runs import create_run
from tuilab.tui.app import TuilabApp

RUN = "ppo-live"


def audit_checkpoint(lab, model_dir, step: int) -> int:
    """What a self-auditing PPO run does at a checkpoint, from its own thread and connection: both sides answer
    the held-out prompts with the model (here the tiny one, adapter off on both sides) and are stored."""
    from tuilab.modeling.generation import generate
    from tuilab.modeling.host import ModelHost

    host = ModelHost(lab.models, str(model_dir))
    db = open_db(lab.db)
    try:
        plan = plan_audits(db, RUN, {"max_new_tokens": 4, "temperature": 0.9}, AuditSettings(pairs=2))

        def answer(_role, sampling, messages):
            with host.lock, host.adapter("") as lm, host.cpu_threads():
                return generate(lm.model, lm.tokenizer, messages, sampling)

        return queue_audit_step(db, plan, step, answer, model=host.name, policy_adapter="")
    finally:
        db.conn.close()
        host.close()


async def test_audit_pairs_written_while_the_queue_is_full_are_shown_next(lab, tiny_model_dir):
    db = open_db(lab.db)
    add_prompts(db, ["Held-out one?", "Held-out two?"], source="test", split="test")
    create_run(db, "ppo", {"max_new_tokens": 4}, run_id=RUN)
    db.conn.close()
    app = TuilabApp(lab, model=str(tiny_model_dir), queue_size=4, seed=0, repeat_share=0.0,
                    spec=SourceSpec(max_new_tokens=4, seed=0))
    async with app.run_test() as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.current is not None and app.feeder.ready == 4, timeout=120)
        first = screen.current
        waiting = list(app.feeder._ready)  # four generated pairs ready before any audit exists
        assert not first.is_audit and not any(p.is_audit for p in waiting)

        assert await asyncio.to_thread(audit_checkpoint, lab, tiny_model_dir, 5) == 2
        await pilot.press("1")
        shown = screen.current
        assert shown.is_audit and shown.source == f"audit pair · {RUN} step 5"
        assert f"audit pair · {RUN} step 5" in str(screen.query_one("#prompt").border_subtitle)
        assert list(app.feeder._ready) == waiting  # the generated pairs wait, none thrown away
        await pilot.press("2")
        assert screen.current.is_audit and screen.current is not shown
        await pilot.press("1")
        # Both audits decided: back to the generated pairs, in the order they were generated.
        assert screen.current is waiting[0]

    db = open_db(lab.db)
    try:
        assert len(audit_verdicts(db, RUN)) == 2 and pending_audit_pairs(db) == []
    finally:
        db.conn.close()
    decided = rows(lab, "SELECT left_id, right_id FROM comparisons ORDER BY id")
    assert decided[0] == (first.left_id, first.right_id) and len(decided) == 3  # each pair decided once
