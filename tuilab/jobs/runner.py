"""Run one job synchronously in the calling thread: a run row, batched persistence, forwarded events.

The App calls `run_job` inside its `@work(thread=True)` worker; the CLI calls it
in its main thread. Either way the loop's events are collected and flushed
about four times a second: one SQLite transaction (metrics, checkpoints,
samples, status) on this thread's own connection, then one `forward(batch)`
call (the App passes `lambda evs: self.post_message(...)`). Every exception
inside the loop ends the run as failed with the reason on the run row; nothing
is re-raised into the UI.

Under a launcher (`torchrun`/`accelerate launch`, `WORLD_SIZE` > 1) every
process calls `run_job` with the same job: the main process (rank 0) chooses
the run id, creates the run row, writes the database and the run folder as
above; the others take its run id, read the database (pairs, prompts,
checkpoints) but never write it, and send their events nowhere: the loops
gather every rank's rows and statistics onto the main process's events.

Two exceptions, both about ending a run. A run trained in another process
than the lab's UI (a `tuilab sweep` trial, a terminal job) is cancelled by a
request the UI leaves in the database (`store/run_requests.py`); the runner
looks for it between updates. And a rank other than 0 that fails writes its
error on the run row itself (only while the run is still active), then exits:
the launcher then stops the main process, so a rank's failure ends the run
"failed" with that rank named, whether or not the main process gets to write.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from tuilab.config import LabPaths, to_dict
from tuilab.store import runs as runs_store
from tuilab.store.db import open_db, transaction
from tuilab.store.run_requests import cancel_requested, clear_cancel
from tuilab.training import events
from tuilab.training.distributed import collective_failure, launched_processes

CANCEL_POLL_SECONDS = 0.5  # how often a loop looks for a cancel asked by another process (one keyed read)
ACTIVE = ("pending", "running", "paused")


class LauncherStopped(Exception):
    """The launcher sent SIGTERM: torchrun / accelerate stop every rank once one of them has ended."""


@dataclass
class JobContext:
    """What a job's loop gets: where to write, how to report, when to stop."""

    run_id: str
    output_dir: Path
    paths: LabPaths
    db: sqlite_utils.Database  # the runner's connection: use it from this thread only
    sink: events.Sink
    control: events.RunControl


@dataclass
class Job:
    """A kind, a config, and the function that runs the loop.

    `fn(ctx)` returns the final metrics (a JSON-able dict). The run id is fixed
    at construction so the App can show and link it before the job starts.
    """

    kind: str
    config: Any
    fn: Callable[[JobContext], dict[str, Any] | None]
    name: str = ""
    parents: tuple[str, ...] = ()
    run_id: str = ""

    def __post_init__(self) -> None:
        if not self.run_id:
            self.run_id = runs_store.new_run_id(self.kind)


