"""Gold audits during a PPO run: a tiny real PPO job queues blind pairs at its checkpoints while it trains."""

from __future__ import annotations

import threading

import pytest
import torch

from tests.labeling.fake_source import FakeCandidateSource
from tests.tui.tuihelp import wait_for_thread
from tuilab.config import LabPaths, PPOConfig
from tuilab.jobs.ppo_job import ppo_job
from tuilab.jobs.runner import run_job
from tuilab.labeling.audits import AuditSettings, adapter_folder, queue_audits
from tuilab.labeling.queue import PairFeeder
from tuilab.labeling.repeats import RepeatPolicy
from tuilab.modeling.host import ModelHost
from tuilab.store import runs
from tuilab.store.audits import audit_pairs, audited_steps, pending_audit_pairs
from tuilab.store.db import open_db
from tuilab.store.generations import get_generation
from tuilab.store.prompts import add_prompts
from tuilab.training.events import RunControl

HELD_OUT = ["Held-out: name a colour.", "Held-out: count to three.", "Held-out: say hello."]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from tiny import save_policy_and_reward

    return save_policy_and_reward(tmp_path_factory.mktemp("ppo-audits"))


@pytest.fixture
def lab(tmp_path):
    torch.set_num_threads(1)
    paths = LabPaths.resolve(tmp_path / "lab")
    db = open_db(paths.db)
    add_prompts(db, [f"Answer briefly: question {i}?" for i in range(8)], split="train")
    add_prompts(db, HELD_OUT, split="test")
    yield paths, db
    db.conn.close()


def cfg_for(assets, **kw) -> PPOConfig:
    model_dir, rm_dir = assets
    base = dict(base_model=str(model_dir), reward_run=str(rm_dir), batch_size=4, minibatch_size=2,
                max_new_tokens=5, ppo_epochs=1, total_updates=3, checkpoint_every=1, sample_every=0,
                audit_pairs=2)
    base.update(kw)
    return PPOConfig(**base)


class StepWatch(RunControl):
    """Checked by the loop at the start of each step: counts the run's audit pairs then, and may cancel there."""

    def __init__(self, paths: LabPaths, cancel_at: int | None = None) -> None:
        super().__init__()
        self.paths, self.cancel_at = paths, cancel_at
        self.run_id = ""
        self.pairs_at_start: list[int] = []

    def check(self) -> None:
        peek = open_db(self.paths.db)
        try:
            self.pairs_at_start.append(len(audit_pairs(peek, self.run_id)))
        finally:
            peek.conn.close()
        if len(self.pairs_at_start) == self.cancel_at:
            self.cancel()
        super().check()


def test_a_run_audits_each_checkpoint_while_it_trains(lab, assets):
    paths, db = lab
    watch = StepWatch(paths)
    job = ppo_job(cfg_for(assets))
    watch.run_id = job.run_id
    outcome = run_job(job, paths=paths, control=watch)
    assert outcome.status == "completed", outcome.error
    assert not outcome.warnings
    run_id = outcome.run_id
    assert outcome.metrics["audit/pairs_queued"] == 6  # the headless run's final JSON line says so
    # Two held-out pairs at each of the three checkpoints, tagged with the run and the step.
    pairs = audit_pairs(db, run_id)
    assert sorted(p.step for p in pairs) == [1, 1, 2, 2, 3, 3]
    assert audited_steps(db, run_id) == {1, 2, 3}
    checkpoints = {step: path for step, path, _ in runs.list_checkpoints(db, run_id)}
    test_ids = {r[0] for r in db.execute("SELECT id FROM prompts WHERE split = 'test'")}
    for p in pairs:
        policy, reference = get_generation(db, p.policy_id), get_generation(db, p.reference_id)
        assert p.prompt_id in test_ids and policy.prompt_id == reference.prompt_id == p.prompt_id
        assert (policy.origin, policy.run_id, policy.step) == ("audit", run_id, p.step)
        assert policy.adapter == str(adapter_folder(checkpoints[p.step])) and reference.adapter == ""
        assert policy.params["audit"] == "policy" and reference.params["audit"] == "reference"
        assert policy.params["max_new_tokens"] == 5 and policy.params["temperature"] == pytest.approx(0.9)
    # The same prompts at every step, so the steps compare.
    assert len({p.prompt_id for p in pairs}) == 2
    # While the run went on: each step began with the pairs of the steps before it in the database.
    assert watch.pairs_at_start == [0, 2, 4]
    # One path with `tuilab label audit`: nothing left to audit afterwards.
    assert queue_audits(db, ModelHost(paths.models, str(assets[0])), run_id, AuditSettings(pairs=2)) == 0
    # Headless, the pairs wait in the database, and the label queue serves them first.
    assert len(pending_audit_pairs(db, run_id=run_id)) == 6
    feeder = PairFeeder(paths.db, FakeCandidateSource(), capacity=8, seed=0, repeats=RepeatPolicy(0.0))
    thread = threading.Thread(target=feeder.run, daemon=True)
    thread.start()
    wait_for_thread(lambda: feeder.ready >= 8, timeout=30)
    feeder.stop()
    thread.join(5)
    served = [feeder.take() for _ in range(8)]
    assert [p.source.startswith("audit pair") for p in served] == [True] * 6 + [False] * 2
    assert {p.source for p in served[:6]} == {f"audit pair · {run_id} step {s}" for s in (1, 2, 3)}


