"""`tuilab train rm|ppo|dpo` headless: same jobs as the lab, progress on stderr, one JSON line on stdout;
clear errors before any run exists; PPO and DPO survive kill -9 and continue with --resume."""

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
from tuilab.store.prompts import add_prompts
from tuilab.store.samples import count_samples

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ the verbs' parsers


def test_train_needs_a_kind(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == "tuilab: train: the following arguments are required: KIND (see `tuilab train --help`)\n"


def test_only_ppo_and_dpo_take_resume(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "rm", "--resume", "rm-1"])
    assert exit_.value.code == 2 and "unrecognized arguments: --resume rm-1" in capsys.readouterr().err


@pytest.mark.parametrize(("kind", "length", "example"), [
    ("rm", None, "--set epochs=3 --set lora.r=16"), ("ppo", "total_updates", "--set kl_coef=0.1"),
    ("dpo", "epochs", "--set loss=rdpo --set beta=0.1"),
])
def test_each_verb_says_what_it_prints_and_what_a_resume_may_change(capsys, kind, length, example):
    with pytest.raises(SystemExit) as exit_:
        main(["train", kind, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "the final metrics as one JSON line on stdout" in text and example in text
    if length:
        assert f"only {length} may be --set" in text
    else:
        assert "--resume" not in text


# ------------------------------------------------------------------ train rm


@pytest.fixture
def lab_db(lab_home):
    db = open_db(lab_home / "db" / "lab.db")
    yield db
    db.conn.close()


def rm_args(model_dir, *more: str) -> list[str]:
    sets = [f"base_model={model_dir}", "epochs=2", "batch_size=8", "learning_rate=0.003", "min_pairs=8",
            "checkpoint_every=0"]
    out = ["train", "rm"]
    for s in sets:
        out += ["--set", s]
    return out + list(more)


def test_train_rm_prints_final_metrics_as_one_json_line(lab_home, lab_db, tiny_model_dir, capsys):
    insert_pairs(lab_db, 24)
    code = main(rm_args(tiny_model_dir, "--name", "cli-run"))
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1
    metrics = json.loads(lines[0])
    assert metrics["run_id"].startswith("rm-")
    assert metrics["steps"] >= 1 and 0 <= metrics["eval/accuracy"] <= 1
    run = runs.get_run(lab_db, metrics["run_id"])
    assert run.status == "completed" and run.name == "cli-run"
    assert (lab_home / "models" / "runs" / metrics["run_id"] / "reward.json").exists()
    assert metrics["run_id"] in err  # the run and where it goes are said up front


def test_config_file_and_sets(lab_home, lab_db, tiny_model_dir, tmp_path, capsys):
    insert_pairs(lab_db, 16)
    toml = tmp_path / "rm.toml"
    toml.write_text('epochs = 5\ncenter_coef = 0.0\n[lora]\nr = 4\n')
    code = main([*rm_args(tiny_model_dir, "--config", str(toml)), "--set", "epochs=1", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    run = runs.get_run(lab_db, json.loads(out)["run_id"])
    assert run.config["epochs"] == 1 and run.config["lora"]["r"] == 4 and run.config["center_coef"] == 0.0


def test_model_flag_sets_the_base(lab_home, lab_db, tiny_model_dir, capsys):
    insert_pairs(lab_db, 12)
    code = main(["--model", str(tiny_model_dir), "train", "rm", "--quiet", "--set", "epochs=1", "--set", "min_pairs=4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert runs.get_run(lab_db, json.loads(out)["run_id"]).config["base_model"] == str(tiny_model_dir)


def test_too_few_pairs_exits_non_zero_with_a_clear_message(lab_home, lab_db, tiny_model_dir, capsys):
    insert_pairs(lab_db, 2, decision_mix={"both_bad": 1})
    code = main(rm_args(tiny_model_dir, "--set", "min_pairs=10"))
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "2 usable, 10 needed" in err and "1 marked both bad" in err and "min_pairs" in err
    assert runs.list_runs(lab_db) == []  # refused before a run row exists


def test_bad_setting_is_refused_before_any_run(lab_home, lab_db, tiny_model_dir, capsys):
    code = main(rm_args(tiny_model_dir, "--set", "epochz=2"))
    _, err = capsys.readouterr()
    assert code == 1 and "unknown setting 'epochz'" in err
    assert runs.list_runs(lab_db) == []


def test_rm_progress_columns_are_metrics_the_run_records(lab_home, lab_db, tiny_model_dir, capsys):
    from tuilab.cli.train import RM_COLUMNS

    insert_pairs(lab_db, 16)
    assert main(rm_args(tiny_model_dir, "--set", "epochs=1")) == 0
    out, err = capsys.readouterr()
    run_id = json.loads(out)["run_id"]
    assert {c.metric for c in RM_COLUMNS} <= set(runs.metric_names(lab_db, run_id))
    assert f"run {run_id}: base model" in " ".join(err.split())


# ------------------------------------------------------------------ train ppo


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny expressive chat model and an (untrained) reward model folder on it."""
    from tiny import save_policy_and_reward

    return save_policy_and_reward(tmp_path_factory.mktemp("ppo-cli"))


@pytest.fixture
def ppo_home(tmp_path):
    ppo_home = tmp_path / "lab"
    db = open_db(ppo_home / "db" / "lab.db")
    add_prompts(db, [f"Answer briefly: question number {i}?" for i in range(12)], split="train")
    db.conn.close()
    return ppo_home


def ppo_args(ppo_home, model_dir, rm_dir, *extra):
    sets = [f"base_model={model_dir}", f"reward_run={rm_dir}", "batch_size=4", "minibatch_size=2",
            "max_new_tokens=6", "ppo_epochs=1", "sample_every=2", *extra]
    out = ["--home", str(ppo_home), "train", "ppo", "--quiet"]
    for s in sets:
        out += ["--set", s]
    return out


def test_headless_run_persists_everything(ppo_home, assets, capsys):
    model_dir, rm_dir = assets
    torch.set_num_threads(1)
    code = main(ppo_args(ppo_home, model_dir, rm_dir, "total_updates=3", "checkpoint_every=2"))
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    final = json.loads(out[-1])  # exactly one JSON line
    assert len(out) == 1 and final["steps"] == 3.0 and "objective/scores" in final
    db = open_db(ppo_home / "db" / "lab.db")
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
def test_bad_settings_fail_clearly(ppo_home, assets, capsys, argv_extra, message):
    model_dir, rm_dir = assets
    code = main(ppo_args(ppo_home, model_dir, rm_dir, "total_updates=1") + argv_extra)
    err = capsys.readouterr().err
    assert code == 1 and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (ppo_home / "models" / "runs").exists() or not any(
        p.name.startswith("ppo-") for p in (ppo_home / "models" / "runs").iterdir()), "a refused run left a folder"


def test_ppo_resume_errors(ppo_home, assets, capsys):
    assert main(["--home", str(ppo_home), "train", "ppo", "--resume", "ppo-nope"]) == 1
    assert "no run 'ppo-nope'" in capsys.readouterr().err
    assert main(["--home", str(ppo_home), "train", "ppo", "--resume", "x", "--set", "learning_rate=1"]) == 1
    assert "only change total_updates" in capsys.readouterr().err



def test_ppo_progress_columns_are_metrics_the_run_records(ppo_home, assets, capsys):
    from tuilab.cli.train import PPO_COLUMNS

    model_dir, rm_dir = assets
    assert main(ppo_args(ppo_home, model_dir, rm_dir, "total_updates=2", "checkpoint_every=0")) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    db = open_db(ppo_home / "db" / "lab.db")
    assert {c.metric for c in PPO_COLUMNS} <= set(runs.metric_names(db, run_id))
    db.conn.close()


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


def _kill_9_past_a_checkpoint(argv, env, db_path, kind, metric, timeout=480.0) -> str:
    """Start a run, SIGKILL it once it has a checkpoint and recorded `metric` a step past it; its id."""
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def past_a_checkpoint(db):
        found = runs.list_runs(db, kind)
        if not found:
            return None
        run_id = found[0].id
        ckpt = runs.latest_checkpoint(db, run_id)
        last = max((s for s, _ in runs.read_metrics(db, run_id, [metric]).get(metric, [])), default=0)
        return run_id if ckpt and last >= ckpt[0] + 1 else None

    try:
        run_id = _poll(db_path, past_a_checkpoint, proc, timeout=timeout)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    return run_id


def _resume(home, kind, run_id, env) -> dict:
    """`tuilab train KIND --resume RUN` in a fresh process; its final JSON line."""
    done = subprocess.run([sys.executable, "-m", "tuilab", "--home", str(home), "train", kind, "--quiet",
                           "--resume", run_id], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_ppo_kill_9_mid_run_then_resume(ppo_home, assets):
    """SIGKILL after a checkpoint and a few more steps; --resume finishes with no gap and no duplicate."""
    model_dir, rm_dir = assets
    total = 40
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TUILAB_HOME": str(ppo_home)}
    argv = [sys.executable, "-m", "tuilab", *ppo_args(ppo_home, model_dir, rm_dir, f"total_updates={total}",
                                                      "checkpoint_every=3")]
    db_path = ppo_home / "db" / "lab.db"
    run_id = _kill_9_past_a_checkpoint(argv, env, db_path, "ppo", "objective/kl")
    db = open_db(db_path)
    killed_at = max(s for s, _ in runs.read_metrics(db, run_id, ["objective/kl"])["objective/kl"])
    ckpt_step = runs.latest_checkpoint(db, run_id)[0]
    assert runs.get_run(db, run_id).status == "running"  # nobody got to say otherwise
    db.conn.close()
    assert ckpt_step < killed_at < total

    final = _resume(ppo_home, "ppo", run_id, env)
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


# ------------------------------------------------------------------ train dpo


@pytest.fixture(scope="module")
def dpo_model_dir(tmp_path_factory):
    from tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("dpo-cli") / "tiny", sharpen=True)


@pytest.fixture
def dpo_home(tmp_path):
    dpo_home = tmp_path / "lab"
    db = open_db(dpo_home / "db" / "lab.db")
    insert_pairs(db, 40)
    db.conn.close()
    return dpo_home


def dpo_args(dpo_home, dpo_model_dir, *extra):
    sets = [f"base_model={dpo_model_dir}", "batch_size=8", "min_pairs=8", "learning_rate=5e-3", "max_new_tokens=6",
            "sample_prompts=2", "sample_every=2", *extra]
    out = ["--home", str(dpo_home), "train", "dpo", "--quiet"]
    for s in sets:
        out += ["--set", s]
    return out


def test_headless_run_prints_one_json_line(dpo_home, dpo_model_dir, capsys):
    torch.set_num_threads(1)
    code = main(dpo_args(dpo_home, dpo_model_dir, "epochs=1", "checkpoint_every=2"))
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    final = json.loads(out[-1])
    assert len(out) == 1 and final["run_id"].startswith("dpo-") and "eval/accuracy" in final
    assert {"loss", "rewards/margins", "logps/chosen"} <= set(final)
    db = open_db(dpo_home / "db" / "lab.db")
    run = runs.get_run(db, final["run_id"])
    assert run.kind == "dpo" and run.status == "completed" and count_samples(db, run.id) > 0
    db.conn.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["loss=kto"], "loss must be sigmoid, ipo, hinge, rdpo"), (["nope=1"], "unknown setting 'nope'"),
     (["beta=0"], "beta must be positive")],
)
def test_bad_settings_fail_clearly_without_a_run(dpo_home, dpo_model_dir, capsys, extra, message):
    assert main(dpo_args(dpo_home, dpo_model_dir, *extra)) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    db = open_db(dpo_home / "db" / "lab.db")
    assert runs.list_runs(db, "dpo") == []
    db.conn.close()


def test_too_few_pairs_fails_with_the_reason(dpo_home, dpo_model_dir, capsys):
    assert main(dpo_args(dpo_home, dpo_model_dir, "min_pairs=999")) == 1
    assert "40 usable, 999 needed" in capsys.readouterr().err.strip().splitlines()[-1]


def test_dpo_resume_errors(dpo_home, capsys):
    assert main(["--home", str(dpo_home), "train", "dpo", "--resume", "dpo-nope"]) == 1
    assert "no run 'dpo-nope'" in capsys.readouterr().err
    assert main(["--home", str(dpo_home), "train", "dpo", "--resume", "x", "--set", "beta=1"]) == 1
    assert "only change epochs" in capsys.readouterr().err


def test_dpo_kill_9_mid_run_then_resume(dpo_home, dpo_model_dir):
    """SIGKILL after a checkpoint and a step more; --resume finishes with no gap and no duplicate."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TUILAB_HOME": str(dpo_home)}
    argv = [sys.executable, "-m", "tuilab", *dpo_args(dpo_home, dpo_model_dir, "epochs=12", "checkpoint_every=4")]
    db_path = dpo_home / "db" / "lab.db"
    run_id = _kill_9_past_a_checkpoint(argv, env, db_path, "dpo", "loss", timeout=300.0)
    db = open_db(db_path)
    total = runs.get_run(db, run_id).total_steps
    killed_at = max(s for s, _ in runs.read_metrics(db, run_id, ["loss"])["loss"])
    assert runs.get_run(db, run_id).status == "running"
    db.conn.close()
    assert killed_at < total

    final = _resume(dpo_home, "dpo", run_id, env)
    assert final["run_id"] == run_id and final["steps"] == total
    db = open_db(db_path)
    assert runs.get_run(db, run_id).status == "completed"
    assert [r.id for r in runs.list_runs(db, "dpo")] == [run_id]
    for name, rows in runs.read_metrics(db, run_id, ["loss", "lr", "rewards/margins"]).items():
        assert [s for s, _ in rows] == list(range(1, total + 1)), name  # no gap, no duplicate
    lrs = [v for _, v in runs.read_metrics(db, run_id, ["lr"])["lr"]]
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))  # the LR schedule carried on
    db.conn.close()


def test_dpo_progress_columns_are_metrics_the_run_records(dpo_home, dpo_model_dir, capsys):
    from tuilab.cli.train import DPO_COLUMNS

    torch.set_num_threads(1)
    assert main(dpo_args(dpo_home, dpo_model_dir, "epochs=1", "checkpoint_every=0")) == 0
    out, err = capsys.readouterr()
    run_id = json.loads(out)["run_id"]
    db = open_db(dpo_home / "db" / "lab.db")
    assert {c.metric for c in DPO_COLUMNS} <= set(runs.metric_names(db, run_id))
    db.conn.close()
    assert "loss sigmoid, β 0.1" in " ".join(err.split())
