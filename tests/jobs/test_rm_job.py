"""The reward-model job end to end: pairs from a real lab database, a tiny model, the runner."""

from __future__ import annotations

import math
import threading

import pytest

from tests.jobs.rm_data import insert_pairs
from tuilab.config import LabPaths, RewardConfig
from tuilab.jobs.rm_job import reward_job
from tuilab.jobs.runner import run_job
from tuilab.modeling.reward_model import RewardModel
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.training.events import Failed, Metrics, RunControl


def cfg_for(model_dir, **kw) -> RewardConfig:
    base = dict(base_model=str(model_dir), learning_rate=3e-3, epochs=2, batch_size=8, min_pairs=8,
                checkpoint_every=4, warmup_ratio=0.0)
    base.update(kw)
    return RewardConfig(**base)


def test_reward_job_persists_run_metrics_and_checkpoints(lab, tiny_model_dir):
    paths, db = lab
    insert_pairs(db, 32)
    batches = []
    outcome = run_job(reward_job(cfg_for(tiny_model_dir, name="rule")), paths=paths, forward=batches.append)
    assert outcome.status == "completed", outcome.error
    run = runs.get_run(db, outcome.run_id)
    assert run.status == "completed" and run.kind == "rm" and run.name == "rule"
    assert run.total_steps == outcome.metrics["steps"]
    assert run.config["base_model"] == str(tiny_model_dir)
    assert run.final_metrics["eval/accuracy"] == outcome.metrics["eval/accuracy"]
    metrics = runs.read_metrics(db, outcome.run_id)
    assert len(metrics["train/loss"]) == outcome.metrics["steps"]
    assert metrics["eval/accuracy"][-1][0] == outcome.metrics["steps"]
    checkpoints = runs.list_checkpoints(db, outcome.run_id)
    assert [c[0] for c in checkpoints] == list(range(4, outcome.metrics["steps"] + 1, 4))
    rm = RewardModel.load(outcome.output_dir)
    assert rm.members == ["reward-0"]
    assert outcome.output_dir == paths.runs / outcome.run_id
    forwarded = [e for b in batches for e in b if isinstance(e, Metrics) and "train/loss" in e.values]
    assert len(forwarded) == outcome.metrics["steps"]


def test_too_few_pairs_fails_with_counts_and_reasons(lab, tiny_model_dir):
    paths, db = lab
    insert_pairs(db, 3, decision_mix={"tie": 2, "both_bad": 1, "skip": 4})
    outcome = run_job(reward_job(cfg_for(tiny_model_dir, min_pairs=16)), paths=paths)
    assert outcome.status == "failed"
    summary = outcome.error_summary
    assert "3 usable, 16 needed" in summary
    assert "2 ties" in summary and "1 marked both bad" in summary and "4 skipped" in summary
    assert runs.get_run(db, outcome.run_id).error_summary == summary


def test_nan_fails_the_run_with_step_and_reason(lab, tiny_model_dir):
    paths, db = lab
    insert_pairs(db, 32)
    batches = []
    cfg = cfg_for(tiny_model_dir, learning_rate=1e30, max_grad_norm=1e30, checkpoint_every=0)
    outcome = run_job(reward_job(cfg), paths=paths, forward=batches.append)
    assert outcome.status == "failed"
    assert outcome.step is not None and outcome.step >= 1
    assert f"training diverged at step {outcome.step}: loss became" in outcome.error_summary
    failed = batches[-1][-1]
    assert isinstance(failed, Failed) and failed.step == outcome.step
    run = runs.get_run(db, outcome.run_id)
    assert run.status == "failed" and "learning_rate" in run.error_summary


def test_cancel_mid_run_leaves_a_loadable_checkpoint(lab, tiny_model_dir):
    paths, db = lab
    insert_pairs(db, 32)
    control = RunControl()
    going = threading.Event()

    def forward(events):
        if any(isinstance(e, Metrics) and e.step >= 5 for e in events):
            going.set()

    cfg = cfg_for(tiny_model_dir, epochs=500, checkpoint_every=3)
    job = reward_job(cfg)
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("o", run_job(job, paths=paths, control=control,
                                                                          forward=forward)))
    thread.start()
    assert going.wait(120)
    control.cancel()
    thread.join(120)
    outcome = box["o"]
    assert outcome.status == "cancelled"
    assert runs.get_run(db, job.run_id).status == "cancelled"
    step, path = runs.latest_checkpoint(db, job.run_id)
    assert step == outcome.step  # a checkpoint is written at the cancelled step
    rm = RewardModel.load(path)
    assert rm.manifest["step"] == step
    assert math.isfinite(rm.score(["Say something."], ["sea good"]).mean[0])


def test_a_moved_lab_still_loads_its_reward_runs(tmp_path, tiny_model_dir):
    """A base inside the lab is named `models/<name>` in reward.json, checkpoints and the card; move the
    lab folder and the run (and a checkpoint) load from the new place with no base given."""
    import json
    import shutil

    paths = LabPaths.resolve(tmp_path / "lab")
    shutil.copytree(tiny_model_dir, paths.models / "tiny-llama")
    db = open_db(paths.db)
    insert_pairs(db, 24)
    outcome = run_job(reward_job(cfg_for(paths.models / "tiny-llama", checkpoint_every=3)), paths=paths)
    db.conn.close()
    assert outcome.ok, outcome.error
    before = RewardModel.load(outcome.output_dir).score([[{"role": "user", "content": "hi"}]], ["good"]).mean

    moved = tmp_path / "elsewhere" / "lab-moved"
    moved.parent.mkdir()
    shutil.move(tmp_path / "lab", moved)
    run_dir = moved / "models" / "runs" / outcome.run_id
    assert json.loads((run_dir / "reward.json").read_text())["base_model"] == "models/tiny-llama"
    assert "base_model: models/tiny-llama" in (run_dir / "README.md").read_text()
    after = RewardModel.load(run_dir).score([[{"role": "user", "content": "hi"}]], ["good"]).mean
    assert after == pytest.approx(before, abs=1e-6)
    checkpoint = sorted((run_dir / "checkpoints").iterdir())[0]
    assert json.loads((checkpoint / "reward.json").read_text())["base_model"] == "models/tiny-llama"
    assert RewardModel.load(checkpoint).members == ["reward-0"]
