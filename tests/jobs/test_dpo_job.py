"""The DPO job through the runner: a real lab database, the tiny model, samples the inspector reads, resume."""

from __future__ import annotations

import pytest
import torch

from tests.jobs.rm_data import insert_pairs
from tuilab.config import DPOConfig, LabPaths
from tuilab.jobs.dpo_job import PAIRS_FILE, DPOJobError, dpo_job, resume_dpo_job
from tuilab.jobs.runner import run_job
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.store.samples import count_samples, list_samples, mark_hacked
from tuilab.training.events import Checkpoint, RunControl


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("dpo-job") / "tiny", sharpen=True)


@pytest.fixture
def lab(tmp_path):
    torch.set_num_threads(1)
    paths = LabPaths.resolve(tmp_path / "lab")
    db = open_db(paths.db)
    insert_pairs(db, 40, decision_mix={"both_bad": 3, "tie": 2, "skip": 1})
    yield paths, db
    db.conn.close()


def cfg_for(model_dir, **kw) -> DPOConfig:
    base = dict(base_model=str(model_dir), batch_size=8, epochs=2, learning_rate=5e-3, min_pairs=8,
                sample_every=2, sample_prompts=3, max_new_tokens=6, checkpoint_every=2)
    base.update(kw)
    return DPOConfig(**base)


def test_job_persists_metrics_samples_checkpoints_and_mark_hacked(lab, model_dir):
    paths, db = lab
    outcome = run_job(dpo_job(cfg_for(model_dir), name="d"), paths=paths)
    assert outcome.status == "completed", outcome.error
    run = runs.get_run(db, outcome.run_id)
    assert run.kind == "dpo" and run.name == "d"
    total = run.total_steps
    losses = runs.read_metrics(db, run.id, ["loss", "rewards/accuracies"])
    assert [s for s, _ in losses["loss"]] == list(range(1, total + 1))
    assert [c[0] for c in runs.list_checkpoints(db, run.id)][-1] == total
    per_step = {step: count_samples(db, run.id, step=step) for step in range(1, total + 1)}
    held = per_step[1]
    assert 1 <= held <= 3  # held-out prompts, at most sample_prompts
    assert per_step == {step: held if step % 2 == 1 else 0 for step in range(1, total + 1)}
    s = list_samples(db, run.id, order_by="length")[0]
    assert s.ref_response is not None and s.prompt_id is not None and s.kl is not None
    assert mark_hacked(db, s.id, note="rambles") > 0  # `h` in the inspector works on a DPO sample
    # Ties and both-bad are left out as for the reward model (ties = "skip").
    assert outcome.metrics["left_out"] == {"ties": 2, "both_bad": 3, "skip": 1}
    assert outcome.metrics["train/pairs"] + outcome.metrics["eval/pairs"] == 40
    assert (outcome.output_dir / PAIRS_FILE).exists() and (outcome.output_dir / "policy").is_dir()


def test_ties_half_trains_on_ties(lab, model_dir):
    paths, _ = lab
    outcome = run_job(dpo_job(cfg_for(model_dir, ties="half", epochs=1, sample_every=0)), paths=paths)
    assert outcome.status == "completed", outcome.error
    assert outcome.metrics["train/pairs"] + outcome.metrics["eval/pairs"] == 42


def test_job_resume_by_run_id_continues_the_same_row(lab, model_dir):
    paths, db = lab
    control = RunControl()

    def forward(events):
        if any(isinstance(e, Checkpoint) and e.step == 2 for e in events):
            control.cancel()

    first = run_job(dpo_job(cfg_for(model_dir)), paths=paths, control=control, forward=forward)
    assert first.status == "cancelled"
    job = resume_dpo_job(db, first.run_id)
    done = run_job(job, paths=paths)
    assert done.status == "completed", done.error
    total = runs.get_run(db, first.run_id).total_steps
    steps = [s for s, _ in runs.read_metrics(db, first.run_id, ["loss"])["loss"]]
    assert steps == list(range(1, total + 1))
    assert [r.id for r in runs.list_runs(db, "dpo")] == [first.run_id]


def test_resume_refuses_clearly(lab, model_dir):
    paths, db = lab
    with pytest.raises(DPOJobError, match="no run 'dpo-nope'"):
        resume_dpo_job(db, "dpo-nope")
    done = run_job(dpo_job(cfg_for(model_dir, epochs=1, sample_every=0)), paths=paths)
    with pytest.raises(DPOJobError, match="already completed 1 epochs"):
        resume_dpo_job(db, done.run_id)


def test_too_few_pairs_fails_before_loading(lab, model_dir):
    paths, _ = lab
    outcome = run_job(dpo_job(cfg_for(model_dir, min_pairs=500)), paths=paths)
    assert outcome.status == "failed"
    assert "40 usable, 500 needed" in outcome.error_summary and "marked both bad" in outcome.error_summary
