"""One job on two processes (torchrun, gloo on this CPU) against the same job on one.

`torchrun --nproc_per_node 2 -m tuilab … train rm|ppo` starts two real ranks
(`accelerate launch --cpu` starts only one on this machine). Each test runs the
same command on one process and on two, on identical copies of a lab, and
checks that the two-process run is the same run: every metric of every step
equal within |a − b| ≤ 1e-5 + 1e-4·|a| (float32 sums taken in another order:
the differences seen are ~1e-7), one run row, each sample once, checkpoints
from the main process only.

PPO's ranks sample from their own random streams, so for the PPO comparison
both runs go through `ppo_sampling_harness.py`, which draws each prompt's
answer from a stream of its own; then one and two processes see the same
answers, and the comparison covers what the processes must agree on: reward
and advantage whitening, explained variance, the DDP update, the metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.jobs.rm_data import insert_pairs
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.store.prompts import add_prompts
from tuilab.store.samples import list_samples

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("ppo_sampling_harness.py")
pytestmark = pytest.mark.slow  # each test runs three or four tuilab processes (~20 s each here)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-5 + 1e-4 * abs(a)


def launch(nproc: int, target: list[str], argv: list[str]) -> dict:
    """Run `tuilab argv` on `nproc` processes; the final metrics (stdout's one JSON line)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    head = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                 "--nproc_per_node", str(nproc)]
    done = subprocess.run([*head, *target, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, done.stdout  # the main process prints; the other rank is silent
    return json.loads(lines[0])


def sets(**values) -> list[str]:
    out = []
    for key, value in values.items():
        out += ["--set", f"{key}={value}"]
    return out


def metrics_by_step(home: Path, run_id: str) -> dict[str, dict[int, float]]:
    db = open_db(home / "db" / "lab.db")
    try:
        return {name: dict(rows) for name, rows in runs.read_metrics(db, run_id).items()}
    finally:
        db.conn.close()


def assert_same_metrics(one: dict, two: dict, names: list[str]) -> None:
    for name in names:
        assert one[name].keys() == two[name].keys(), name
        for step, value in one[name].items():
            assert close(value, two[name][step]), (name, step, value, two[name][step])


def only_run(home: Path, kind: str):
    db = open_db(home / "db" / "lab.db")
    try:
        found = runs.list_runs(db, kind)
        assert len(found) == 1, [r.id for r in found]
        run = found[0]
        return run, runs.list_checkpoints(db, run.id), list_samples(db, run.id, limit=10_000)
    finally:
        db.conn.close()


# ---------------------------------------------------------------------------- reward model
def test_two_processes_train_the_reward_model_one_process_trains(tmp_path, tiny_model_dir):
    one, two = tmp_path / "one", tmp_path / "two"
    db = open_db(one / "db" / "lab.db")
    insert_pairs(db, 24)
    db.conn.close()
    shutil.copytree(one, two)
    argv = ["train", "rm", "--quiet", *sets(base_model=tiny_model_dir, epochs=2, batch_size=8,
                                            learning_rate=0.003, min_pairs=8, checkpoint_every=3)]
    a = launch(1, ["-m", "tuilab"], ["--home", str(one), *argv])
    b = launch(2, ["-m", "tuilab"], ["--home", str(two), *argv])

    for key in ("train/loss", "train/accuracy", "eval/loss", "eval/accuracy", "eval/margin", "eval/ece"):
        assert close(a[key], b[key]), (key, a[key], b[key])
    assert a["steps"] == b["steps"] == 6 and a["train/pairs"] == b["train/pairs"]
    names = ["train/loss", "train/accuracy", "train/margin", "train/grad_norm", "eval/accuracy", "eval/loss"]
    assert_same_metrics(metrics_by_step(one, a["run_id"]), metrics_by_step(two, b["run_id"]), names)

    run, checkpoints, _ = only_run(two, "rm")
    assert run.id == b["run_id"] and run.status == "completed"
    assert [c[0] for c in checkpoints] == [3, 6]
    folders = [p.name for p in (two / "models" / "runs").iterdir()]
    assert folders == [run.id]  # the other rank wrote no folder of its own
    assert (two / "models" / "runs" / run.id / "reward.json").exists()


# ---------------------------------------------------------------------------- PPO
@pytest.fixture(scope="module")
def ppo_assets(tmp_path_factory):
    """A tiny chat model, an (untrained) reward model on it, and a lab with 12 prompts."""
    from tiny import save_policy_and_reward

    root = tmp_path_factory.mktemp("ppo-dist")
    model_dir, _ = save_policy_and_reward(root)
    lab = root / "lab"
    db = open_db(lab / "db" / "lab.db")
    add_prompts(db, [f"Answer briefly: question number {i}?" for i in range(12)], split="train")
    db.conn.close()
    return model_dir, root / "rm", lab


PPO_METRICS = ["objective/scores", "objective/scores_std", "objective/kl", "objective/kl_k3", "objective/entropy",
               "objective/token_entropy", "objective/rlhf_reward", "policy/approxkl_avg", "policy/entropy_avg",
               "loss/policy_avg", "loss/value_avg", "val/ratio", "val/explained_variance", "policy/grad_norm",
               "val/grad_norm", "val/value_mean", "val/return_mean", "response/length_mean", "diag/distinct_2"]


def test_two_processes_run_the_ppo_steps_one_process_runs_and_resume(tmp_path, ppo_assets):
    model_dir, rm_dir, lab = ppo_assets
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    for home in (one, two, resumed):
        shutil.copytree(lab, home)
    # One minibatch per PPO epoch: one process and two then take the very same gradient steps.
    argv = ["train", "ppo", "--quiet", *sets(base_model=model_dir, reward_run=rm_dir, batch_size=4,
                                             minibatch_size=4, ppo_epochs=2, max_new_tokens=6, sample_every=2,
                                             checkpoint_every=2, whiten_rewards="true", lr_decay="false")]
    a = launch(1, [str(HARNESS)], ["--home", str(one), *argv, *sets(total_updates=3)])
    b = launch(2, [str(HARNESS)], ["--home", str(two), *argv, *sets(total_updates=3)])
    assert a["steps"] == b["steps"] == 3
    assert_same_metrics(metrics_by_step(one, a["run_id"]), metrics_by_step(two, b["run_id"]), PPO_METRICS)

    run, checkpoints, samples = only_run(two, "ppo")
    assert run.id == b["run_id"] and run.status == "completed"
    assert [c[0] for c in checkpoints] == [2, 3]
    _, _, samples_one = only_run(one, "ppo")
    # Every rank's rows once: the global batch of each step, in the same order as one process's.
    assert len(samples) == 4 * 3
    assert sorted((s.step, s.prompt_id, s.response) for s in samples) == \
        sorted((s.step, s.prompt_id, s.response) for s in samples_one)
    state = torch.load(Path(checkpoints[-1][1]) / "trainer_state.pt", weights_only=False)
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    assert [p.name for p in (two / "models" / "runs").iterdir()] == [run.id]

    # Stop after 2 updates, resume on two processes to 3: the same steps as the run that never stopped
    # (a constant learning rate: a decaying one is planned over total_updates, which the resume extends).
    c = launch(2, [str(HARNESS)], ["--home", str(resumed), *argv, *sets(total_updates=2)])
    d = launch(2, [str(HARNESS)], ["--home", str(resumed), "train", "ppo", "--quiet", "--resume", c["run_id"],
                                   *sets(total_updates=3)])
    assert d["run_id"] == c["run_id"] and d["steps"] == 3
    resumed_run, _, resumed_samples = only_run(resumed, "ppo")
    assert resumed_run.status == "completed" and len(resumed_samples) == 4 * 3
    assert_same_metrics(metrics_by_step(two, b["run_id"]), metrics_by_step(resumed, c["run_id"]),
                        [m for m in PPO_METRICS if not m.startswith("diag/")])


# ---------------------------------------------------------------------------- DPO
def test_two_processes_train_the_dpo_policy_one_process_trains(tmp_path, tiny_model_dir):
    one, two = tmp_path / "one", tmp_path / "two"
    db = open_db(one / "db" / "lab.db")
    insert_pairs(db, 24)
    db.conn.close()
    shutil.copytree(one, two)
    argv = ["train", "dpo", "--quiet", *sets(base_model=tiny_model_dir, epochs=2, batch_size=8, min_pairs=8,
                                             learning_rate=5e-3, max_new_tokens=6, sample_prompts=3,
                                             sample_every=2, checkpoint_every=3, eval_fraction=0.25)]
    a = launch(1, ["-m", "tuilab"], ["--home", str(one), *argv])
    b = launch(2, ["-m", "tuilab"], ["--home", str(two), *argv])
    assert a["steps"] == b["steps"] == 6
    # Training and held-out pair metrics match; held-out *answers* are sampled from each rank's own stream.
    names = ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
             "logps/rejected", "train/grad_norm", "eval/loss", "eval/accuracy", "eval/rewards/margins"]
    assert_same_metrics(metrics_by_step(one, a["run_id"]), metrics_by_step(two, b["run_id"]), names)

    run, checkpoints, samples = only_run(two, "dpo")
    assert run.id == b["run_id"] and run.status == "completed"
    assert [c[0] for c in checkpoints] == [3, 6]
    # Held-out answers at steps 1, 3, 5 to every held-out prompt (split across the ranks), each once.
    answered = sorted((s.step, s.prompt_id) for s in samples)
    assert answered == sorted((s.step, s.prompt_id) for s in only_run(one, "dpo")[2])
    assert len(set(answered)) == len(answered) and {s for s, _ in answered} == {1, 3, 5}
    assert len(answered) >= 2 * 3  # at least two prompts a step: both ranks answered
    assert [p.name for p in (two / "models" / "runs").iterdir()] == [run.id]


# ---------------------------------------------------------------------------- a rank that fails
FAILURE_HARNESS = Path(__file__).with_name("rank_failure_harness.py")


def launch_failing(home: Path, tiny_model_dir: str, *, rank: int, how: str, at: int = 2):
    """`train rm` on two processes with rank `rank` failing at update `at`: (exit status, stderr, seconds)."""
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "TUILAB_FAIL_RANK": str(rank), "TUILAB_FAIL_AT": str(at),
           "TUILAB_FAIL_HOW": how}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    argv = ["--home", str(home), "train", "rm", "--quiet",
            *sets(base_model=tiny_model_dir, epochs=4, batch_size=4, min_pairs=8, checkpoint_every=0)]
    t0 = time.monotonic()
    # A hang would be the bug: the timeout bounds the test (a healthy failing run ends in ~20 s here).
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(FAILURE_HARNESS), *argv], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240)
    return done.returncode, done.stderr, time.monotonic() - t0


