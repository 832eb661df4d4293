"""`tuilab train dpo` headless: a full run, clear errors, and kill -9 mid-run then --resume."""

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

from tests.jobs.rm_data import insert_pairs
from tuilab.cli import main
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.store.samples import count_samples

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tiny import build_model, build_tokenizer

    path = tmp_path_factory.mktemp("dpo-cli") / "tiny"
    tok = build_tokenizer()
    model = build_model(tok)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "lab"
    db = open_db(home / "db" / "lab.db")
    insert_pairs(db, 40)
    db.conn.close()
    return home


def args_for(home, model_dir, *extra):
    sets = [f"base_model={model_dir}", "batch_size=8", "min_pairs=8", "learning_rate=5e-3", "max_new_tokens=6",
            "sample_prompts=2", "sample_every=2", *extra]
    out = ["--home", str(home), "train", "dpo", "--quiet"]
    for s in sets:
        out += ["--set", s]
    return out


def test_headless_run_prints_one_json_line(home, model_dir, capsys):
    torch.set_num_threads(1)
    code = main(args_for(home, model_dir, "epochs=1", "checkpoint_every=2"))
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    final = json.loads(out[-1])
    assert len(out) == 1 and final["run_id"].startswith("dpo-") and "eval/accuracy" in final
    assert {"loss", "rewards/margins", "logps/chosen"} <= set(final)
    db = open_db(home / "db" / "lab.db")
    run = runs.get_run(db, final["run_id"])
    assert run.kind == "dpo" and run.status == "completed" and count_samples(db, run.id) > 0
    db.conn.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["loss=kto"], "loss must be sigmoid, ipo, hinge, rdpo"), (["nope=1"], "unknown setting 'nope'"),
     (["beta=0"], "beta must be positive")],
)
def test_bad_settings_fail_clearly_without_a_run(home, model_dir, capsys, extra, message):
    assert main(args_for(home, model_dir, *extra)) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    db = open_db(home / "db" / "lab.db")
    assert runs.list_runs(db, "dpo") == []
    db.conn.close()


def test_too_few_pairs_fails_with_the_reason(home, model_dir, capsys):
    assert main(args_for(home, model_dir, "min_pairs=999")) == 1
    assert "40 usable, 999 needed" in capsys.readouterr().err.strip().splitlines()[-1]


def test_resume_errors(home, capsys):
    assert main(["--home", str(home), "train", "dpo", "--resume", "dpo-nope"]) == 1
    assert "no run 'dpo-nope'" in capsys.readouterr().err
    assert main(["--home", str(home), "train", "dpo", "--resume", "x", "--set", "beta=1"]) == 1
    assert "only change epochs" in capsys.readouterr().err


def _poll(db_path, until, proc, timeout=300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
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


def test_kill_9_mid_run_then_resume(home, model_dir):
    """SIGKILL after a checkpoint and a step more; --resume finishes with no gap and no duplicate."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TUILAB_HOME": str(home)}
    argv = [sys.executable, "-m", "tuilab", *args_for(home, model_dir, "epochs=12", "checkpoint_every=4")]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db_path = home / "db" / "lab.db"

    def past_a_checkpoint(db):
        found = runs.list_runs(db, "dpo")
        if not found:
            return None
        ckpt = runs.latest_checkpoint(db, found[0].id)
        last = max((s for s, _ in runs.read_metrics(db, found[0].id, ["loss"]).get("loss", [])), default=0)
        return found[0].id if ckpt and last >= ckpt[0] + 1 else None

    try:
        run_id = _poll(db_path, past_a_checkpoint, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    db = open_db(db_path)
    total = runs.get_run(db, run_id).total_steps
    killed_at = max(s for s, _ in runs.read_metrics(db, run_id, ["loss"])["loss"])
    assert runs.get_run(db, run_id).status == "running"
    db.conn.close()
    assert killed_at < total

    done = subprocess.run([sys.executable, "-m", "tuilab", "--home", str(home), "train", "dpo", "--quiet",
                           "--resume", run_id], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.strip().splitlines()[-1])
    assert final["run_id"] == run_id and final["steps"] == total
    db = open_db(db_path)
    assert runs.get_run(db, run_id).status == "completed"
    assert [r.id for r in runs.list_runs(db, "dpo")] == [run_id]
    for name, rows in runs.read_metrics(db, run_id, ["loss", "lr", "rewards/margins"]).items():
        assert [s for s, _ in rows] == list(range(1, total + 1)), name  # no gap, no duplicate
    lrs = [v for _, v in runs.read_metrics(db, run_id, ["lr"])["lr"]]
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))  # the LR schedule carried on
    db.conn.close()