def test_audits_leave_the_training_as_it_would_be(lab, assets):
    paths, db = lab
    keys = ["objective/scores", "objective/kl", "policy/approxkl_avg"]
    metrics = []
    for pairs in (2, 0):
        outcome = run_job(ppo_job(cfg_for(assets, total_updates=2, audit_pairs=pairs)), paths=paths)
        assert outcome.status == "completed", outcome.error
        metrics.append(runs.read_metrics(db, outcome.run_id, keys))
    assert metrics[0] == metrics[1]


def test_audit_every_n_updates_and_the_last(lab, assets):
    paths, db = lab
    outcome = run_job(ppo_job(cfg_for(assets, total_updates=3, audit_every=2, audit_pairs=1)), paths=paths)
    assert outcome.status == "completed", outcome.error
    assert [c[0] for c in runs.list_checkpoints(db, outcome.run_id)] == [1, 2, 3]
    assert audited_steps(db, outcome.run_id) == {2, 3}


def test_a_failing_audit_is_a_warning_and_the_run_goes_on(lab, assets):
    paths, db = lab
    db.execute("DELETE FROM prompts WHERE split = 'test'")  # nothing held out to audit on
    outcome = run_job(ppo_job(cfg_for(assets, total_updates=2)), paths=paths)
    assert outcome.status == "completed", outcome.error
    assert [(w.step, w.code) for w in outcome.warnings] == [(1, "audit_failed"), (2, "audit_failed")]
    assert "no test prompts to audit on" in outcome.warnings[0].message
    assert f"tuilab label audit {outcome.run_id}" in outcome.warnings[0].message
    assert [s for s, _ in runs.read_metrics(db, outcome.run_id, ["objective/kl"])["objective/kl"]] == [1, 2]
    assert runs.get_run(db, outcome.run_id).final_metrics["warnings"][0]["code"] == "audit_failed"


def test_a_cancel_skips_the_audit_and_label_audit_fills_it_in_later(lab, assets):
    paths, db = lab
    watch = StepWatch(paths, cancel_at=3)  # cancelled at the start of step 3: the loop checkpoints step 2
    job = ppo_job(cfg_for(assets, checkpoint_every=3))
    watch.run_id = job.run_id
    outcome = run_job(job, paths=paths, control=watch)
    assert outcome.status == "cancelled"
    assert [c[0] for c in runs.list_checkpoints(db, job.run_id)] == [2]
    assert audit_pairs(db, job.run_id) == []
    assert queue_audits(db, ModelHost(paths.models, str(assets[0])), job.run_id, AuditSettings(pairs=2)) == 2
    assert audited_steps(db, job.run_id) == {2}


def test_a_resumed_run_audits_the_steps_it_had_not_and_no_step_twice(lab, assets):
    from tuilab.jobs.ppo_job import resume_ppo_job

    paths, db = lab
    watch = StepWatch(paths, cancel_at=3)  # steps 1 and 2 trained, checkpointed and audited; then cancelled
    job = ppo_job(cfg_for(assets, total_updates=4, audit_pairs=1))
    watch.run_id = job.run_id
    assert run_job(job, paths=paths, control=watch).status == "cancelled"
    assert audited_steps(db, job.run_id) == {1, 2}
    first = {p.step: p.prompt_id for p in audit_pairs(db, job.run_id)}
    resumed = run_job(resume_ppo_job(db, job.run_id), paths=paths)
    assert resumed.status == "completed", resumed.error
    pairs = audit_pairs(db, job.run_id)
    assert sorted(p.step for p in pairs) == [1, 2, 3, 4]
    assert {p.prompt_id for p in pairs} == set(first.values())  # the same held-out prompt after the resume
    assert resumed.metrics["audit/pairs_queued"] == 2
