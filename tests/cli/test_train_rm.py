"""`tuilab train rm` headless: same job, progress on stderr, one JSON line on stdout."""

from __future__ import annotations

import json

import pytest

from tests.jobs.rm_data import insert_pairs
from tuilab.cli import main
from tuilab.store import runs
from tuilab.store.db import open_db


@pytest.fixture
def lab_db(lab_home):
    db = open_db(lab_home / "db" / "lab.db")
    yield db
    db.conn.close()


def args(model_dir, *more: str) -> list[str]:
    sets = [f"base_model={model_dir}", "epochs=2", "batch_size=8", "learning_rate=0.003", "min_pairs=8",
            "checkpoint_every=0"]
    out = ["train", "rm"]
    for s in sets:
        out += ["--set", s]
    return out + list(more)


def test_train_rm_prints_final_metrics_as_one_json_line(lab_home, lab_db, tiny_model_dir, capsys):
    insert_pairs(lab_db, 24)
    code = main(args(tiny_model_dir, "--name", "cli-run"))
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
    code = main([*args(tiny_model_dir, "--config", str(toml)), "--set", "epochs=1", "--quiet"])
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
    code = main(args(tiny_model_dir, "--set", "min_pairs=10"))
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "2 usable, 10 needed" in err and "1 marked both bad" in err and "min_pairs" in err
    assert runs.list_runs(lab_db) == []  # refused before a run row exists


def test_bad_setting_is_refused_before_any_run(lab_home, lab_db, tiny_model_dir, capsys):
    code = main(args(tiny_model_dir, "--set", "epochz=2"))
    _, err = capsys.readouterr()
    assert code == 1 and "unknown setting 'epochz'" in err
    assert runs.list_runs(lab_db) == []
