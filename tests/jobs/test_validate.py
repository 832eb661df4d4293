"""Whole-config validation before a run exists: ranges, the model folder, the reward run, the data."""

from __future__ import annotations

import pytest

from tests.jobs.rm_data import insert_pairs
from tuilab.config import LabPaths, PPOConfig, RewardConfig
from tuilab.jobs.validate import InvalidConfig, validate_job
from tuilab.store import runs
from tuilab.store.prompts import add_prompts


@pytest.fixture
def paths(tmp_path):
    return LabPaths(tmp_path / "lab")


def test_a_good_reward_config_passes_and_a_bad_one_names_its_key(db, paths, tiny_model_dir):
    insert_pairs(db, 20)
    cfg = RewardConfig(base_model=str(tiny_model_dir), min_pairs=8)
    validate_job("rm", cfg, db=db, paths=paths)
    for key, value in (("batch_size", 0), ("epochs", 0), ("learning_rate", float("nan")), ("ties", "both")):
        bad = RewardConfig(base_model=str(tiny_model_dir), min_pairs=8, **{key: value})
        with pytest.raises(InvalidConfig, match=key):
            validate_job("rm", bad, db=db, paths=paths)
    cfg.lora.r = 0
    with pytest.raises(InvalidConfig, match="lora.r"):
        validate_job("rm", cfg, db=db, paths=paths)
    cfg.lora.r, cfg.lora.layers = 8, -1
    with pytest.raises(InvalidConfig, match="lora.layers"):
        validate_job("rm", cfg, db=db, paths=paths)


def test_model_folder_and_pair_count_are_checked(db, paths, tmp_path, tiny_model_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidConfig, match="base_model.*config.json"):
        validate_job("rm", RewardConfig(base_model=str(tmp_path / "empty")), db=db, paths=paths)
    with pytest.raises(InvalidConfig, match="0 usable, 16 needed"):
        validate_job("rm", RewardConfig(base_model=str(tiny_model_dir)), db=db, paths=paths)


def test_ppo_needs_a_completed_reward_run_and_prompts(db, paths, tiny_model_dir):
    done = paths.runs / "rm-done"
    done.mkdir(parents=True)
    (done / "reward.json").write_text("{}")
    runs.create_run(db, "rm", {}, run_id="rm-done", output_dir=str(done))
    runs.create_run(db, "rm", {}, run_id="rm-live")
    runs.set_run_status(db, "rm-live", "running")
    cfg = PPOConfig(base_model=str(tiny_model_dir), reward_run="rm-done")
    with pytest.raises(InvalidConfig, match="pending, not completed"):
        validate_job("ppo", cfg, db=db, paths=paths)
    runs.set_run_status(db, "rm-done", "completed")
    with pytest.raises(InvalidConfig, match="no 'train' prompts"):
        validate_job("ppo", cfg, db=db, paths=paths)
    add_prompts(db, ["a prompt"], source="t", split="train")
    validate_job("ppo", cfg, db=db, paths=paths)
    cfg.reward_run = "rm-live"
    with pytest.raises(InvalidConfig, match="running, not completed"):
        validate_job("ppo", cfg, db=db, paths=paths)
    cfg.reward_run, cfg.minibatch_size, cfg.batch_size = "rm-done", 3, 8
    with pytest.raises(InvalidConfig, match="minibatch_size"):
        validate_job("ppo", cfg, db=db, paths=paths)
    cfg.minibatch_size, cfg.warmup_updates = 4, -1
    with pytest.raises(InvalidConfig, match="warmup_updates"):
        validate_job("ppo", cfg, db=db, paths=paths)


def test_ppo_audits_need_checkpoints_and_held_out_prompts(db, paths, tiny_model_dir):
    done = paths.runs / "rm-done"
    done.mkdir(parents=True)
    (done / "reward.json").write_text("{}")
    runs.create_run(db, "rm", {}, run_id="rm-done", output_dir=str(done))
    runs.set_run_status(db, "rm-done", "completed")
    add_prompts(db, ["a prompt"], source="t", split="train")
    cfg = PPOConfig(base_model=str(tiny_model_dir), reward_run="rm-done", checkpoint_every=5, audit_pairs=4)
    with pytest.raises(InvalidConfig, match=r"audit_pairs: no held-out \('test'\) prompts .* --split test"):
        validate_job("ppo", cfg, db=db, paths=paths)
    add_prompts(db, ["a held-out prompt"], source="t", split="test")
    validate_job("ppo", cfg, db=db, paths=paths)
    for audit_every in (0, 5, 10):
        cfg.audit_every = audit_every
        validate_job("ppo", cfg, db=db, paths=paths)
    cfg.audit_every = 3
    with pytest.raises(InvalidConfig, match=r"audit_every must be 0 .* a multiple of checkpoint_every \(5\).*got 3"):
        validate_job("ppo", cfg, db=db, paths=paths)
    cfg.audit_every, cfg.checkpoint_every = 0, 0
    with pytest.raises(InvalidConfig, match="checkpoint_every is 0"):
        validate_job("ppo", cfg, db=db, paths=paths)
    cfg.checkpoint_every, cfg.audit_pairs = 5, -1
    with pytest.raises(InvalidConfig, match=r"audit_pairs must be 0 \(no audits\) or more, got -1"):
        validate_job("ppo", cfg, db=db, paths=paths)
    cfg.audit_pairs, cfg.audit_every = 0, -2
    with pytest.raises(InvalidConfig, match="audit_every must be"):
        validate_job("ppo", cfg, db=db, paths=paths)
    cfg.audit_every, cfg.checkpoint_every = 3, 0  # audits off: nothing else is asked of them
    validate_job("ppo", cfg, db=db, paths=paths)
