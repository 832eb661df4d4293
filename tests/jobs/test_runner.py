"""The job runner: run rows, batched persistence, forwarding, failures, pause and cancel.

These loops are plain Python (no model): the runner must behave the same for any job.
"""

from __future__ import annotations

import threading
import time

import pytest

from tuilab.config import LabPaths, RewardConfig
from tuilab.jobs.runner import Job, run_job
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.training.events import (
    Cancelled,
    Checkpoint,
    Failed,
    Finished,
    Metrics,
    RunControl,
    RunWarning,
)


@pytest.fixture
def paths(tmp_path) -> LabPaths:
    return LabPaths.resolve(tmp_path / "lab")


@pytest.fixture
def read_db(paths):
    opened = []

    def make():
        db = open_db(paths.db)
        opened.append(db)
        return db

    yield make
    for db in opened:
        db.conn.close()


def counting_loop(steps: int = 5, *, fail_at: int | None = None, warn: bool = False):
    def fn(ctx):
        for step in range(1, steps + 1):
            ctx.control.check()
            if step == fail_at:
                raise ValueError(f"bad batch at step {step}\nsecond line of the reason")
            ctx.sink(Metrics(step=step, values={"train/loss": 1.0 / step}, total_steps=steps))
            if step % 2 == 0:
                path = ctx.output_dir / f"ckpt-{step}"
                path.mkdir(exist_ok=True)
                ctx.sink(Checkpoint(step=step, path=str(path), metrics={"train/loss": 1.0 / step}))
        if warn:
            ctx.sink(RunWarning(step=steps, code="length_bias", message="rewards rise with length"))
        return {"train/loss": 1.0 / steps}

    return fn


def test_completed_run_is_persisted_and_forwarded(paths, read_db):
    batches = []
    job = Job(kind="rm", config=RewardConfig(epochs=3), fn=counting_loop(5, warn=True), name="demo")
    outcome = run_job(job, paths=paths, control=RunControl(), forward=batches.append)
    assert outcome.status == "completed" and outcome.ok
    assert outcome.run_id == job.run_id and job.run_id.startswith("rm-")
    assert outcome.output_dir == paths.runs / job.run_id and outcome.output_dir.is_dir()
    assert outcome.metrics["train/loss"] == 0.2
    assert outcome.metrics["warnings"][0]["code"] == "length_bias"
    db = read_db()
    run = runs.get_run(db, job.run_id)
    assert run.status == "completed" and run.name == "demo" and run.kind == "rm"
    assert run.config["epochs"] == 3 and run.total_steps == 5
    assert run.started_at and run.finished_at and run.final_metrics["train/loss"] == 0.2
    assert run.output_dir == str(outcome.output_dir)
    assert [s for s, _ in runs.read_metrics(db, job.run_id)["train/loss"]] == [1, 2, 3, 4, 5]
    assert [s for s, _, _ in runs.list_checkpoints(db, job.run_id)] == [2, 4]
    events = [e for batch in batches for e in batch]
    assert isinstance(events[-1], Finished) and events[-1].metrics["train/loss"] == 0.2
    assert [e.step for e in events if isinstance(e, Metrics)] == [1, 2, 3, 4, 5]
    assert any(isinstance(e, RunWarning) for e in events)


def test_a_loop_that_raises_fails_the_run_with_its_reason(paths, read_db):
    batches = []
    job = Job(kind="rm", config={}, fn=counting_loop(5, fail_at=3))
    outcome = run_job(job, paths=paths, forward=batches.append)  # never raises
    assert outcome.status == "failed"
    assert outcome.error_summary == "ValueError: second line of the reason"
    assert "Traceback" in outcome.error and "bad batch at step 3" in outcome.error
    assert outcome.step == 2  # the last step the loop reported
    run = runs.get_run(read_db(), job.run_id)
    assert run.status == "failed" and run.error_summary == outcome.error_summary and run.finished_at
    assert "Traceback" in run.error
    failed = batches[-1][-1]
    assert isinstance(failed, Failed) and failed.summary == outcome.error_summary and failed.step == 2
    # What the loop reported before failing is kept.
    assert [s for s, _ in runs.read_metrics(read_db(), job.run_id)["train/loss"]] == [1, 2]


def test_exception_step_attribute_wins(paths):
    class Diverged(RuntimeError):
        step = 7

    def fn(ctx):
        raise Diverged("loss became nan")

    outcome = run_job(Job(kind="rm", config={}, fn=fn), paths=paths)
    assert outcome.status == "failed" and outcome.step == 7
    assert outcome.error_summary == "Diverged: loss became nan"


def test_forward_errors_do_not_stop_the_run(paths, read_db, capsys):
    def forward(events):
        raise RuntimeError("the UI is gone")

    outcome = run_job(Job(kind="rm", config={}, fn=counting_loop(3)), paths=paths, forward=forward)
    assert outcome.status == "completed"
    assert runs.get_run(read_db(), outcome.run_id).status == "completed"
    assert "forwarding run events failed" in capsys.readouterr().err


def test_cancel_from_another_thread(paths, read_db):
    control = RunControl()
    started = threading.Event()

    def fn(ctx):
        step = 0
        while True:
            ctx.control.check()
            step += 1
            ctx.sink(Metrics(step=step, values={"train/loss": 1.0}))
            if step == 3:
                started.set()
            if step > 1_000_000:
                raise AssertionError("cancel never arrived")

    box = {}
    job = Job(kind="rm", config={}, fn=fn)
    thread = threading.Thread(target=lambda: box.setdefault("o", run_job(job, paths=paths, control=control)))
    thread.start()
    assert started.wait(30)
    control.cancel()
    thread.join(30)
    outcome = box["o"]
    assert outcome.status == "cancelled" and outcome.step >= 3
    assert runs.get_run(read_db(), job.run_id).status == "cancelled"


