"""jobs/sweep.py: grids, refusals, and a real local Ray Tune sweep of two tiny reward-model trials.

What the `tuilab sweep` verb refuses before Ray starts is tested in tests/cli/test_sweep.py.
"""

from __future__ import annotations

import json

import pytest

from tests.jobs.rm_data import insert_pairs
from tests.jobs.test_ppo_job import assets  # noqa: F401 - the tiny policy + reward folder fixture
from tuilab.cli import main
from tuilab.config import PPOConfig
from tuilab.jobs.sweep import SweepError, grid_points, parse_grid, trial_configs
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.store.prompts import add_prompts
from tuilab.store.samples import count_samples, list_samples


def test_grid_is_the_product_in_flag_order():
    grid = parse_grid(["kl_coef=0.01,0.05,0.2", "ensemble_mode=mean,min"])
    points = grid_points(grid)
    assert len(points) == 6 and points[0] == {"kl_coef": "0.01", "ensemble_mode": "mean"}
    assert points[1] == {"kl_coef": "0.01", "ensemble_mode": "min"}
    configs = trial_configs("ppo", PPOConfig(name="beta", batch_size=4), points)
    assert [c.kl_coef for c in configs] == [0.01, 0.01, 0.05, 0.05, 0.2, 0.2]
    assert configs[3].ensemble_mode == "min" and configs[3].batch_size == 4
    assert configs[3].name == "beta kl_coef=0.05 ensemble_mode=min"


@pytest.mark.parametrize("spec, message", [
    (["kl_coef"], "write KEY=V1,V2"), (["kl_coef="], "write KEY=V1,V2"), ([], "at least one --grid"),
    (["a=1", "a=2"], "given twice"),
])
def test_bad_grids_are_one_sentence(spec, message):
    with pytest.raises(SweepError, match=message):
        parse_grid(spec)


def test_unknown_key_or_bad_value_names_it():
    with pytest.raises(SweepError, match="kl_coeff"):
        trial_configs("ppo", PPOConfig(), grid_points(parse_grid(["kl_coeff=0.1"])))
    with pytest.raises(SweepError, match="batch_size"):
        trial_configs("ppo", PPOConfig(), grid_points(parse_grid(["batch_size=big"])))


@pytest.mark.slow
def test_local_ray_sweep_lands_two_complete_runs(lab_home, tiny_model_dir, capsys):
    ray = pytest.importorskip("ray")
    setup = open_db(lab_home / "db" / "lab.db")
    insert_pairs(setup, 32)
    setup.conn.close()
    try:
        code = main(["sweep", "rm", "--cpus", "2", "--name", "lr", "--set", f"base_model={tiny_model_dir}",
                     "--set", "epochs=2", "--set", "min_pairs=8", "--set", "warmup_ratio=0",
                     "--grid", "learning_rate=1e-3,3e-3"])
    finally:
        ray.shutdown()
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert code == 0, lines
    db = open_db(lab_home / "db" / "lab.db")
    assert [x["point"] for x in lines] == [{"learning_rate": "1e-3"}, {"learning_rate": "3e-3"}]
    found = runs.list_runs(db, "rm")
    assert sorted(r.id for r in found) == sorted(x["run_id"] for x in lines)
    for r in found:
        assert r.status == "completed" and r.name.startswith("lr learning_rate=")
        metrics = runs.read_metrics(db, r.id)
        steps = r.final_metrics["steps"]
        assert [s for s, _ in metrics["train/loss"]] == list(range(1, steps + 1))  # every step, none twice
        assert "eval/accuracy" in metrics and (lab_home / "models" / "runs" / r.id / "reward.json").exists()
    assert {r.config["learning_rate"] for r in found} == {1e-3, 3e-3}
    db.conn.close()


