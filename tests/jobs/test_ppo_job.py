"""The PPO job through the runner: a real lab database, the tiny model, resume by run id."""

from __future__ import annotations

import pytest
import torch

from tuilab.config import LabPaths, PPOConfig
from tuilab.jobs.ppo_job import PPOJobError, ppo_job, resume_ppo_job
from tuilab.jobs.runner import run_job
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.store.prompts import add_prompts
from tuilab.store.samples import count_samples, list_samples, mark_hacked
from tuilab.training.events import Checkpoint, RunControl, Samples


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from tiny import save_policy_and_reward

    return save_policy_and_reward(tmp_path_factory.mktemp("ppo-job"))


@pytest.fixture
def lab(tmp_path):
    torch.set_num_threads(1)
    paths = LabPaths.resolve(tmp_path / "lab")
    db = open_db(paths.db)
    add_prompts(db, [f"Answer briefly: question {i}?" for i in range(10)], split="train")
    yield paths, db
    db.conn.close()


def cfg_for(assets, **kw) -> PPOConfig:
    model_dir, rm_dir = assets
    base = dict(base_model=str(model_dir), reward_run=str(rm_dir), batch_size=4, minibatch_size=2,
                max_new_tokens=6, ppo_epochs=1, total_updates=4, checkpoint_every=2, sample_every=1)
    base.update(kw)
    return PPOConfig(**base)


def test_job_persists_metrics_samples_checkpoints_and_mark_hacked(lab, assets):
    paths, db = lab
    outcome = run_job(ppo_job(cfg_for(assets), name="p"), paths=paths)
    assert outcome.status == "completed", outcome.error
    run = runs.get_run(db, outcome.run_id)
    assert run.kind == "ppo" and run.name == "p" and run.total_steps == 4
    assert [s for s, _ in runs.read_metrics(db, run.id, ["objective/scores"])["objective/scores"]] == [1, 2, 3, 4]
    assert [c[0] for c in runs.list_checkpoints(db, run.id)] == [2, 4]
    assert count_samples(db, run.id) == 16
    s = list_samples(db, run.id, order_by="length")[0]
    assert s.ref_response is not None and s.prompt_id is not None
    cid = mark_hacked(db, s.id, note="rambles")
    assert cid > 0
    assert (outcome.output_dir / "prompts.json").exists()


def test_job_resume_by_run_id_continues_the_same_row(lab, assets):
    paths, db = lab
    control = RunControl()
    seen = []

    def forward(events):
        seen.extend(events)
        if any(isinstance(e, Checkpoint) and e.step == 2 for e in events):
            control.cancel()

    job = ppo_job(cfg_for(assets, total_updates=6))
    first = run_job(job, paths=paths, control=control, forward=forward)
    assert first.status == "cancelled"
    resumed = run_job(resume_ppo_job(db, job.run_id), paths=paths)
    assert resumed.status == "completed" and resumed.run_id == job.run_id
    steps = [s for s, _ in runs.read_metrics(db, job.run_id, ["objective/kl"])["objective/kl"]]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert [r.id for r in runs.list_runs(db, "ppo")] == [job.run_id]
    assert all(count_samples(db, job.run_id, step=s) == 4 for s in steps)
    with pytest.raises(PPOJobError, match="already completed"):
        resume_ppo_job(db, job.run_id)
    more = run_job(resume_ppo_job(db, job.run_id, total_updates=7), paths=paths)
    assert more.status == "completed"
    assert runs.read_metrics(db, job.run_id, ["objective/kl"])["objective/kl"][-1][0] == 7


def test_job_errors_are_specific(lab, assets):
    paths, db = lab
    outcome = run_job(ppo_job(cfg_for(assets, reward_run="")), paths=paths)
    assert outcome.status == "failed" and "no reward model" in outcome.error_summary
    rm_run = runs.create_run(db, "rm", {}, output_dir=str(paths.runs / "nothing"))
    outcome = run_job(ppo_job(cfg_for(assets, reward_run=rm_run)), paths=paths)
    assert "has no trained model" in outcome.error_summary
    with pytest.raises(PPOJobError, match="not a PPO run"):
        resume_ppo_job(db, rm_run)


def test_samples_event_rows_match_batch(lab, assets):
    paths, db = lab
    seen = []
    outcome = run_job(ppo_job(cfg_for(assets, total_updates=1)), paths=paths, forward=seen.extend)
    rows = [r for e in seen if isinstance(e, Samples) for r in e.rows]
    assert len(rows) == 4 and count_samples(db, outcome.run_id) == 4
