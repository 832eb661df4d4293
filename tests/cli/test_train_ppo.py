"""`tuilab train ppo` headless: a full run, clear errors, and kill -9 mid-run then --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tuilab.cli import main
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.store.prompts import add_prompts
from tuilab.store.samples import count_samples

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny expressive chat model and an (untrained) reward model folder on it."""
    from tiny import save_policy_and_reward

    return save_policy_and_reward(tmp_path_factory.mktemp("ppo-cli"))


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "lab"
    db = open_db(home / "db" / "lab.db")
    add_prompts(db, [f"Answer briefly: question number {i}?" for i in range(12)], split="train")
    db.conn.close()
    return home


def args_for(home, model_dir, rm_dir, *extra):
    sets = [f"base_model={model_dir}", f"reward_run={rm_dir}", "batch_size=4", "minibatch_size=2",
            "max_new_tokens=6", "ppo_epochs=1", "sample_every=2", *extra]
    out = ["--home", str(home), "train", "ppo", "--quiet"]
    for s in sets:
        out += ["--set", s]
    return out


def test_headless_run_persists_everything(home, assets, capsys):
    model_dir, rm_dir = assets
    torch.set_num_threads(1)
    code = main(args_for(home, model_dir, rm_dir, "total_updates=3", "checkpoint_every=2"))
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    final = json.loads(out[-1])  # exactly one JSON line
    assert len(out) == 1 and final["steps"] == 3.0 and "objective/scores" in final
    db = open_db(home / "db" / "lab.db")
    run = runs.get_run(db, final["run_id"])
    assert run.status == "completed" and run.kind == "ppo" and run.total_steps == 3
    steps = [s for s, _ in runs.read_metrics(db, run.id, ["objective/kl"])["objective/kl"]]
    assert steps == [1, 2, 3]
    assert [c[0] for c in runs.list_checkpoints(db, run.id)] == [2, 3]
    assert count_samples(db, run.id) == 12
    db.conn.close()


@pytest.mark.parametrize(
    "argv_extra, message",
    [
        (["--set", "reward_run="], "reward_run is not set"),
        (["--set", "reward_run=rm-nope"], "no run 'rm-nope' in this lab and no such folder"),
        (["--set", "kl_coeff=0.1"], "unknown setting 'kl_coeff'"),
        (["--set", "prompt_split=test"], "no 'test' prompts"),
    ],
)
def test_bad_settings_fail_clearly(home, assets, capsys, argv_extra, message):
    model_dir, rm_dir = assets
    code = main(args_for(home, model_dir, rm_dir, "total_updates=1") + argv_extra)
    err = capsys.readouterr().err
    assert code == 1 and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (home / "models" / "runs").exists() or not any(
        p.name.startswith("ppo-") for p in (home / "models" / "runs").iterdir()), "a refused run left a folder"


def test_resume_errors(home, assets, capsys):
    assert main(["--home", str(home), "train", "ppo", "--resume", "ppo-nope"]) == 1
    assert "no run 'ppo-nope'" in capsys.readouterr().err
    assert main(["--home", str(home), "train", "ppo", "--resume", "x", "--set", "learning_rate=1"]) == 1
    assert "only change total_updates" in capsys.readouterr().err


def _poll(db_path, until, proc=None, timeout=480.0):
    """Wait for `until(db)`; generous because CI machines are shared, but fail fast if the run died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run exited early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        try:
            db = open_db(db_path)
            try:
                value = until(db)
            finally:
                db.conn.close()
            if value:
                return value
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the run")


def test_kill_9_mid_run_then_resume(home, assets):
    """SIGKILL after a checkpoint and a few more steps; --resume finishes with no gap and no duplicate."""
    model_dir, rm_dir = assets
    total = 40
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TUILAB_HOME": str(home)}
    argv = [sys.executable, "-m", "tuilab", *args_for(home, model_dir, rm_dir, f"total_updates={total}",
                                                      "checkpoint_every=3")]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db_path = home / "db" / "lab.db"

    def past_a_checkpoint(db):
        found = runs.list_runs(db, "ppo")
        if not found:
            return None
        run_id = found[0].id
        ckpt = runs.latest_checkpoint(db, run_id)
        rows = runs.read_metrics(db, run_id, ["objective/kl"]).get("objective/kl", [])
        last = max((s for s, _ in rows), default=0)
        return run_id if ckpt and last >= ckpt[0] + 1 else None

    try:
        run_id = _poll(db_path, past_a_checkpoint, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    db = open_db(db_path)
    killed_at = max(s for s, _ in runs.read_metrics(db, run_id, ["objective/kl"])["objective/kl"])
    ckpt_step = runs.latest_checkpoint(db, run_id)[0]
    assert runs.get_run(db, run_id).status == "running"  # nobody got to say otherwise
    db.conn.close()
    assert ckpt_step < killed_at < total

    done = subprocess.run([sys.executable, "-m", "tuilab", "--home", str(home), "train", "ppo", "--quiet",
                           "--resume", run_id], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.strip().splitlines()[-1])
    assert final["run_id"] == run_id and final["steps"] == total

    db = open_db(db_path)
    run = runs.get_run(db, run_id)
    assert run.status == "completed"
    assert [r.id for r in runs.list_runs(db, "ppo")] == [run_id]  # the same run row, no new one
    for name, rows in runs.read_metrics(db, run_id, ["objective/kl", "objective/scores", "lr"]).items():
        assert [s for s, _ in rows] == list(range(1, total + 1)), name  # no gap, no duplicate
    assert [s for s, _ in runs.read_metrics(db, run_id, ["lr"])["lr"]] == list(range(1, total + 1))
    lrs = [v for _, v in runs.read_metrics(db, run_id, ["lr"])["lr"]]
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))  # the LR schedule carried on
    for step in range(1, total + 1):
        assert count_samples(db, run_id, step=step) == 4, step
    ckpts = [c[0] for c in runs.list_checkpoints(db, run_id)]
    assert ckpts[-1] == total and ckpt_step in ckpts
    db.conn.close()