@pytest.mark.slow
def test_local_ray_ppo_sweep_streams_metrics_and_samples_per_trial(lab_home, assets, capsys):  # noqa: F811
    ray = pytest.importorskip("ray")
    model_dir, rm_dir = assets
    setup = open_db(lab_home / "db" / "lab.db")
    add_prompts(setup, [f"Answer briefly: question {i}?" for i in range(8)], split="train")
    setup.conn.close()
    try:
        code = main(["sweep", "ppo", "--cpus", "2", "--set", f"base_model={model_dir}", "--set", f"reward_run={rm_dir}",
                     "--set", "batch_size=4", "--set", "minibatch_size=2", "--set", "max_new_tokens=6",
                     "--set", "ppo_epochs=1", "--set", "total_updates=3", "--set", "checkpoint_every=0",
                     "--grid", "kl_coef=0.01,0.2"])
    finally:
        ray.shutdown()
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert code == 0, lines
    db = open_db(lab_home / "db" / "lab.db")
    found = {r.id: r for r in runs.list_runs(db, "ppo")}
    assert sorted(found) == sorted(x["run_id"] for x in lines)
    assert sorted(r.config["kl_coef"] for r in found.values()) == [0.01, 0.2]
    for run_id in found:
        kl = runs.read_metrics(db, run_id, ["objective/kl"])["objective/kl"]
        assert [s for s, _ in kl] == [1, 2, 3]
        assert count_samples(db, run_id) == 3 * 4  # batch × updates: every rollout once
        assert {s.step for s in list_samples(db, run_id, limit=100)} == {1, 2, 3}
    db.conn.close()


@pytest.mark.slow
def test_a_cancel_requested_from_the_lab_stops_one_trial(lab_home, assets, capsys):  # noqa: F811
    """The runs screen's x on a trial writes a cancel request (store/run_requests.py); the trial's runner
    reads it between updates: that trial ends "cancelled" with a checkpoint, the other one completes."""
    import threading
    import time

    from tuilab.store.run_requests import request_cancel

    ray = pytest.importorskip("ray")
    model_dir, rm_dir = assets
    setup = open_db(lab_home / "db" / "lab.db")
    add_prompts(setup, [f"Answer briefly: question {i}?" for i in range(8)], split="train")
    setup.conn.close()
    asked: dict[str, object] = {}

    def lab_user() -> None:
        """What the runs screen does when x is pressed on the long trial, once it has run two updates
        (a fresh connection per look)."""
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and "run" not in asked:
            db = open_db(lab_home / "db" / "lab.db")
            try:
                for r in runs.list_runs(db, "ppo"):
                    if r.config.get("total_updates") == 400 and r.status == "running" \
                            and runs.last_metric_step(db, r.id) >= 2:
                        request_cancel(db, r.id)
                        asked["run"], asked["at"] = r.id, runs.last_metric_step(db, r.id)
            finally:
                db.conn.close()
            time.sleep(0.5)

    user = threading.Thread(target=lab_user, daemon=True)
    user.start()
    try:
        # One CPU: the trials run one after the other (the short one first), the lab user watching.
        code = main(["sweep", "ppo", "--cpus", "1", "--set", f"base_model={model_dir}", "--set", f"reward_run={rm_dir}",
                     "--set", "batch_size=4", "--set", "minibatch_size=2", "--set", "max_new_tokens=6",
                     "--set", "ppo_epochs=1", "--set", "checkpoint_every=0", "--grid", "total_updates=2,400"])
    finally:
        ray.shutdown()
    user.join(5)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert "run" in asked, lines
    assert code == 1  # not every trial completed
    by_point = {x["point"]["total_updates"]: x for x in lines}
    assert by_point["2"]["status"] == "completed"
    assert by_point["400"]["status"] == "cancelled" and by_point["400"]["run_id"] == asked["run"]
    db = open_db(lab_home / "db" / "lab.db")
    run = runs.get_run(db, asked["run"])
    assert run.status == "cancelled" and run.finished_at
    steps = [s for s, _ in runs.read_metrics(db, run.id, ["objective/kl"])["objective/kl"]]
    last = steps[-1]
    assert steps == list(range(1, last + 1)) and asked["at"] <= last < 400  # stopped after its current update
    assert [c[0] for c in runs.list_checkpoints(db, run.id)] == [last]  # the last finished update, to resume from
    assert runs.get_run(db, by_point["2"]["run_id"]).status == "completed"
    db.conn.close()
