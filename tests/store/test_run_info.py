"""What hangs off a run: rows per table, the last step with metrics, and the runs built on it."""

from __future__ import annotations

import pytest

from tuilab.records import Comparison, Sample
from tuilab.store import runs
from tuilab.store.comparisons import record_comparison
from tuilab.store.generations import add_generation
from tuilab.store.prompts import add_prompts
from tuilab.store.run_info import child_runs, run_counts
from tuilab.store.samples import write_samples


@pytest.fixture
def two_runs(db):
    """A PPO run with metrics at steps 1–3, two samples, one checkpoint and one comparison; an empty RM run."""
    rm = runs.create_run(db, "rm", {})
    ppo = runs.create_run(db, "ppo", {}, parents=[rm])
    pid = add_prompts(db, ["why?"]).ids[0]
    runs.write_metrics(db, ppo, [(1, "loss", 0.5), (2, "loss", 0.4), (3, "loss", 0.3), (3, "kl", 0.1)])
    write_samples(db, ppo, 3, [Sample(prompt="why?", response="because", prompt_id=pid),
                               Sample(prompt="why?", response="no idea", prompt_id=pid)])
    runs.add_checkpoint(db, ppo, 3, "/runs/ppo/step-3")
    left = add_generation(db, pid, "because", origin="ppo", run_id=ppo, step=3)
    right = add_generation(db, pid, "no idea", origin="ppo", run_id=ppo, step=3)
    record_comparison(db, Comparison(pid, left, right, "left", origin="hacked", run_id=ppo))
    return rm, ppo


def test_run_counts_of_a_run_with_rows(db, two_runs):
    _, ppo = two_runs
    assert run_counts(db, ppo) == {"metrics": 4, "samples": 2, "checkpoints": 1, "last_step": 3, "comparisons": 1}


def test_a_run_without_rows_counts_zero_and_has_no_last_step(db, two_runs):
    rm, _ = two_runs
    assert run_counts(db, rm) == {"metrics": 0, "samples": 0, "checkpoints": 0, "last_step": None,
                                  "comparisons": 0}
    assert run_counts(db, "no-such-run")["last_step"] is None


def test_child_runs_are_the_runs_that_name_it_as_parent(db, two_runs):
    rm, ppo = two_runs
    second = runs.create_run(db, "ppo", {}, parents=[rm, "some-other-rm"])
    runs.create_run(db, "dpo", {})  # no parents
    db.execute("UPDATE runs SET created_at = ? WHERE id = ?", ["2026-01-01T00:00:00.000Z", ppo])
    db.execute("UPDATE runs SET created_at = ? WHERE id = ?", ["2025-01-01T00:00:00.000Z", second])
    assert child_runs(db, rm) == [second, ppo]  # oldest first, whatever the insertion order
    assert child_runs(db, ppo) == []
    assert child_runs(db, "no-such-run") == []


def test_a_run_is_not_its_own_child(db):
    run_id = runs.create_run(db, "rm", {}, run_id="rm-self")
    db.execute("UPDATE runs SET parents = ? WHERE id = ?", ['["rm-self"]', run_id])
    assert child_runs(db, run_id) == []
