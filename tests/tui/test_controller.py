"""The App's training controller on its own: no App, no screen.

Everything it needs from the App is a callable, so here the "thread" is a list the test runs
itself, `post` collects the messages the App would receive, and the test hands them back as the
App does (`deliver`). The jobs are real: the tiny model trains a reward model in a real lab.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from runhelp import add_pairs, write_rm_run

from tuilab.config import LabPaths, RewardConfig
from tuilab.jobs.validate import InvalidConfig
from tuilab.store.runs import get_run
from tuilab.training.events import Cancelled, Failed, Metrics, RunWarning
from tuilab.tui.controller import JobBusy, TrainingController, build_job
from tuilab.tui.live import LiveRun
from tuilab.tui.messages import JobEnded, JobEvents


@dataclass
class Calls:
    """What the controller asked of its App."""

    posted: list = field(default_factory=list)
    threads: list = field(default_factory=list)
    notes: list[tuple[str, dict]] = field(default_factory=list)
    errors: list[tuple[str, str, str]] = field(default_factory=list)

    def notify(self, message: str, **kw: Any) -> None:
        self.notes.append((message, kw))

    def report_error(self, where: str, summary: str, detail: str) -> None:
        self.errors.append((where, summary, detail))


def make(home, db) -> tuple[TrainingController, Calls]:
    calls = Calls()
    ctl = TrainingController(LabPaths(home), lambda: db, post=calls.posted.append, thread=calls.threads.append,
                             notify=calls.notify, report_error=calls.report_error)
    return ctl, calls


def deliver(ctl: TrainingController, calls: Calls) -> list:
    """Hand the posted messages to the controller in order, as the App's handlers do; returns them."""
    posted, calls.posted[:] = list(calls.posted), []
    for message in posted:
        if isinstance(message, JobEvents):
            ctl.on_job_events(message)
        else:
            ctl.on_job_ended(message)
    return posted


def run_count(db) -> int:
    return db.execute("SELECT count(*) FROM runs").fetchone()[0]


@pytest.fixture
def tiny_rm(run_lab, tiny_model_dir, one_torch_thread):
    """A lab with 24 pairs and a one-epoch reward config on the tiny model."""
    home, db = run_lab
    add_pairs(db, 24)
    return home, db, RewardConfig(base_model=str(tiny_model_dir), epochs=1, batch_size=4, min_pairs=8)


# ---------------------------------------------------------------- refusals, before anything exists


def test_build_job_refuses_a_kind_it_does_not_know():
    with pytest.raises(ValueError, match="unknown job kind 'sft'"):
        build_job("sft", RewardConfig(), run_id="sft-1")


def test_a_config_that_cannot_run_is_refused_before_any_run_or_thread_exists(run_lab):
    home, db = run_lab
    add_pairs(db, 24)
    ctl, calls = make(home, db)
    with pytest.raises(InvalidConfig, match="base_model"):
        ctl.start("rm", RewardConfig(base_model=str(home / "missing-model")))
    assert ctl.runs == {} and ctl.active is None and ctl.last is None
    assert calls.threads == [] and calls.posted == [] and run_count(db) == 0


def test_pause_and_cancel_without_a_job_say_so_and_stop_is_harmless(run_lab):
    ctl, calls = make(*run_lab)
    with pytest.raises(JobBusy, match="no job is running"):
        ctl.pause()
    with pytest.raises(JobBusy, match="no job is running"):
        ctl.cancel()
    ctl.stop()  # the lab closing with nothing running
    assert ctl.control is None and calls.notes == [] and calls.errors == []


def test_resume_refuses_in_words_and_leaves_the_run_as_it_was(run_lab):
    home, db = run_lab
    rm = write_rm_run(db, status="cancelled")
    ctl, calls = make(home, db)
    with pytest.raises(ValueError, match=f"run {rm} is a rm run, not a PPO run"):
        ctl.resume(rm)
    with pytest.raises(ValueError, match="no run 'ppo-nope' in this lab"):
        ctl.resume("ppo-nope")
    assert get_run(db, rm).status == "cancelled" and ctl.active is None and calls.threads == []


# ---------------------------------------------------------------- a job, start to end


def test_start_pause_then_run_to_completion_in_the_thread_given(tiny_rm):
    home, db, cfg = tiny_rm
    ctl, calls = make(home, db)
    run_id = ctl.start("rm", cfg, name="first")
    # Returned at once: the job waits in the thread the App was asked for.
    assert run_id.startswith("rm-") and len(calls.threads) == 1 and calls.posted == []
    live = ctl.runs[run_id]
    assert (live.status, live.kind, live.name, live.config["epochs"]) == ("running", "rm", "first", 1)
    assert ctl.active == ctl.last == ctl.thread_run == run_id and ctl.active_run is live
    assert ctl.inspect_run is None  # a reward model has no samples to inspect
    with pytest.raises(JobBusy, match=f"{run_id} is still running; cancel it"):
        ctl.start("rm", cfg)
    assert ctl.pause() is True and live.status == "paused" and ctl.control.paused
    assert ctl.pause() is False and live.status == "running" and not ctl.control.paused
    assert calls.threads[0]() == "completed"  # the training thread's whole life, here
    posted = deliver(ctl, calls)
    assert isinstance(posted[-1], JobEnded) and posted[-1].status == "completed"
    assert all(isinstance(m, JobEvents) for m in posted[:-1]) and live.values("train/loss")
    assert live.status == "completed" and live.final_metrics
    assert ctl.active is None and ctl.control is None and ctl.thread_run is None
    assert (f"{run_id} completed", {"title": "Training"}) in calls.notes and calls.errors == []
    assert get_run(db, run_id).status == "completed"
    assert ctl.live_run(run_id) is live  # a finished run is not re-read unless asked