@pytest.fixture()
def pairs_lab(tmp_path):
    db = open_db(tmp_path / "db" / "lab.db")
    insert_pairs(db, 24)
    db.conn.close()
    return tmp_path


def test_a_failure_on_rank_1_ends_the_run_failed_naming_the_rank(pairs_lab, tiny_model_dir):
    code, stderr, _ = launch_failing(pairs_lab, tiny_model_dir, rank=1, how="raise")
    assert code != 0, stderr[-3000:]
    run, _, _ = only_run(pairs_lab, "rm")
    assert run.status == "failed", (run.status, stderr[-3000:])
    assert run.error_summary == "rank 1 of 2 failed: RuntimeError: injected failure at update 2", run.error_summary
    assert "injected failure at update 2" in run.error and run.finished_at
    steps = sorted(metrics_by_step(pairs_lab, run.id).get("train/loss", {}))
    assert steps == [1], steps  # update 1 recorded; update 2 never completed


def test_a_rank_killed_outright_still_ends_the_run_failed(pairs_lab, tiny_model_dir):
    code, stderr, _ = launch_failing(pairs_lab, tiny_model_dir, rank=1, how="kill")
    assert code != 0, stderr[-3000:]
    run, _, _ = only_run(pairs_lab, "rm")
    assert run.status == "failed", (run.status, stderr[-3000:])
    # Rank 1 wrote nothing (SIGKILL): the main process, on its broken collective or the launcher's
    # SIGTERM, records the failure in words.
    assert run.error_summary.startswith("rank 0 of 2 "), run.error_summary
    assert "another rank" in run.error_summary, run.error_summary


def test_a_failure_on_rank_0_keeps_its_own_error(pairs_lab, tiny_model_dir):
    code, stderr, _ = launch_failing(pairs_lab, tiny_model_dir, rank=0, how="raise")
    assert code != 0, stderr[-3000:]
    run, _, _ = only_run(pairs_lab, "rm")
    # Rank 1 then sees a broken collective; the run keeps the main process's error, not that echo.
    assert run.status == "failed"
    assert run.error_summary == "rank 0 of 2 failed: RuntimeError: injected failure at update 2", run.error_summary
