"""jobs/resume.py: which run a resume continues, from which checkpoint, with which inputs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tuilab.config import PPOConfig, to_dict
from tuilab.jobs.resume import main_process, newest_checkpoint, resume_job, run_inputs
from tuilab.jobs.runner import JobContext
from tuilab.store import runs
from tuilab.training.events import RunControl
from tuilab.training.ppo import STATE_FILE


def _ctx(lab, run_id, out) -> JobContext:
    paths, db = lab
    return JobContext(run_id=run_id, output_dir=out, paths=paths, db=db, sink=lambda e: None, control=RunControl())


def test_resume_skips_a_checkpoint_whose_metrics_were_lost(lab, tmp_path):
    """Killed between writing checkpoint 6 and flushing step 6: resume from 3, never leave a gap."""
    paths, db = lab
    run_id = runs.create_run(db, "ppo", {})
    out = tmp_path / "out"
    for step in (3, 6):
        folder = out / "checkpoints" / f"step-{step:06d}"
        folder.mkdir(parents=True)
        (folder / "trainer_state.pt").write_bytes(b"x")
    runs.add_checkpoint(db, run_id, 3, str(out / "checkpoints" / "step-000003"))
    runs.write_metrics(db, run_id, [(s, "objective/kl", 0.0) for s in range(1, 6)])
    ctx = JobContext(run_id=run_id, output_dir=out, paths=paths, db=db, sink=lambda e: None, control=RunControl())
    assert newest_checkpoint(ctx, STATE_FILE).name == "step-000003"
    runs.write_metrics(db, run_id, [(6, "objective/kl", 0.0)])
    assert newest_checkpoint(ctx, STATE_FILE).name == "step-000006"  # on disk only, but its step was recorded


def test_newest_checkpoint_needs_the_state_file_and_a_step_number(lab, tmp_path):
    paths, db = lab
    run_id = runs.create_run(db, "dpo", {})
    out = tmp_path / "out"
    ctx = _ctx(lab, run_id, out)
    assert newest_checkpoint(ctx, STATE_FILE) is None  # no folder at all
    (out / "checkpoints" / "step-000002").mkdir(parents=True)
    (out / "checkpoints" / "step-000004").mkdir()  # written up to its adapter, killed before its state
    (out / "checkpoints" / "step-000004" / "adapter_model.safetensors").write_bytes(b"x")
    (out / "checkpoints" / "step-latest").mkdir()
    (out / "checkpoints" / "step-latest" / STATE_FILE).write_bytes(b"x")
    (out / "checkpoints" / "step-000002" / STATE_FILE).write_bytes(b"x")
    runs.write_metrics(db, run_id, [(s, "loss", 0.0) for s in range(1, 5)])
    assert newest_checkpoint(ctx, STATE_FILE) == out / "checkpoints" / "step-000002"
    assert newest_checkpoint(ctx, "other_state.pt") is None


def test_newest_checkpoint_finds_the_recorded_one_outside_the_run_folder(lab, tmp_path):
    """A run folder moved or renamed: the database's checkpoint path still counts when its state is there."""
    paths, db = lab
    run_id = runs.create_run(db, "ppo", {})
    elsewhere = tmp_path / "kept" / "step-5"
    elsewhere.mkdir(parents=True)
    (elsewhere / STATE_FILE).write_bytes(b"x")
    runs.add_checkpoint(db, run_id, 5, str(elsewhere))
    ctx = _ctx(lab, run_id, tmp_path / "out")
    assert newest_checkpoint(ctx, STATE_FILE) is None  # step 5's metrics never reached the database
    runs.write_metrics(db, run_id, [(5, "objective/kl", 0.1)])
    assert newest_checkpoint(ctx, STATE_FILE) == elsewhere


@pytest.mark.parametrize(("rank", "main"), [(None, True), ("", True), ("0", True), ("1", False), ("3", False)])
def test_main_process_is_rank_zero_or_no_launcher(monkeypatch, rank, main):
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    assert main_process() is main


