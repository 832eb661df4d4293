"""A self-auditing PPO run on two processes (torchrun, gloo on this CPU): the main process audits, once per step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuilab.store.audits import audit_pairs
from tuilab.store.db import open_db
from tuilab.store.prompts import add_prompts
from tuilab.store.runs import list_checkpoints, list_runs

pytestmark = pytest.mark.slow  # two tuilab processes under torchrun (about 2 min on 2 loaded cores)

REPO = Path(__file__).resolve().parents[2]


def test_two_processes_audit_each_checkpoint_once(tmp_path):
    from tiny import save_policy_and_reward

    model_dir, rm_dir = save_policy_and_reward(tmp_path / "assets")
    lab = tmp_path / "lab"
    db = open_db(lab / "db" / "lab.db")
    add_prompts(db, [f"Answer briefly: question number {i}?" for i in range(8)], split="train")
    add_prompts(db, ["Held-out: name a colour.", "Held-out: say hello."], split="test")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    sets = dict(base_model=model_dir, reward_run=rm_dir, batch_size=4, minibatch_size=2, ppo_epochs=1,
                max_new_tokens=5, total_updates=2, checkpoint_every=1, sample_every=0, audit_pairs=2)
    argv = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "tuilab", "--home", str(lab), "train", "ppo", "--quiet", *argv],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, done.stdout
    final = json.loads(lines[0])
    assert final["audit/pairs_queued"] == 4
    assert "audit_failed" not in {w["code"] for w in final.get("warnings", [])}
    try:
        (run,) = list_runs(db, "ppo")
        assert [c[0] for c in list_checkpoints(db, run.id)] == [1, 2]
        assert sorted(p.step for p in audit_pairs(db, run.id)) == [1, 1, 2, 2]  # rank 1 audited nothing
    finally:
        db.conn.close()