def test_cancel_ends_the_run_cancelled_and_the_next_start_waits_for_the_thread(tiny_rm):
    home, db, cfg = tiny_rm
    ctl, calls = make(home, db)
    run_id = ctl.start("rm", cfg)
    assert ctl.cancel() == run_id and ctl.runs[run_id].pending_action == "cancelling"
    with pytest.raises(JobBusy, match=f"{run_id} is still running"):  # until the loop has seen the flag
        ctl.start("rm", cfg)
    assert calls.threads[0]() == "cancelled"
    ended = calls.posted.pop()  # the loop's events first; the thread's end arrives later
    deliver(ctl, calls)
    assert ctl.runs[run_id].status == "cancelled" and ctl.active is None
    with pytest.raises(JobBusy, match=f"{run_id} is still shutting down"):
        ctl.start("rm", cfg)
    calls.posted.append(ended)
    deliver(ctl, calls)
    assert ctl.thread_run is None and (f"{run_id} cancelled", {"title": "Training"}) in calls.notes
    assert get_run(db, run_id).status == "cancelled" and calls.errors == []


def test_a_model_that_fails_to_load_is_a_failed_run_reported_once(run_lab, one_torch_thread):
    home, db = run_lab
    add_pairs(db, 24)
    broken = home / "broken-model"  # passes the start checks (config.json), fails to load
    broken.mkdir(parents=True)
    (broken / "config.json").write_text('{"model_type": "llama"}')
    ctl, calls = make(home, db)
    run_id = ctl.start("rm", RewardConfig(base_model=str(broken), epochs=1, min_pairs=8))
    assert calls.threads[0]() == "failed"
    deliver(ctl, calls)
    live = ctl.runs[run_id]
    assert live.status == "failed" and live.error_summary and ctl.active is None
    assert calls.errors == [(f"Training run {run_id}", live.error_summary, live.error)]
    assert get_run(db, run_id).status == "failed"


def test_a_job_that_cannot_be_built_is_still_a_failed_run_with_its_reason(run_lab):
    ctl, calls = make(*run_lab)
    run_id = ctl.start("sft", RewardConfig())  # no start checks for a kind they do not know; the builder refuses
    assert calls.threads[0]() == "failed"
    events, ended = calls.posted
    assert isinstance(events.events[0], Failed) and (ended.run_id, ended.status) == (run_id, "failed")
    deliver(ctl, calls)
    assert ctl.runs[run_id].status == "failed" and ctl.active is None and ctl.thread_run is None
    assert len(calls.errors) == 1 and calls.errors[0][1] == "ValueError: unknown job kind 'sft'"
    assert "Traceback" in calls.errors[0][2]


# ---------------------------------------------------------------- messages for runs it did not start


def test_events_of_a_run_not_started_here_make_its_live_run_and_warnings_are_notified(run_lab):
    ctl, calls = make(*run_lab)
    ctl.on_job_events(JobEvents("ppo-x", [Metrics(1, {"objective/kl": 0.1}, total_steps=10),
                                          RunWarning(1, "length_bias", "Reward tracks length.")]))
    live = ctl.runs["ppo-x"]
    assert live.values("objective/kl") == [(1, 0.1)] and live.total_steps == 10
    assert calls.notes == [("Reward tracks length.", {"title": "ppo-x: length bias", "severity": "warning",
                                                       "timeout": 12})]
    ctl.on_job_events(JobEvents("ppo-x", [Cancelled(1)]))
    assert live.status == "cancelled" and calls.errors == []


def test_an_end_without_its_final_batch_is_read_from_the_database(run_lab):
    home, db = run_lab
    failed = write_rm_run(db, "rm-20261129-0650-bad0", status="failed")
    ctl, calls = make(home, db)
    ctl.runs[failed] = live = LiveRun(run_id=failed, status="running", pending_action="cancelling")
    ctl.active = ctl.thread_run = failed
    ctl.on_job_ended(JobEnded(failed, "failed", "forwarding broke"))
    assert live.status == "failed" and live.error_summary == "ModelNotFound: no model 'nope'"
    assert live.pending_action == "" and ctl.active is None and ctl.thread_run is None
    assert calls.errors == [(f"Training run {failed}", "ModelNotFound: no model 'nope'", live.error)]
    # No row at all (the thread died before the runner wrote one): the message is all there is.
    ctl.runs["rm-gone"] = gone = LiveRun(run_id="rm-gone", status="running")
    ctl.on_job_ended(JobEnded("rm-gone", "failed", "OSError: disk full"))
    assert (gone.status, gone.error_summary) == ("failed", "OSError: disk full")
    assert calls.errors[-1][:2] == ("Training run rm-gone", "OSError: disk full")


def test_live_run_reads_the_database_once_and_again_when_asked(run_lab):
    home, db = run_lab
    rm = write_rm_run(db)
    ctl, _ = make(home, db)
    live = ctl.live_run(rm)
    assert (live.status, live.kind, live.final_metrics["eval/accuracy"]) == ("completed", "rm", 0.82)
    assert live.values("train/loss") and ctl.live_run(rm) is live
    fresh = ctl.live_run(rm, reload=True)
    assert fresh is not live and ctl.runs[rm] is fresh
    ctl.active = rm  # the job thread's run is fed by its events, never replaced by a re-read
    assert ctl.live_run(rm, reload=True) is fresh
    with pytest.raises(KeyError, match="no run 'rm-nope' in this lab"):
        ctl.live_run("rm-nope")
