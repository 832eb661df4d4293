"""`tuilab runs list | show | delete` on a real lab database."""

from __future__ import annotations

import json

import pytest

from tuilab.cli import main
from tuilab.store import runs
from tuilab.store.db import open_db


@pytest.fixture
def lab(lab_home):
    db = open_db(lab_home / "db" / "lab.db")
    folder = lab_home / "models" / "runs" / "rm-a"
    folder.mkdir(parents=True)
    (folder / "reward.json").write_text("{}")
    runs.create_run(db, "rm", {"epochs": 1}, run_id="rm-a", name="first", output_dir=str(folder))
    runs.set_run_status(db, "rm-a", "completed", final_metrics={"eval/accuracy": 0.75})
    runs.write_metrics(db, "rm-a", [(1, "train/loss", 0.7), (2, "train/loss", 0.6)])
    runs.create_run(db, "ppo", {}, run_id="ppo-b", parents=["rm-a"])
    runs.set_run_status(db, "ppo-b", "cancelled")
    yield db
    db.conn.close()


def test_list_shows_every_run_newest_first(lab, capsys):
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["ID", "KIND", "STATUS"]
    assert [line.split()[0] for line in out[1:]] == ["ppo-b", "rm-a"]
    assert main(["runs", "list", "--kind", "rm", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["status"]) for r in data] == [("rm-a", "completed")]


def test_show_gives_steps_metrics_and_children(lab, capsys):
    assert main(["runs", "show", "rm-a"]) == 0
    out = capsys.readouterr().out
    assert "status:      completed" in out and "2 of" in out and "used by:     ppo-b" in out
    assert "eval/accuracy 0.75" in out
    assert main(["runs", "show", "ppo-b"]) == 0
    assert "tuilab train ppo --resume ppo-b" in capsys.readouterr().out


def test_delete_refuses_a_parent_then_deletes_with_files(lab, lab_home, capsys):
    assert main(["runs", "delete", "rm-a", "--yes"]) == 1
    assert "parent of ppo-b" in capsys.readouterr().err
    assert main(["runs", "delete", "ppo-b", "--yes"]) == 0
    assert main(["runs", "delete", "rm-a", "--yes", "--files"]) == 0
    assert "deleted run rm-a" in capsys.readouterr().out
    assert runs.list_runs(lab) == []
    assert lab.execute("SELECT count(*) FROM metrics").fetchone()[0] == 0
    assert not (lab_home / "models" / "runs" / "rm-a").exists()


def test_delete_without_yes_off_a_terminal_is_refused(lab, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["runs", "delete", "ppo-b"]) == 1
    assert "--yes" in capsys.readouterr().err
    assert [r.id for r in runs.list_runs(lab)] == ["ppo-b", "rm-a"]


def test_runs_on_a_lab_that_does_not_exist_create_nothing(tmp_path, capsys):
    home = tmp_path / "nowhere"
    assert main(["--home", str(home), "runs", "list"]) == 0
    assert "no runs yet" in capsys.readouterr().out
    assert main(["--home", str(home), "runs", "show", "rm-x"]) == 1
    assert "no lab database" in capsys.readouterr().err
    assert not home.exists()
