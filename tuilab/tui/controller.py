"""The App's side of training: one job thread at a time, its controls, and the runs' live state.

`TrainingHost` is a mixin for the App (`class TuilabApp(TrainingHost, App)`).
Jobs are started here, not by a screen, because a worker dies with the node
that started it (a Textual worker belongs to its DOM node). The thread runs `run_job`, which persists every
batch and then forwards it; `forward` posts one `JobEvents` per batch
(non-blocking). The App folds the batch into that run's `LiveRun`; screens
redraw from it on their own timers, so a slow screen never slows training.

The mixin needs `self.paths` (a `LabPaths`) and `self.db` (the UI thread's
connection) from the App.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from textual import work

from tuilab.jobs.runner import error_summary
from tuilab.training.events import Failed, RunControl, RunWarning
from tuilab.tui.training.live import FINAL, LiveRun
from tuilab.tui.training.messages import JobEnded, JobEvents


class JobBusy(RuntimeError):
    """A job is already running: one training thread at a time (they share the CPU/GPU)."""


@dataclass
class TrainingState:
    runs: dict[str, LiveRun] = field(default_factory=dict)
    active: str | None = None  # run id of the job thread's run
    control: RunControl | None = None
    last: str | None = None  # the run most recently started here
    inspect_run: str | None = None  # the run the inspector shows
    runs_focus: str | None = None  # the run the runs screen should open next time it is shown
    thread_run: str | None = None  # set while the job thread runs, until its JobEnded arrives


def build_job(kind: str, config: Any, *, run_id: str, name: str = "") -> Any:
    """The `Job` for a config (runs in the job thread: job modules may import torch)."""
    if kind == "rm":
        from tuilab.jobs.rm_job import reward_job

        return reward_job(config, name=name or None, run_id=run_id)
    if kind == "ppo":
        from tuilab.jobs import ppo_job

        return ppo_job.ppo_job(config, name=name or None, run_id=run_id)
    raise ValueError(f"unknown job kind {kind!r}")


class TrainingHost:
    """Mixin: start / pause / cancel the training job, and keep `LiveRun`s for the screens."""

    # ------------------------------------------------------------ state

    @property
    def training(self) -> TrainingState:
        state = self.__dict__.get("_training_state")
        if state is None:
            state = self.__dict__["_training_state"] = TrainingState()
        return state

    def live_run(self, run_id: str, *, reload: bool = False) -> LiveRun:
        """The run's live state; read from the database the first time (or when asked to)."""
        state = self.training
        live = state.runs.get(run_id)
        if live is None or (reload and run_id != state.active):
            live = LiveRun.from_db(self.db, run_id)  # type: ignore[attr-defined]
            state.runs[run_id] = live
        return live

    @property
    def active_run(self) -> LiveRun | None:
        state = self.training
        return state.runs.get(state.active) if state.active else None

    # ------------------------------------------------------------ control

    def start_training(self, kind: str, config: Any, *, name: str = "") -> str:
        """Start `config` as a `kind` job in the training thread; returns the run id at once."""
        from tuilab.store.runs import new_run_id

        state = self.training
        self._check_idle()
        run_id = new_run_id(kind)
        while run_id in state.runs:
            run_id = new_run_id(kind)
        from tuilab.config import to_dict

        live = LiveRun(run_id=run_id, kind=kind, status="pending", name=name or getattr(config, "name", ""),
                       config=to_dict(config))
        live.mark_started()
        state.runs[run_id] = live
        state.active = state.last = run_id
        if kind == "ppo":
            state.inspect_run = run_id
        state.control = RunControl()
        state.thread_run = run_id
        self._training_thread(kind, config, run_id, name, state.control)
        return run_id

    def resume_training(self, run_id: str) -> str:
        """Continue a cancelled or failed PPO run from its newest checkpoint, in the same run row.

        The job is built here (no torch needed), so a run that cannot resume is
        refused in words (`ValueError`) and stays as it was.
        """
        from tuilab.jobs.ppo_job import PPOJobError, resume_ppo_job

        state = self.training
        self._check_idle()
        try:
            job = resume_ppo_job(self.db, run_id)  # type: ignore[attr-defined]
        except PPOJobError as exc:
            raise ValueError(str(exc)) from None
        live = self.live_run(run_id, reload=True)
        live.error_summary = live.error = ""
        live.final_metrics = {}
        live.mark_started(step=live.step or 0)
        state.active = state.last = state.inspect_run = run_id
        state.control = RunControl()
        state.thread_run = run_id
        self._training_thread(live.kind, job.config, run_id, live.name, state.control, job)
        return run_id

    def _check_idle(self) -> None:
        state = self.training
        if state.thread_run is not None and state.thread_run != state.active:
            raise JobBusy(f"{state.thread_run} is still shutting down; try again in a moment")
        if state.active is not None:
            live = state.runs.get(state.active)
            if live is not None and live.is_active:
                raise JobBusy(f"{state.active} is still {live.status}; cancel it (x) before starting another")

    def pause_training(self) -> bool:
        """Pause (True) or resume (False) the active job; the loop stops at its next step."""
        state, live = self.training, self.active_run
        if state.control is None or live is None or not live.is_active:
            raise JobBusy("no job is running")
        if state.control.paused:
            state.control.resume()
            live.status, live.pending_action = "running", ""
            live.touch()
            return False
        state.control.pause()
        live.status, live.pending_action = "paused", ""
        live.touch()
        return True

    def cancel_training(self) -> str:
        """Ask the active job to stop; its run ends "cancelled" once the loop sees the flag."""
        state, live = self.training, self.active_run
        if state.control is None or live is None or not live.is_active:
            raise JobBusy("no job is running")
        state.control.cancel()
        live.pending_action = "cancelling"
        live.touch()
        return live.run_id

    # ------------------------------------------------------------ the thread

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="training")
    def _training_thread(self, kind: str, config: Any, run_id: str, name: str, control: RunControl,
                         job: Any = None) -> str:
        """Run one job to its end. The runner records every outcome; this only covers what comes before it."""
        post = self.post_message  # type: ignore[attr-defined]

        def forward(events: list) -> None:
            post(JobEvents(run_id, events))

        try:
            from tuilab.jobs.runner import run_job

            if job is None:
                job = build_job(kind, config, run_id=run_id, name=name)
            outcome = run_job(job, paths=self.paths, control=control, forward=forward)  # type: ignore[attr-defined]
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
            db = open_db(self.paths.db)  # type: ignore[attr-defined]
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

    # ------------------------------------------------------------ messages

    def on_job_events(self, message: JobEvents) -> None:
        state = self.training
        live = state.runs.get(message.run_id)
        if live is None:
            live = state.runs[message.run_id] = LiveRun(run_id=message.run_id)
        before = live.status
        live.apply(message.events)
        for ev in message.events:
            if isinstance(ev, RunWarning):
                self.notify(ev.message, title=f"{message.run_id}: {ev.code.replace('_', ' ')}",  # type: ignore[attr-defined]
                            severity="warning", timeout=12)
        if live.status == "failed" and before != "failed":
            self._report_run_failure(live)
        if live.status in FINAL and state.active == message.run_id:
            state.active = None
            state.control = None

    def on_job_ended(self, message: JobEnded) -> None:
        state = self.training
        if state.thread_run == message.run_id:
            state.thread_run = None
        live = state.runs.get(message.run_id)
        # The runner's final batch normally got here first; if forwarding failed, read the row.
        if live is not None and live.is_active:
            try:
                fresh = LiveRun.from_db(self.db, message.run_id)  # type: ignore[attr-defined]
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
        if state.active == message.run_id:
            state.active = None
            state.control = None
        if message.status == "completed":
            self.notify(f"{message.run_id} completed", title="Training")  # type: ignore[attr-defined]
        elif message.status == "cancelled":
            self.notify(f"{message.run_id} cancelled", title="Training")  # type: ignore[attr-defined]

    def _report_run_failure(self, live: LiveRun) -> None:
        report = getattr(self, "report_error", None)
        where = f"Training run {live.run_id}"
        if callable(report):
            report(where, live.error_summary or "failed", live.error)
        else:
            self.notify(live.error_summary or "failed", title=where, severity="error", timeout=10)  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        """Closing the lab stops the job at its next step (the run ends cancelled, with a checkpoint)."""
        control = self.training.control
        if control is not None:
            control.cancel()

    # ------------------------------------------------------------ navigation

    def open_inspector(self, run_id: str | None = None) -> None:
        """Show the PPO inspector on `run_id` (default: the live or latest PPO run)."""
        if run_id is not None:
            self.training.inspect_run = run_id
        self.switch_mode("inspect")  # type: ignore[attr-defined]

    def open_run(self, run_id: str) -> None:
        """Show one run (its curves, metrics, error) on the runs screen."""
        self.training.runs_focus = run_id
        self.switch_mode("runs")  # type: ignore[attr-defined]
