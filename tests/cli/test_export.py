"""`tuilab export RUN OUT` and `tuilab export preferences OUT`: what the verb prints and refuses.

What the folders hold (scores and generations matching the lab's in plain transformers) is tested in
tests/jobs/test_export.py.
"""

from __future__ import annotations

import json

import pytest
import torch

from tests.jobs.rm_data import insert_pairs
from tuilab.cli import main
from tuilab.config import LabPaths, RewardConfig
from tuilab.jobs.export import ExportError, export_preferences
from tuilab.jobs.rm_job import reward_job
from tuilab.jobs.runner import run_job
from tuilab.store import runs
from tuilab.store.db import open_db


@pytest.fixture
def lab(tmp_path):
    torch.set_num_threads(1)
    paths = LabPaths.resolve(tmp_path / "lab")
    db = open_db(paths.db)
    insert_pairs(db, 32)
    yield paths, db
    db.conn.close()


def test_cli_export_refusals_are_one_line(lab, tmp_path, capsys):
    paths, db = lab
    code = main(["--home", str(paths.home), "export", "rm-nope", str(tmp_path / "x")])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "no run 'rm-nope'" in err and "\n" not in err
    with pytest.raises(ExportError, match="no decided preference pairs"):
        export_preferences(open_db(tmp_path / "empty.db"), tmp_path / "p")
    assert main(["--home", str(paths.home), "export", "preferences", str(tmp_path / "p2")]) == 0
    assert capsys.readouterr().out.startswith("Wrote preference pairs (32 train)")
    assert len((tmp_path / "p2" / "train.jsonl").read_text().splitlines()) == 32


def test_an_unfinished_run_is_refused_with_its_status(lab, tmp_path, capsys):
    paths, db = lab
    run_id = runs.create_run(db, "rm", {}, output_dir=str(paths.runs / "x"))
    (paths.runs / run_id).mkdir(parents=True)
    runs.set_run_status(db, run_id, "running")
    assert main(["--home", str(paths.home), "export", run_id, str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tuilab: run {run_id} (running) has no finished model in ") and err.count("\n") == 1
    assert "export a completed run" in err and not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_lab_is_refused_before_anything_is_written(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n" * 20)
    assert main(["--db", str(notes), "export", "preferences", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert str(notes) in err and err.count("\n") == 1
    assert notes.read_text() == "shopping list\n" * 20 and not (tmp_path / "p").exists()


def test_dtype_is_one_of_three(lab, tmp_path, capsys):
    paths, _ = lab
    with pytest.raises(SystemExit) as exit_:
        main(["--home", str(paths.home), "export", "rm-1", str(tmp_path / "x"), "--dtype", "int8"])
    assert exit_.value.code == 2 and "invalid choice: 'int8'" in capsys.readouterr().err


def test_a_reward_run_exports_and_a_wrong_member_is_named(lab, tiny_model_dir, tmp_path, capsys):
    paths, db = lab
    cfg = RewardConfig(base_model=str(tiny_model_dir), learning_rate=3e-3, epochs=1, batch_size=8, min_pairs=8,
                       warmup_ratio=0.0, checkpoint_every=0)
    outcome = run_job(reward_job(cfg), paths=paths)
    assert outcome.status == "completed", outcome.error
    out = tmp_path / "rm-export"
    assert main(["--home", str(paths.home), "export", outcome.run_id, str(out), "--dtype", "bfloat16"]) == 0
    assert capsys.readouterr().out == f"Wrote {out}\n"
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"] and config["dtype"] == "bfloat16"
    assert (out / "README.md").exists()
    code = main(["--home", str(paths.home), "export", outcome.run_id, str(tmp_path / "m"), "--member", "reward-7"])
    err = capsys.readouterr().err
    assert code == 1 and f"run {outcome.run_id} has no member 'reward-7'; it has reward-0" in err