@dataclass
class Item:
    text: str
    split: str = "train"


def test_run_inputs_are_saved_at_the_start_and_read_back_on_resume(lab, tmp_path, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    out = tmp_path / "out"
    out.mkdir()
    ctx = _ctx(lab, "ppo-x", out)
    first = run_inputs(ctx, "prompts.json", False, Item, lambda: [Item("é one"), Item("two", "test")])
    assert first == [Item("é one"), Item("two", "test")]
    assert json.loads((out / "prompts.json").read_text()) == [{"text": "é one", "split": "train"},
                                                              {"text": "two", "split": "test"}]
    # The lab changed since (new prompts, another order): a resume still sees the run's own inputs.
    again = run_inputs(ctx, "prompts.json", True, Item, lambda: [Item("three")])
    assert again == first
    # A fresh start loads again and replaces the saved list.
    assert run_inputs(ctx, "prompts.json", False, Item, lambda: [Item("three")]) == [Item("three")]
    assert json.loads((out / "prompts.json").read_text()) == [{"text": "three", "split": "train"}]


def test_run_inputs_on_resume_without_a_saved_list_load_them(lab, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert run_inputs(_ctx(lab, "dpo-x", out), "pairs.json", True, Item, lambda: [Item("a")]) == [Item("a")]


def test_run_inputs_are_written_by_the_main_process_only(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    out = tmp_path / "out"
    out.mkdir()
    assert run_inputs(_ctx(lab, "ppo-x", out), "prompts.json", False, Item, lambda: [Item("a")]) == [Item("a")]
    assert not (out / "prompts.json").exists()


class Refused(ValueError):
    pass


def _resume(db, run_id, length=None, run_fn=None):
    return resume_job(db, run_id, kind="ppo", config_cls=PPOConfig, run_fn=run_fn or (lambda cfg, ctx, resume: {}),
                      length_key="total_updates", length=length, unit="updates", error=Refused)


def test_resume_job_refuses_an_unknown_run_or_another_kind(lab):
    _, db = lab
    with pytest.raises(Refused, match=r"no run 'ppo-nope' in this lab; `tuilab runs list --kind ppo`"):
        _resume(db, "ppo-nope")
    rm = runs.create_run(db, "rm", {})
    with pytest.raises(Refused, match=f"run {rm} is a rm run, not a PPO run; only PPO runs resume here"):
        _resume(db, rm)


def test_a_completed_run_continues_only_with_a_longer_length(lab):
    _, db = lab
    cfg = PPOConfig(total_updates=4, kl_coef=0.3, name="long")
    run_id = runs.create_run(db, "ppo", to_dict(cfg), name="long", parents=["rm-1"])
    runs.set_run_status(db, run_id, "completed")
    with pytest.raises(Refused, match=f"run {run_id} already completed 4 updates; pass --set total_updates=N"):
        _resume(db, run_id)
    seen = []
    job = _resume(db, run_id, length=9, run_fn=lambda c, ctx, resume: seen.append((c, ctx, resume)) or {"ok": 1})
    assert (job.kind, job.run_id, job.name, job.parents) == ("ppo", run_id, "long", ("rm-1",))
    assert job.config.total_updates == 9 and job.config.kl_coef == 0.3  # the rest is the run's own config
    assert job.fn("the context") == {"ok": 1}
    assert seen == [(job.config, "the context", True)]


@pytest.mark.parametrize("status", ["cancelled", "failed", "running"])
def test_an_unfinished_run_continues_with_its_own_length(lab, status):
    _, db = lab
    run_id = runs.create_run(db, "ppo", to_dict(PPOConfig(total_updates=6)))
    runs.set_run_status(db, run_id, status)
    job = _resume(db, run_id)
    assert job.run_id == run_id and job.config.total_updates == 6 and job.config == PPOConfig(total_updates=6)