@dataclass
class RunOutcome:
    run_id: str
    status: str  # completed | failed | cancelled
    output_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    error_summary: str = ""
    error: str = ""
    step: int | None = None
    warnings: list[events.RunWarning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "completed"


class _WatchedControl(events.RunControl):
    """The caller's RunControl, plus two hooks: a loop that blocks on pause gets its run marked paused,
    and a cancel requested in the database (by the UI of another process) cancels it like its own."""

    def __init__(self, inner: events.RunControl, on_pause: Callable[[], None], on_resume: Callable[[], None],
                 requested: Callable[[], bool] | None = None) -> None:
        super().__init__(shares=inner)  # pause, resume, cancel and their state are the caller's
        self._inner = inner
        self._on_pause = on_pause
        self._on_resume = on_resume
        self._requested = requested
        self._polled = float("-inf")

    def _poll(self) -> None:
        if self._requested is None or self._inner.cancelled:
            return
        now = time.monotonic()
        if now - self._polled >= CANCEL_POLL_SECONDS:
            self._polled = now
            if self._requested():
                self._inner.cancel()

    def check(self) -> None:
        self._poll()
        if self._inner.paused and not self._inner.cancelled:
            self._on_pause()
            try:
                self._inner.check()
            finally:
                if not self._inner.cancelled:
                    self._on_resume()
        self._inner.check()


class _Recorder:
    """Collects events on the job's thread and flushes them in batches."""

    def __init__(self, db: sqlite_utils.Database, run_id: str, forward: Callable[[list[events.Event]], None] | None):
        self.db = db
        self.run_id = run_id
        self.forward = forward
        self.buffer: list[events.Event] = []
        self.total_steps: int | None = None
        self.last_step: int | None = None
        self.finished: events.Finished | None = None
        self.warnings: list[events.RunWarning] = []
        self.last_flush = time.monotonic()
        self.forward_failed = False

    def __call__(self, event: events.Event) -> None:
        self.buffer.append(event)
        if isinstance(event, events.Metrics):
            self.last_step = event.step
            if event.total_steps is not None and event.total_steps != self.total_steps:
                self.total_steps = event.total_steps
        elif isinstance(event, (events.Checkpoint, events.Samples)):
            self.last_step = event.step
        elif isinstance(event, events.RunWarning):
            self.warnings.append(event)
        elif isinstance(event, events.Finished):
            self.finished = event
        if time.monotonic() - self.last_flush >= events.FLUSH_SECONDS:
            self.flush()

    def flush(self, *, status: str | None = None, **status_fields: Any) -> None:
        """One transaction for everything buffered (and a status change), then one forward call."""
        batch, self.buffer = self.buffer, []
        self.last_flush = time.monotonic()
        metrics = [(e.step, name, value) for e in batch if isinstance(e, events.Metrics) for name, value in e.values.items()]
        with transaction(self.db):
            runs_store.write_metrics(self.db, self.run_id, metrics)
            for e in batch:
                if isinstance(e, events.Checkpoint):
                    runs_store.add_checkpoint(self.db, self.run_id, e.step, e.path, e.metrics)
                elif isinstance(e, events.Samples) and e.rows:
                    from tuilab.store.samples import write_samples

                    write_samples(self.db, self.run_id, e.step, e.rows)
            if self.total_steps is not None:
                runs_store.update_run(self.db, self.run_id, total_steps=self.total_steps)
            if status:
                runs_store.set_run_status(self.db, self.run_id, status, **status_fields)
        if batch and self.forward is not None and not self.forward_failed:
            try:
                self.forward(batch)
            except Exception:  # a closed UI must not kill the training
                self.forward_failed = True
                print("tuilab: forwarding run events failed; persisting only:", file=sys.stderr)
                traceback.print_exc(file=sys.stderr)


def error_summary(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[-1] if text else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def run_job(
    job: Job,
    *,
    paths: LabPaths,
    control: events.RunControl | None = None,
    forward: Callable[[list[events.Event]], None] | None = None,
) -> RunOutcome:
    """Run `job` to the end in this thread; never raises for what happens inside the loop.

    The run row goes pending → running (↔ paused) → completed / failed /
    cancelled. The last forwarded batch ends with `Finished`, `Failed` or
    `Cancelled`.
    """
    control = control or events.RunControl()
    dist = None
    if launched_processes() > 1:
        from tuilab.training.distributed import current

        dist = current()
        job.run_id = dist.broadcast(job.run_id)  # one run, named by the main process
        if not dist.is_main:
            return _follow(job, paths, dist)
    db = open_db(paths.db)
    run_id = job.run_id
    output_dir = paths.runs / run_id
    config = to_dict(job.config) if is_dataclass(job.config) else dict(job.config or {})
    try:
        existing = _get_or_none(db, run_id)
        if existing is None:
            runs_store.create_run(
                db, job.kind, config, name=job.name, parents=job.parents, output_dir=str(output_dir), run_id=run_id
            )
        runs_store.set_run_status(db, run_id, "running")
        clear_cancel(db, run_id)  # a request left from an earlier attempt must not stop this one
        output_dir.mkdir(parents=True, exist_ok=True)
        if dist is not None:
            dist.barrier()  # the run row and folder exist: the other ranks may open the database
        recorder = _Recorder(db, run_id, forward)

        def on_pause() -> None:
            recorder.flush(status="paused")

        def on_resume() -> None:
            recorder.flush(status="running")

        ctx = JobContext(
            run_id=run_id,
            output_dir=output_dir,
            paths=paths,
            db=db,
            sink=recorder,
            control=_WatchedControl(control, on_pause, on_resume, lambda: cancel_requested(db, run_id)),
        )
        with _sigterm_fails_the_run(dist):
            return _drive(job, ctx, recorder, output_dir, dist)
    finally:
        db.conn.close()


def _follow(job: Job, paths: LabPaths, dist: Any) -> RunOutcome:
    """A rank other than the main one: the same loop, reading the lab but writing nothing, events dropped."""
    dist.barrier()  # wait for the main process's run row (and a database it may have just created)
    db = open_db(paths.db)
    output_dir = paths.runs / job.run_id
    ctx = JobContext(run_id=job.run_id, output_dir=output_dir, paths=paths, db=db,
                     sink=lambda event: None, control=events.RunControl())
    try:
        result = job.fn(ctx)
        dist.barrier()  # the main process records "completed" only after every rank got here
    except (events.CancelledRun, KeyboardInterrupt):
        return RunOutcome(job.run_id, "cancelled", output_dir)
    except Exception as exc:
        error = "".join(traceback.format_exception(exc))
        summary = rank_summary(exc, dist)
        print(f"tuilab: {summary}\n{error}", file=sys.stderr)
        _record_follower_failure(db, job.run_id, summary, error)
        return RunOutcome(job.run_id, "failed", output_dir, error_summary=summary, error=error,
                          step=getattr(exc, "step", None))
    finally:
        db.conn.close()
    return RunOutcome(job.run_id, "completed", output_dir, metrics=dict(result or {}))


def rank_summary(exc: BaseException, dist: Any) -> str:
    """One line naming the rank: what it raised, or, for a broken collective, that it lost another rank."""
    where = f"rank {dist.rank} of {dist.size}"
    if collective_failure(exc):
        return f"{where} lost contact with another rank (it ended or stopped answering): {error_summary(exc)}"
    return f"{where} failed: {error_summary(exc)}"


def _record_follower_failure(db: sqlite_utils.Database, run_id: str, summary: str, error: str) -> None:
    """The one write a rank other than 0 makes: its failure, on a run still active.

    The launcher stops the main process as soon as this rank exits, so the
    main process may never write again. A run the main process has already
    ended keeps its own record (its failure is what this rank then sees as a
    broken collective).
    """
    try:
        with transaction(db):
            if runs_store.get_run(db, run_id).status in ACTIVE:
                runs_store.set_run_status(db, run_id, "failed", error=error, error_summary=summary)
    except Exception:  # noqa: BLE001 - the rank still exits non-zero; the launcher reports it
        traceback.print_exc(file=sys.stderr)


@contextlib.contextmanager
def _sigterm_fails_the_run(dist: Any):
    """Under a launcher, SIGTERM on the main process raises `LauncherStopped`, so the run is recorded
    "failed" instead of left "running" when another rank ends (torchrun then stops every rank)."""
    if dist is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame) -> None:
        _hold_sigterm()  # once: recording the failure must not be interrupted in turn
        raise LauncherStopped("the launcher stopped the main process (SIGTERM): another rank ended")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _hold_sigterm() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the launcher kills (SIGKILL) after its grace period


def _drive(job: Job, ctx: JobContext, recorder: _Recorder, output_dir: Path, dist: Any = None) -> RunOutcome:
    run_id = ctx.run_id
    try:
        result = job.fn(ctx)
        if dist is not None:
            dist.barrier()  # a rank that failed after the last collective never gets here: no "completed"
    except (events.CancelledRun, KeyboardInterrupt):
        step = recorder.last_step
        recorder.buffer.append(events.Cancelled(step=step or 0))
        recorder.flush(status="cancelled", final_metrics=_with_warnings({}, recorder))
        clear_cancel(ctx.db, run_id)
        return RunOutcome(run_id, "cancelled", output_dir, step=step, warnings=recorder.warnings)
    except BaseException as exc:  # every failure becomes a failed run
        error = "".join(traceback.format_exception(exc))
        summary = error_summary(exc)
        if dist is not None:
            _hold_sigterm()
            summary, error = _root_cause(ctx.db, run_id, rank_summary(exc, dist), error)
        step = getattr(exc, "step", None)
        if step is None:
            step = recorder.last_step
        recorder.buffer.append(events.Failed(summary=summary, error=error, step=step))
        try:
            recorder.flush(status="failed", error=error, error_summary=summary,
                           final_metrics=_with_warnings({}, recorder))
        except Exception:  # the database itself failed: still report to the caller
            traceback.print_exc(file=sys.stderr)
        if not isinstance(exc, Exception):  # SystemExit and friends keep their meaning
            raise
        return RunOutcome(run_id, "failed", output_dir, error_summary=summary, error=error, step=step,
                          warnings=recorder.warnings)
    metrics = dict(result or (recorder.finished.metrics if recorder.finished else {}))
    metrics = _with_warnings(metrics, recorder)
    if recorder.finished is None:
        recorder.buffer.append(events.Finished(metrics=metrics, output_dir=str(output_dir)))
    recorder.flush(status="completed", final_metrics=metrics)
    _write_card(ctx.db, run_id, output_dir, job.config)
    return RunOutcome(run_id, "completed", output_dir, metrics=metrics, step=recorder.last_step,
                      warnings=recorder.warnings)


def _root_cause(db: sqlite_utils.Database, run_id: str, summary: str, error: str) -> tuple[str, str]:
    """The main process failed under a launcher: if another rank failed first (and wrote it on the run
    row), its error is the run's summary, with the main process's own traceback after it."""
    try:
        run = runs_store.get_run(db, run_id)
    except Exception:  # noqa: BLE001
        return summary, error
    if run.status == "failed" and run.error_summary:
        return run.error_summary, f"{run.error}\n--- then on the main process: {summary}\n{error}"
    return summary, error


def _write_card(db: sqlite_utils.Database, run_id: str, output_dir: Path, config: Any) -> None:
    """The run folder's README.md: a model card from the run's records, not PEFT's empty template.

    A card is a courtesy: failing to write one never fails a finished run.
    """
    from tuilab.jobs.model_card import write_model_card

    try:
        write_model_card(db, run_id, output_dir, base_model=_card_base(getattr(config, "base_model", ""), output_dir))
    except Exception as exc:  # noqa: BLE001
        print(f"tuilab: run {run_id}: model card not written: {exc}", file=sys.stderr)


def _card_base(base_model: str, output_dir: Path) -> str:
    """The base as a card names it: a model name as given, a folder inside the lab as `models/<name>`
    (so the card stays true when the lab folder moves), any other folder as an absolute path."""
    from tuilab.modeling.export import portable_base

    if not base_model:
        return "?"
    path = Path(base_model).expanduser()
    return portable_base(path, output_dir) if path.is_dir() else str(base_model)


def _with_warnings(metrics: dict[str, Any], recorder: _Recorder) -> dict[str, Any]:
    if recorder.warnings and "warnings" not in metrics:
        metrics = dict(metrics)
        metrics["warnings"] = [{"step": w.step, "code": w.code, "message": w.message} for w in recorder.warnings]
    return metrics


def _get_or_none(db: sqlite_utils.Database, run_id: str):
    try:
        return runs_store.get_run(db, run_id)
    except runs_store.RunNotFound:
        return None
