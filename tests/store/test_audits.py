"""Gold audit rows: the plan, one step's blind pairs, what is pending and the verdicts.

The model's side is `answer`, a callable the store takes as a parameter; here a
scripted one (the store never imports torch). tests/labeling/test_audits.py runs
the same path with the tiny model end to end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tuilab.records import Comparison
from tuilab.store import runs
from tuilab.store.audits import (
    AuditSettings,
    AuditStopped,
    audit_pairs,
    audit_verdicts,
    audited_steps,
    pending_audit_pairs,
    plan_audits,
    queue_audit_pair,
    queue_audit_step,
    side_seed,
)
from tuilab.store.comparisons import record_comparison
from tuilab.store.prompts import add_prompts

RUN = "ppo-audited"


@dataclass
class Answer:
    text: str
    n_tokens: int
    finished: bool


class Scripted:
    """Answers each prompt with a text naming the side, the seed and the prompt; records every call."""

    def __init__(self, stop_after: int | None = None):
        self.calls = []
        self.stop_after = stop_after

    def __call__(self, role, sampling, messages):
        self.calls.append((role, sampling))
        out = [Answer(f"{role} {sampling.seed}: {m[-1]['content']}", 5 + i, i % 2 == 0) for i, m in enumerate(messages)]
        return out[: self.stop_after] if self.stop_after is not None else out


@pytest.fixture
def lab(db):
    add_prompts(db, ["held out one?", "held out two?", "held out three?"], split="test")
    add_prompts(db, ["a training prompt"], split="train")
    runs.create_run(db, "ppo", {"max_new_tokens": 20, "temperature": 0.7}, run_id=RUN)
    return db


def test_settings_check_names_the_bad_value():
    AuditSettings().check()
    with pytest.raises(ValueError, match="^audit pairs per checkpoint must be at least 1, got 0$"):
        AuditSettings(pairs=0).check()
    with pytest.raises(ValueError, match="^audit split must be train or test, got 'dev'$"):
        AuditSettings(split="dev").check()


def test_plan_takes_held_out_prompts_and_the_runs_sampling(lab):
    plan = plan_audits(lab, RUN, {"max_new_tokens": 20, "temperature": 0.7}, AuditSettings(pairs=2, seed=3))
    assert plan.run_id == RUN and plan.seed == 3 and len(plan.prompts) == 2
    assert all(p.split == "test" for p in plan.prompts)
    assert (plan.sampling.max_new_tokens, plan.sampling.temperature, plan.sampling.batch_size) == (20, 0.7, 2)
    again = plan_audits(lab, RUN, {}, AuditSettings(pairs=2, seed=3))
    assert [p.id for p in again.prompts] == [p.id for p in plan.prompts]  # every step audits the same prompts
    assert (again.sampling.max_new_tokens, again.sampling.temperature) == (48, 0.9)  # an empty config: defaults
    mine = plan_audits(lab, RUN, {"max_new_tokens": 20}, AuditSettings(pairs=9, max_new_tokens=8, temperature=0.2))
    assert len(mine.prompts) == 3 and (mine.sampling.max_new_tokens, mine.sampling.temperature) == (8, 0.2)


def test_plan_without_prompts_of_the_split_says_how_to_add_some(db):
    with pytest.raises(ValueError, match=r"^no test prompts to audit on; add some \(tuilab data import --split test"):
        plan_audits(db, RUN, {}, AuditSettings())
    with pytest.raises(ValueError, match="at least 1"):  # settings are checked first
        plan_audits(db, RUN, {}, AuditSettings(pairs=0))


def test_side_seed_is_fixed_per_run_step_side_and_seed():
    seed = side_seed(RUN, 10, "policy", 0)
    assert seed == side_seed(RUN, 10, "policy", 0) and 0 <= seed < 2**31
    others = {side_seed(RUN, 20, "policy", 0), side_seed(RUN, 10, "reference", 0), side_seed(RUN, 10, "policy", 1),
              side_seed("other-run", 10, "policy", 0)}
    assert seed not in others and len(others) == 4


def test_queue_audit_step_stores_one_blind_pair_per_prompt(lab):
    plan = plan_audits(lab, RUN, {"max_new_tokens": 20, "temperature": 0.7}, AuditSettings(pairs=2))
    answer, said = Scripted(), []
    n = queue_audit_step(lab, plan, 10, answer, model="tiny", policy_adapter="/runs/x/step-10/policy",
                         progress=said.append)
    assert n == 2 and audited_steps(lab, RUN) == {10}
    assert [(role, s.seed) for role, s in answer.calls] == [
        ("policy", side_seed(RUN, 10, "policy", 0)), ("reference", side_seed(RUN, 10, "reference", 0))]
    assert said == ["audit step 10: policy answers to 2 held-out prompts",
                    "audit step 10: reference answers to 2 held-out prompts"]
    pairs = audit_pairs(lab, RUN)
    assert [(p.step, p.prompt_id) for p in pairs] == [(10, q.id) for q in plan.prompts]
    rows = lab.execute("SELECT id, prompt_id, text, model, adapter, origin, run_id, step, params, n_tokens, finished"
                       " FROM generations WHERE id = ?", [pairs[0].policy_id]).fetchone()
    _, pid, text, model, adapter, origin, run_id, step, params, n_tokens, finished = rows
    assert text == f"policy {side_seed(RUN, 10, 'policy', 0)}: {plan.prompts[0].text}"
    assert (pid, model, adapter, origin, run_id, step, n_tokens, finished) == (
        plan.prompts[0].id, "tiny", "/runs/x/step-10/policy", "audit", RUN, 10, 5, 1)
    assert json.loads(params) == {"audit": "policy", "temperature": 0.7, "max_new_tokens": 20}
    ref_adapter, ref_params = lab.execute("SELECT adapter, params FROM generations WHERE id = ?",
                                          [pairs[0].reference_id]).fetchone()
    assert ref_adapter == "" and json.loads(ref_params)["audit"] == "reference"


def test_a_step_is_audited_once(lab):
    plan = plan_audits(lab, RUN, {}, AuditSettings(pairs=2))
    queue_audit_step(lab, plan, 5, Scripted(), model="tiny", policy_adapter="a")
    second = Scripted()
    assert queue_audit_step(lab, plan, 5, second, model="tiny", policy_adapter="a") == 0
    assert second.calls == []  # checked before generating
    assert len(audit_pairs(lab, RUN)) == 2
    assert queue_audit_step(lab, plan, 6, Scripted(), model="tiny", policy_adapter="b") == 2
    assert audited_steps(lab, RUN) == {5, 6}


def test_a_model_that_stops_early_stores_nothing(lab):
    plan = plan_audits(lab, RUN, {}, AuditSettings(pairs=3))
    with pytest.raises(AuditStopped, match="^audit step 7: 1 of 3 policy answers$"):
        queue_audit_step(lab, plan, 7, Scripted(stop_after=1), model="tiny", policy_adapter="a")
    assert audited_steps(lab, RUN) == set() and lab["generations"].count == 0


def _pair(db, step, prompt_id, tag=""):
    """One audit pair as `queue_audit_step` stores it (the pair is found again by run, step and prompt)."""
    return queue_audit_pair(db, RUN, step, prompt_id, {"text": f"policy {tag}", "n_tokens": 2},
                            {"text": f"reference {tag}", "model": "base"})


def decide(db, pair, decision, *, policy_left=True):
    left, right = (pair.policy_id, pair.reference_id) if policy_left else (pair.reference_id, pair.policy_id)
    record_comparison(db, Comparison(pair.prompt_id, left, right, decision))


def prompt_ids(db):
    return [r[0] for r in db.execute("SELECT id FROM prompts ORDER BY id")]


def test_pending_pairs_wait_until_a_comparison_holds_both(lab):
    p1, p2, p3, _ = prompt_ids(lab)
    first, second, third = _pair(lab, 5, p1), _pair(lab, 5, p2), _pair(lab, 10, p1)
    pid = p3
    runs.create_run(lab, "ppo", {}, run_id="another")
    elsewhere = queue_audit_pair(lab, "another", 5, pid, {"text": "p"}, {"text": "r"})
    assert [p.policy_id for p in pending_audit_pairs(lab)] == [first.policy_id, second.policy_id,
                                                                 third.policy_id, elsewhere.policy_id]
    decide(lab, first, "left")
    decide(lab, second, "skip", policy_left=False)  # held by a comparison: no longer waiting
    assert pending_audit_pairs(lab, run_id=RUN) == [third]
    assert pending_audit_pairs(lab, limit=1) == [third]
    assert pending_audit_pairs(lab, run_id="another") == [elsewhere]


def test_a_second_pair_for_one_prompt_at_one_step_is_refused_and_writes_nothing(lab):
    p1, p2, *_ = prompt_ids(lab)
    first = _pair(lab, 5, p1)
    before = lab["generations"].count
    with pytest.raises(ValueError, match=f"run {RUN} already has an audit pair for prompt {p1} at step 5"):
        _pair(lab, 5, p1, "again")
    assert lab["generations"].count == before and audit_pairs(lab, RUN) == [first]
    assert _pair(lab, 10, p1).step == 10 and _pair(lab, 5, p2).prompt_id == p2  # another step, another prompt


def test_verdicts_say_which_side_won_whichever_side_it_was_shown_on(lab):
    p = prompt_ids(lab)  # one pair per prompt and step, as queue_audit_step stores them
    pairs = [_pair(lab, step, p[i], str(i)) for i, step in ((0, 5), (1, 5), (0, 10), (1, 10), (2, 10), (0, 15))]
    decide(lab, pairs[0], "left")  # policy shown left, chosen
    decide(lab, pairs[1], "left", policy_left=False)  # reference shown left, chosen
    decide(lab, pairs[2], "right", policy_left=False)  # policy shown right, chosen
    decide(lab, pairs[3], "skip")
    decide(lab, pairs[3], "tie")  # the first non-skip decision counts
    decide(lab, pairs[3], "left")  # a later repeat does not
    decide(lab, pairs[4], "both_bad")
    # pairs[5] undecided: no verdict
    assert audit_verdicts(lab, RUN) == [(5, "policy"), (5, "reference"), (10, "policy"), (10, "tie"),
                                        (10, "both_bad")]
    assert audit_verdicts(lab, "no-such-run") == []