def test_a_cancel_requested_in_the_database_stops_the_run(paths, read_db):
    """Another process (the lab's UI) asks through the database; the job's own RunControl is never touched."""
    from tuilab.store.run_requests import cancel_requested, request_cancel

    started = threading.Event()

    def fn(ctx):
        step = 0
        while True:
            ctx.control.check()
            step += 1
            ctx.sink(Metrics(step=step, values={"train/loss": 1.0}))
            if step == 3:
                started.set()
            if step % 2 == 0:
                ctx.sink(Checkpoint(step=step, path=str(ctx.output_dir), metrics={}))
            time.sleep(0.005)
            if step > 100_000:
                raise AssertionError("the requested cancel never arrived")

    box = {}
    job = Job(kind="ppo", config={}, fn=fn)
    thread = threading.Thread(target=lambda: box.setdefault("o", run_job(job, paths=paths, control=RunControl())))
    thread.start()
    assert started.wait(30)
    ui = read_db()  # the UI's own connection
    request_cancel(ui, job.run_id)
    asked = time.monotonic()
    thread.join(30)
    outcome = box["o"]
    assert outcome.status == "cancelled" and outcome.step >= 3
    assert time.monotonic() - asked < 5  # polled every 0.5 s between steps
    run = runs.get_run(ui, job.run_id)
    assert run.status == "cancelled" and run.finished_at
    assert runs.list_checkpoints(ui, job.run_id)  # what it saved is kept
    assert not cancel_requested(ui, job.run_id)  # handled: it cannot stop a resumed run


def test_an_old_cancel_request_does_not_stop_a_resumed_run(paths, read_db):
    from tuilab.store.run_requests import request_cancel

    job = Job(kind="ppo", config={}, fn=counting_loop(3, fail_at=2))
    assert run_job(job, paths=paths).status == "failed"
    request_cancel(read_db(), job.run_id)  # asked too late: the run had already ended
    again = Job(kind="ppo", config={}, fn=counting_loop(3), run_id=job.run_id)
    assert run_job(again, paths=paths).status == "completed"


def test_pause_marks_the_run_paused_until_resumed(paths, read_db):
    control = RunControl()
    reached = threading.Event()

    def fn(ctx):
        for step in range(1, 7):
            ctx.control.check()
            ctx.sink(Metrics(step=step, values={"train/loss": 1.0}))
            if step == 3:
                control.pause()  # the user pauses; the loop sees it at its next check
                reached.set()
        return {}

    box = {}
    job = Job(kind="rm", config={}, fn=fn)
    thread = threading.Thread(target=lambda: box.setdefault("o", run_job(job, paths=paths, control=control)))
    thread.start()
    assert reached.wait(30)
    db = read_db()
    status = None
    for _ in range(3000):  # wait for the runner to write "paused" (no timing is asserted)
        status = runs.get_run(db, job.run_id).status
        if status == "paused":
            break
        threading.Event().wait(0.01)
    assert status == "paused"
    # Everything reported before the pause is already on disk.
    assert len(runs.read_metrics(db, job.run_id)["train/loss"]) == 3
    control.resume()
    thread.join(30)
    assert box["o"].status == "completed"
    assert runs.get_run(db, job.run_id).status == "completed"


def test_keyboard_interrupt_cancels(paths, read_db):
    def fn(ctx):
        ctx.sink(Metrics(step=1, values={"train/loss": 1.0}))
        raise KeyboardInterrupt

    batches = []
    outcome = run_job(Job(kind="rm", config={}, fn=fn), paths=paths, forward=batches.append)
    assert outcome.status == "cancelled" and outcome.step == 1
    assert isinstance(batches[-1][-1], Cancelled)
    assert runs.get_run(read_db(), outcome.run_id).status == "cancelled"


def test_a_given_run_id_is_used(paths, read_db):
    job = Job(kind="ppo", config={}, fn=lambda ctx: {"ok": 1}, run_id="ppo-20261129-0712-beef", parents=("rm-x",))
    outcome = run_job(job, paths=paths)
    run = runs.get_run(read_db(), "ppo-20261129-0712-beef")
    assert outcome.ok and run.kind == "ppo" and run.parents == ["rm-x"]
    assert outcome.output_dir.name == "ppo-20261129-0712-beef"


def test_batched_flush_groups_events(paths):
    batches = []

    def fn(ctx):
        for step in range(1, 201):
            ctx.sink(Metrics(step=step, values={"train/loss": 0.5}))
        return {}

    run_job(Job(kind="rm", config={}, fn=fn), paths=paths, forward=batches.append)
    # 200 quick steps are not 200 forwards: they arrive in a few batches.
    assert len(batches) < 20
    assert sum(isinstance(e, Metrics) for b in batches for e in b) == 200


def test_rerunning_an_existing_run_resumes_its_row(paths, read_db):
    job = Job(kind="rm", config={}, fn=counting_loop(4, fail_at=3))
    assert run_job(job, paths=paths).status == "failed"
    again = Job(kind="rm", config={}, fn=counting_loop(4), run_id=job.run_id)
    outcome = run_job(again, paths=paths)
    db = read_db()
    run = runs.get_run(db, job.run_id)
    assert outcome.ok and run.status == "completed" and run.error == "" and run.error_summary == ""
    assert len(runs.list_runs(db)) == 1
    # Steps written by both attempts are upserted, not doubled.
    assert [s for s, _ in runs.read_metrics(db, job.run_id)["train/loss"]] == [1, 2, 3, 4]
