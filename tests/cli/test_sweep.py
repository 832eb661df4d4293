"""`tuilab sweep`: what the verb refuses before Ray starts (no Ray, bad flags, a bad grid point).

The sweep itself (trials on a local Ray, their runs in the lab) is tested in tests/jobs/test_sweep.py.
"""

from __future__ import annotations

import sys

import pytest

from tests.jobs.rm_data import insert_pairs
from tuilab.cli import main
from tuilab.store import runs
from tuilab.store.db import open_db


def test_without_ray_sweep_says_how_to_get_it(monkeypatch, lab_home, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["sweep", "rm", "--grid", "learning_rate=1e-3,2e-3"]) == 1
    err = capsys.readouterr().err.strip()
    assert "pip install 'tuilab[ray]'" in err and "\n" not in err


def test_invalid_grid_point_leaves_no_run(lab_home, tiny_model_dir, capsys):
    pytest.importorskip("ray.tune")
    db = open_db(lab_home / "db" / "lab.db")
    insert_pairs(db, 16)
    code = main(["sweep", "rm", "--set", f"base_model={tiny_model_dir}", "--grid", "batch_size=4,0"])
    assert code == 1 and "batch_size" in capsys.readouterr().err
    assert runs.list_runs(db) == []
    db.conn.close()


def test_a_bad_grid_point_is_named_in_the_refusal(lab_home, tiny_model_dir, capsys):
    pytest.importorskip("ray.tune")
    db = open_db(lab_home / "db" / "lab.db")
    insert_pairs(db, 16)
    code = main(["sweep", "ppo", "--set", f"base_model={tiny_model_dir}", "--set", "reward_run=rm-none",
                 "--grid", "kl_coef=0.1"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("tuilab: grid point {'kl_coef': '0.1'}: ") and err.count("\n") == 1
    assert "rm-none" in err
    assert runs.list_runs(db) == []
    db.conn.close()


@pytest.mark.parametrize("flags", [["--cpus-per-trial", "0"], ["--cpus", "0"], ["--gpus-per-trial", "-0.5"]])
def test_resources_below_one_cpu_or_negative_gpus_are_refused(lab_home, capsys, flags):
    pytest.importorskip("ray.tune")
    assert main(["sweep", "rm", "--grid", "learning_rate=1e-3,2e-3", *flags]) == 1
    assert capsys.readouterr().err == (
        "tuilab: --cpus and --cpus-per-trial must be ≥ 1, --gpus-per-trial ≥ 0\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["--grid", "learning_rate"], "write KEY=V1,V2"),
    ([], "at least one --grid"),
    (["--grid", "epochz=1,2"], "epochz"),
    (["--grid", "epochs=1,2", "--set", "lora.q=3"], "unknown setting 'lora.q'"),
])
def test_a_bad_grid_or_base_setting_is_one_line(lab_home, capsys, argv, message):
    pytest.importorskip("ray.tune")
    assert main(["sweep", "rm", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tuilab: ") and message in err and err.count("\n") == 1
    assert not (lab_home / "db" / "lab.db").exists()  # nothing was created


def test_sweep_kind_is_rm_or_ppo(lab_home, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "dpo", "--grid", "beta=0.1,0.2"])
    assert exit_.value.code == 2 and "invalid choice: 'dpo'" in capsys.readouterr().err
