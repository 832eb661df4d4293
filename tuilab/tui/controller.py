"""The App's side of training: one job thread at a time, its controls, and the runs' live state.

The App owns one `TrainingController` (composition: `app.training`). Jobs are
started through it, not by a screen, because a Textual worker belongs to the
node that started it and dies with it: the controller asks the App for the
thread. The thread runs `run_job`, which persists every batch and then
forwards it; `forward` posts one `JobEvents` per batch (non-blocking). The
App hands those messages to `on_job_events` / `on_job_ended`, which fold them
into the runs' `LiveRun`s; screens redraw from them on their own timers, so a
slow screen never slows training.

Everything the controller needs from the App is passed in as a typed callable,
so it runs (and is tested) without a screen.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from textual.message import Message

from tuilab.config import LabPaths
from tuilab.jobs.runner import error_summary
from tuilab.training.events import Failed, RunControl, RunWarning
from tuilab.tui.live import FINAL, POLICY_KINDS, LiveRun
from tuilab.tui.messages import JobEnded, JobEvents


class JobBusy(RuntimeError):
    """A job is already running: one training thread at a time (they share the CPU/GPU)."""


def build_job(kind: str, config: Any, *, run_id: str, name: str = "") -> Any:
    """The `Job` for a config (runs in the job thread: job modules may import torch)."""
    if kind == "rm":
        from tuilab.jobs.rm_job import reward_job

        return reward_job(config, name=name or None, run_id=run_id)
    if kind == "ppo":
        from tuilab.jobs import ppo_job

        return ppo_job.ppo_job(config, name=name or None, run_id=run_id)
    if kind == "dpo":
        from tuilab.jobs.dpo_job import dpo_job

        return dpo_job(config, name=name or None, run_id=run_id)
    raise ValueError(f"unknown job kind {kind!r}")


# thread(fn): run `fn()` in the App's training thread (Textual: `run_worker(fn, thread=True, ...)`).
RunInThread = Callable[[Callable[[], str]], Any]


class TrainingController:
    """Start / pause / cancel the training job, and keep the runs' `LiveRun`s for the screens."""

    def __init__(
        self,
        paths: LabPaths,
        db: Callable[[], Any],
        *,
        post: Callable[[Message], Any],
        thread: RunInThread,
        notify: Callable[..., Any],
        report_error: Callable[[str, str, str], Any],
    ) -> None:
        self.paths = paths
        self._db = db  # the UI thread's connection (workers open their own)
        self._post = post  # thread-safe, non-blocking (App.post_message)
        self._thread = thread
        self._notify = notify
        self._report_error = report_error
        self.runs: dict[str, LiveRun] = {}
        self.active: str | None = None  # run id of the job thread's run
        self.control: RunControl | None = None
        self.last: str | None = None  # the run most recently started here
        self.inspect_run: str | None = None  # the run the inspector shows
        self.runs_focus: str | None = None  # the run the runs screen should open next time it is shown
        self.thread_run: str | None = None  # set while the job thread runs, until its JobEnded arrives

    # ------------------------------------------------------------ state

    def live_run(self, run_id: str, *, reload: bool = False) -> LiveRun:
        """The run's live state; read from the database the first time (or when asked to)."""
        live = self.runs.get(run_id)
        if live is None or (reload and run_id != self.active):
            live = LiveRun.from_db(self._db(), run_id)
            self.runs[run_id] = live
        return live

    @property
    def active_run(self) -> LiveRun | None:
        return self.runs.get(self.active) if self.active else None

    # ------------------------------------------------------------ control

    def start(self, kind: str, config: Any, *, name: str = "") -> str:
        """Start `config` as a `kind` job in the training thread; returns the run id at once."""
        from tuilab.config import to_dict
        from tuilab.jobs.validate import validate_job
        from tuilab.store.runs import new_run_id

        self._check_idle()
        # The whole config, before a run id, row or folder exists (InvalidConfig is a ValueError).
        validate_job(kind, config, db=self._db(), paths=self.paths)
        run_id = new_run_id(kind)
        while run_id in self.runs:
            run_id = new_run_id(kind)
        live = LiveRun(run_id=run_id, kind=kind, status="pending", name=name or getattr(config, "name", ""),
                       config=to_dict(config))
        live.mark_started()
        self.runs[run_id] = live
        self.active = self.last = run_id
        if kind in POLICY_KINDS:
            self.inspect_run = run_id
        self._launch(kind, config, run_id, name)
        return run_id

    def resume(self, run_id: str) -> str:
        """Continue a cancelled or failed PPO or DPO run from its newest checkpoint, in the same run row.

        The job is built here (no torch needed), so a run that cannot resume is
        refused in words (`ValueError`) and stays as it was.
        """
        from tuilab.jobs.dpo_job import DPOJobError, resume_dpo_job
        from tuilab.jobs.ppo_job import PPOJobError, resume_ppo_job
        from tuilab.jobs.validate import validate_job
        from tuilab.store.runs import RunNotFound, get_run

        self._check_idle()
        try:
            kind = get_run(self._db(), run_id).kind
        except RunNotFound:
            kind = "ppo"  # resume_ppo_job says there is no such run, in words
        try:
            job = resume_dpo_job(self._db(), run_id) if kind == "dpo" else resume_ppo_job(self._db(), run_id)
        except (PPOJobError, DPOJobError) as exc:
            raise ValueError(str(exc)) from None
        validate_job(kind, job.config, db=self._db(), paths=self.paths)
        live = self.live_run(run_id, reload=True)
        live.error_summary = live.error = ""
        live.final_metrics = {}
        live.mark_started(step=live.step or 0)
        self.active = self.last = self.inspect_run = run_id
        self._launch(live.kind, job.config, run_id, live.name, job)
        return run_id

    def _check_idle(self) -> None:
        if self.thread_run is not None and self.thread_run != self.active:
            raise JobBusy(f"{self.thread_run} is still shutting down; try again in a moment")
        if self.active is not None:
            live = self.runs.get(self.active)
            if live is not None and live.is_active:
                raise JobBusy(f"{self.active} is still {live.status}; cancel it (x) before starting another")

    def pause(self) -> bool:
        """Pause (True) or resume (False) the active job; the loop stops at its next step."""
        live = self.active_run
        if self.control is None or live is None or not live.is_active:
            raise JobBusy("no job is running")
        if self.control.paused:
            self.control.resume()
            live.status, live.pending_action = "running", ""
            live.touch()
            return False
        self.control.pause()
        live.status, live.pending_action = "paused", ""
        live.touch()
        return True

    def cancel(self) -> str:
        """Ask the active job to stop; its run ends "cancelled" once the loop sees the flag."""
        live = self.active_run
        if self.control is None or live is None or not live.is_active:
            raise JobBusy("no job is running")
        self.control.cancel()
        live.pending_action = "cancelling"
        live.touch()
        return live.run_id

    def stop(self) -> None:
        """The lab is closing: the job stops at its next step (the run ends cancelled, with a checkpoint)."""
        if self.control is not None:
            self.control.cancel()

    # ------------------------------------------------------------ the thread

    def _launch(self, kind: str, config: Any, run_id: str, name: str, job: Any = None) -> None:
        control = self.control = RunControl()
        self.thread_run = run_id
        self._thread(lambda: self._run(kind, config, run_id, name, control, job))

    def _run(self, kind: str, config: Any, run_id: str, name: str, control: RunControl, job: Any) -> str:
        """Run one job to its end (in the training thread). The runner records every outcome; this
        only covers what comes before it."""
        post = self._post

        def forward(events: list) -> None:
            post(JobEvents(run_id, events))

        try:
            from tuilab.jobs.runner import run_job

            if job is None:
                job = build_job(kind, config, run_id=run_id, name=name)
            outcome = run_job(job, paths=self.paths, control=control, forward=forward)
        except Exception as exc:  # noqa: BLE001 - building the job failed: still a failed run, still shown
            summary = error_summary(exc)
            error = "".join(traceback.format_exception(exc))
            self._record_failure(kind, config, run_id, name, summary, error)
            post(JobEvents(run_id, [Failed(summary=summary, error=error)]))
            post(JobEnded(run_id, "failed", summary))
            return "failed"
        post(JobEnded(run_id, outcome.status, outcome.error_summary))
        return outcome.status

    def _record_failure(self, kind: str, config: Any, run_id: str, name: str, summary: str, error: str) -> None:
        """The job never reached the runner: write the failed run row ourselves (own connection)."""
        from tuilab.config import to_dict
        from tuilab.store import runs as runs_store
        from tuilab.store.db import open_db

        try:
            db = open_db(self.paths.db)
        except Exception:  # noqa: BLE001 - nothing more to do; the screen still shows the error
            return
        try:
            try:
                runs_store.get_run(db, run_id)
            except runs_store.RunNotFound:
                runs_store.create_run(db, kind, to_dict(config), name=name, run_id=run_id)
            runs_store.set_run_status(db, run_id, "failed", error=error, error_summary=summary)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        finally:
            db.conn.close()

    # ------------------------------------------------------------ messages (the App forwards them here)

    def on_job_events(self, message: JobEvents) -> None:
        live = self.runs.get(message.run_id)
        if live is None:
            live = self.runs[message.run_id] = LiveRun(run_id=message.run_id)
        before = live.status
        live.apply(message.events)
        for ev in message.events:
            if isinstance(ev, RunWarning):
                self._notify(ev.message, title=f"{message.run_id}: {ev.code.replace('_', ' ')}",
                             severity="warning", timeout=12)
        if live.status == "failed" and before != "failed":
            self._report_run_failure(live)
        if live.status in FINAL and self.active == message.run_id:
            self.active = None
            self.control = None

    def on_job_ended(self, message: JobEnded) -> None:
        if self.thread_run == message.run_id:
            self.thread_run = None
        live = self.runs.get(message.run_id)
        # The runner's final batch normally got here first; if forwarding failed, read the row.
        if live is not None and live.is_active:
            try:
                fresh = LiveRun.from_db(self._db(), message.run_id)
            except Exception:  # noqa: BLE001
                fresh = None
            if fresh is not None:
                live.status = fresh.status
                live.error_summary = fresh.error_summary or message.summary
                live.error = fresh.error
                live.final_metrics = fresh.final_metrics
            else:
                live.status = message.status
                live.error_summary = message.summary
            live.pending_action = ""
            live.touch()
            if live.status == "failed":
                self._report_run_failure(live)
        if self.active == message.run_id:
            self.active = None
            self.control = None
        if message.status == "completed":
            self._notify(f"{message.run_id} completed", title="Training")
        elif message.status == "cancelled":
            self._notify(f"{message.run_id} cancelled", title="Training")

    def _report_run_failure(self, live: LiveRun) -> None:
        self._report_error(f"Training run {live.run_id}", live.error_summary or "failed", live.error)
