"""The tuilab Textual app: modes (screens), the candidate worker, one error handler.

`run_app(paths, model=...)` is what bare `tuilab` calls. The App owns everything
that outlives a screen: the UI thread's database connection, the shared base
model (`ModelHost`, loaded lazily in a worker), and the pair feeder's thread.
State reaches screens one way: typed messages (`tui/messages.py`) that the App
posts to the screens of the current mode (`tell_screens`); screens call the App
for everything else.

For `textual run` / `textual serve`, the class builds itself from the environment
(`TUILAB_HOME` or the working directory): `textual run tuilab.tui.app:TuilabApp`,
or `textual serve "python -m tuilab --home DIR"`.
"""

from __future__ import annotations

import copy
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from tuilab.config import DEFAULT_MODEL, LabPaths
from tuilab.labeling.candidates import CandidateSource, ModelCandidateSource, SourceSpec
from tuilab.labeling.queue import FeedState, PairFeeder
from tuilab.labeling.repeats import RepeatPolicy
from tuilab.modeling.host import ModelHost
from tuilab.tui.controller import TrainingController
from tuilab.tui.messages import (
    FeedChanged,
    FeederUpdate,
    JobEnded,
    JobEvents,
    LabelStatsReady,
    MarkdownToggled,
    PairReady,
    StatsChanged,
    WorkerFailed,
)
from tuilab.tui.modes import LAB_MODES, screen_factory

SourceFactory = Callable[[SourceSpec], CandidateSource]


@dataclass
class CandidateSettings:
    """What the candidate settings panel edits."""

    spec: SourceSpec = field(default_factory=SourceSpec)
    queue_size: int = 4


@dataclass
class ErrorRecord:
    where: str
    summary: str
    detail: str = ""


def utc_now_iso() -> str:
    """The store's timestamp format (`strftime('%Y-%m-%dT%H:%M:%fZ')`), for `label_stats(since=)`."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class TuilabApp(App[int]):
    """The lab. Every argument has a default, so `TuilabApp()` opens the lab in `$TUILAB_HOME` or `.`.

    Args:
        paths: where the lab lives (models/ and db/); default from `TUILAB_HOME` / cwd.
        model: base model (name in models/, folder, or hub id) candidates are sampled from.
        four_bit: load the base model in nf4.
        db_path: a database file other than `paths.db`.
        source: a fixed candidate source (tests inject a deterministic fake); settings
            changes then only change the queue size unless `source_factory` is given.
        source_factory: builds a source from a `SourceSpec` (the settings panel's result).
        queue_size: ready pairs kept in advance.
        seed: seeds prompt sampling and the side coin-flips (deterministic tests).
        spec: the initial candidate settings.
        annotator: stored with every comparison.
        start_feeder: False leaves the generator off (screens that only read data).
        mode: the first screen.
        reveal_toasts: also reveal the models in a toast after each decision.
    """

    TITLE = "tuilab"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere find it too
    MODES = {m.name: screen_factory(m) for m in LAB_MODES}
    DEFAULT_MODE = "label"
    BINDINGS = [
        *(Binding(m.key, f"switch_mode('{m.name}')", m.title, show=False, id=f"mode.{m.name}")
          for m in LAB_MODES),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]

    def __init__(
        self,
        paths: LabPaths | None = None,
        *,
        model: str = DEFAULT_MODEL,
        four_bit: bool = False,
        db_path: str | Path | None = None,
        source: CandidateSource | None = None,
        source_factory: SourceFactory | None = None,
        queue_size: int = 4,
        seed: int | None = None,
        spec: SourceSpec | None = None,
        annotator: str = "",
        start_feeder: bool = True,
        mode: str = "label",
        reveal_toasts: bool = False,
        repeat_share: float = 0.05,
    ) -> None:
        super().__init__()
        paths = paths or LabPaths.resolve()
        if db_path is not None:
            paths = LabPaths(paths.home, Path(db_path))
        self.paths = paths
        self.model_name = model
        self.model_label = Path(model).name or model  # launch passes a folder path
        self.four_bit = four_bit
        self.annotator = annotator
        self.seed = seed
        # Self-consistency repeats: this share of pairs re-asks an older decision, sides swapped.
        self.repeat_share = repeat_share
        self.settings = CandidateSettings(spec or SourceSpec(seed=seed), queue_size)
        self._fixed_source = source
        self._source_factory = source_factory
        self.model_host: ModelHost | None = None
        self.feeder: PairFeeder | None = None
        self._feeder_thread: threading.Thread | None = None
        self._feeder_generation = 0
        self._start_feeder = start_feeder
        self._first_mode = mode
        self.feed_state = FeedState(capacity=queue_size)
        self.markdown = False
        # The reveal after each decision is on the status line; a toast as well costs a
        # widget mount per decision (measurable in bench/label_latency.py), so it is opt-in.
        self.reveal_toasts = reveal_toasts
        self.session_started = utc_now_iso()
        self.errors: list[ErrorRecord] = []
        self._db: Any = None
        self.training = TrainingController(
            self.paths,
            lambda: self.db,
            post=self.post_message,
            thread=lambda fn: self.run_worker(fn, thread=True, exclusive=True, exit_on_error=False,
                                              group="training", name="training"),
            notify=self.notify,
            report_error=self.report_error,
        )

    # ------------------------------------------------------------ lifecycle

    @property
    def db(self) -> Any:
        """The UI thread's connection (workers open their own)."""
        if self._db is None:
            from tuilab.store.lab import open_lab_db

            self._db = open_lab_db(self.paths)
        return self._db

    def on_load(self) -> None:
        # Open (create, migrate, seed) the database on the UI thread before any screen mounts
        # or any worker opens its own connection: two first opens would both try to migrate.
        self.db  # noqa: B018

    def on_mount(self) -> None:
        if self._first_mode != self.current_mode:
            self.switch_mode(self._first_mode)
        if self._start_feeder:
            self.start_feeder()

    def on_unmount(self) -> None:
        self.training.stop()
        thread = self._feeder_thread
        self.stop_feeder()
        if thread is not None and thread.is_alive():
            # The model call stops at its next token; wait for it so the interpreter does not
            # finalise under a thread that is still inside torch (that aborts the process).
            thread.join(timeout=10)
        if self.model_host is not None:
            self.model_host.close()
        if self._db is not None:
            self._db.conn.close()
            self._db = None

    # ------------------------------------------------------------ candidates

    def shared_host(self) -> ModelHost:
        """The one host of the App's model (built on first use; it loads nothing until asked): the label queue
        and the inspector's reference answers share it, so the model is in memory once."""
        if self.model_host is None:
            self.model_host = ModelHost(self.paths.models, self.model_name, four_bit=self.four_bit)
        return self.model_host

    def build_source(self, spec: SourceSpec) -> CandidateSource:
        """The candidate source for `spec`: injected, from the factory, or the real model."""
        if self._source_factory is not None:
            return self._source_factory(spec)
        if self._fixed_source is not None:
            return self._fixed_source
        host = self.shared_host()
        if spec.mode == "disagreement":
            from tuilab.labeling.disagreement import DisagreementSource

            return DisagreementSource(host, spec.reward_run, spec, samples=spec.samples)
        return ModelCandidateSource(host, spec)

    def start_feeder(self) -> None:
        """(Re)start the generation worker with the current settings; ready pairs are dropped."""
        self.stop_feeder()
        self._feeder_generation += 1
        try:
            source = self.build_source(self.settings.spec)
        except Exception as exc:  # noqa: BLE001 - a bad source is shown, the app stays up
            self.feed_state = FeedState(
                phase="failed",
                error=f"{type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc)),
                capacity=self.settings.queue_size,
                generation=self._feeder_generation,
            )
            self.tell_screens(FeedChanged(self.feed_state))
            return
        self.feeder = PairFeeder(
            self.paths.db,
            source,
            capacity=self.settings.queue_size,
            on_state=lambda state: self.post_message(FeederUpdate(state)),
            on_pair=lambda state, prompt_id: self.post_message(PairReady(state, prompt_id)),
            seed=self.seed,
            generation=self._feeder_generation,
            labeler=self.labeler,
            repeats=RepeatPolicy(share=self.repeat_share),
        )
        self.feed_state = self.feeder.state
        # A plain daemon thread rather than a Textual thread worker: it runs at a lower CPU
        # priority for its whole life (a pooled executor thread would keep that priority for
        # whatever it runs next), and quitting never waits for a generation to finish.
        self._feeder_thread = threading.Thread(
            target=self.feeder.run, name=f"tuilab-candidates-{self._feeder_generation}", daemon=True
        )
        self._feeder_thread.start()
        self.tell_screens(FeedChanged(self.feed_state))

    def stop_feeder(self) -> None:
        if self.feeder is not None:
            self.feeder.stop()
        self._feeder_thread = None

    def retry_candidates(self) -> None:
        """After a failure: retry in the running thread, or start a new one."""
        thread = self._feeder_thread
        if self.feeder is not None and thread is not None and thread.is_alive():
            self.feeder.retry()
        else:
            self.start_feeder()

    def apply_candidate_settings(self, settings: CandidateSettings) -> None:
        settings.spec.check()
        if settings.queue_size < 1:
            raise ValueError("queue size must be at least 1")
        self.settings = settings
        self.start_feeder()
        self.notify(f"Candidates: {self.feed_state.source or settings.spec.describe(self.model_label)}",
                    title="Candidate source")

    def on_feeder_update(self, message: FeederUpdate) -> None:
        self._feed(message.state)

    def on_pair_ready(self, message: PairReady) -> None:
        self._feed(message.state)

    def _feed(self, state: FeedState) -> None:
        if state.generation != self._feeder_generation:
            return  # a replaced feeder finishing up
        was_failed = self.feed_state.phase == "failed"
        self.feed_state = state
        if state.phase == "failed" and not was_failed:
            self.report_error("Candidate generation", state.error, state.traceback, notify=False)
        self.tell_screens(FeedChanged(state))

    # ------------------------------------------------------------ label stats

    def refresh_label_stats(self) -> None:
        """Recompute the stats strip in a worker thread; a `StatsChanged` message carries the result.

        `label_stats` scans every comparison (~60 ms at 20 000 here), so it never runs on
        the UI thread between two decisions.
        """
        self.run_worker(self._label_stats_work, name="label stats", group="label-stats",
                        thread=True, exclusive=True, exit_on_error=False)

    def _label_stats_work(self) -> None:
        from tuilab.labeling.consistency import labeler_report
        from tuilab.store.comparisons import label_stats
        from tuilab.store.db import open_db

        db = open_db(self.paths.db)  # this thread's own connection
        try:
            stats = label_stats(db, since=self.session_started)
            report = labeler_report(db, self.labeler)
        finally:
            db.conn.close()
        if not get_current_worker().is_cancelled:
            self.post_message(LabelStatsReady(stats, report))

    @property
    def labeler(self) -> str:
        """Who this session's decisions count for (the annotator name, else "human")."""
        return self.annotator or "human"

    def on_label_stats_ready(self, message: LabelStatsReady) -> None:
        self.tell_screens(StatsChanged(message.stats, message.report))

    def tell_screens(self, message: Message) -> None:
        """Post a screen message to every screen of the current mode (a copy each)."""
        for screen in self.screen_stack:
            screen.post_message(copy.copy(message))

    # ------------------------------------------------------------ training

    def on_job_events(self, message: JobEvents) -> None:
        self.training.on_job_events(message)

    def on_job_ended(self, message: JobEnded) -> None:
        self.training.on_job_ended(message)

    def open_inspector(self, run_id: str | None = None) -> None:
        """Show the PPO inspector on `run_id` (default: the live or latest PPO run)."""
        if run_id is not None:
            self.training.inspect_run = run_id
        self.switch_mode("inspect")

    def open_run(self, run_id: str) -> None:
        """Show one run (its curves, metrics, error) on the runs screen."""
        self.training.runs_focus = run_id
        self.switch_mode("runs")

    # ------------------------------------------------------------ errors

    def report_error(self, where: str, summary: str, detail: str = "", *, notify: bool = True) -> None:
        """The one place errors from workers and actions end up: logged, kept, shown."""
        self.errors.append(ErrorRecord(where, summary, detail))
        self.log.error(f"{where}: {summary}\n{detail}")
        if notify:
            self.notify(summary, title=where, severity="error", timeout=10)

    def _handle_exception(self, error: Exception) -> None:
        """A database that fails mid-session ends the app with one sentence, not a traceback."""
        from tuilab.store.db import DatabaseError

        if isinstance(error, DatabaseError):
            detail = "".join(traceback.format_exception(error))
            self.report_error("Database", f"{type(error).__name__}: {error}", detail, notify=False)
            self._return_code = 1
            self.panic(f"tuilab: the database {self.paths.db} failed: {error}. Nothing after the last "
                       "saved decision was written; check it with `tuilab db check` "
                       "(the traceback is in the app log).")
            return
        super()._handle_exception(error)

    def on_worker_failed(self, message: WorkerFailed) -> None:
        self.report_error(message.where, message.summary, message.detail)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            detail = "".join(traceback.format_exception(err)) if isinstance(err, BaseException) else ""
            self.report_error(event.worker.name or "worker", f"{type(err).__name__}: {err}", detail)

    # ------------------------------------------------------------ commands

    def action_help(self) -> None:
        from tuilab.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.screen))

    def action_candidate_settings(self) -> None:
        from tuilab.tui.screens.settings import SettingsScreen

        def done(result: CandidateSettings | None) -> None:
            if result is not None:
                self.apply_candidate_settings(result)

        self.push_screen(SettingsScreen(self.settings, self.paths.models, self.model_label), done)

    def use_source(self, spec: SourceSpec) -> None:
        """Switch the candidate source from the command palette."""
        try:
            self.apply_candidate_settings(CandidateSettings(spec, self.settings.queue_size))
        except ValueError as exc:
            self.notify(str(exc), severity="error", title="Candidate source")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for m in LAB_MODES:
            yield SystemCommand(f"Screen: {m.title} ({m.key.upper()})", m.description,
                                lambda name=m.name: self.switch_mode(name))
        yield SystemCommand("Candidates: settings…", "Choose how labeling pairs are generated",
                            self.action_candidate_settings)
        base = self.settings.spec
        yield SystemCommand(
            f"Candidates: two samples of {self.model_label}",
            "Both sides sampled from the base model",
            lambda: self.use_source(SourceSpec(mode="samples", temperature_a=base.temperature_a,
                                               temperature_b=base.temperature_b, top_p=base.top_p,
                                               max_new_tokens=base.max_new_tokens, seed=base.seed)),
        )
        from tuilab.modeling.host import find_adapters

        for adapter in find_adapters(self.paths.models):
            yield SystemCommand(
                f"Candidates: {self.model_label} vs {adapter.name}",
                "Base model against a trained policy adapter",
                lambda a=adapter.name: self.use_source(SourceSpec(
                    mode="ab", adapter_b=a, temperature_a=base.temperature_a,
                    temperature_b=base.temperature_a, top_p=base.top_p,
                    max_new_tokens=base.max_new_tokens, seed=base.seed)),
            )
        yield SystemCommand("Candidates: retry generation", "Try the generator again after an error",
                            self.retry_candidates)
        yield SystemCommand("Toggle Markdown", "Show responses as rendered Markdown or plain text",
                            self.toggle_markdown)

    def toggle_markdown(self) -> None:
        self.markdown = not self.markdown
        self.tell_screens(MarkdownToggled(self.markdown))
        self.tell_screens(FeedChanged(self.feed_state))


def _startup_checks(paths: LabPaths) -> str | None:
    """Check and open the database once before the UI: a clear message instead of a crashed screen.

    `inspect_db` first (SQLite? a tuilab lab? a known schema? `PRAGMA quick_check`?),
    writing nothing to a file that fails it.
    """
    from tuilab.store.integrity import LabDBError, inspect_db
    from tuilab.store.lab import open_lab_db

    try:
        inspect_db(paths.db, quick_check=True)
    except LabDBError as exc:
        return str(exc)
    try:
        db = open_lab_db(paths)
    except Exception as exc:  # noqa: BLE001 - SchemaTooNew, a locked or unreadable file, …
        return f"cannot open the lab database {paths.db}: {exc}"
    db.conn.close()
    return None


def run_app(paths: LabPaths, *, model: str = DEFAULT_MODEL, four_bit: bool = False, **kwargs: Any) -> int:
    """Open the lab UI (bare `tuilab`); returns the process exit status."""
    problem = _startup_checks(paths)
    if problem:
        print(f"tuilab: {problem}", file=sys.stderr)
        return 1
    try:
        # Textual's stderr capture has fileno() == -1, which breaks spawning processes
        # later ("bad value(s) in fds_to_keep", Textual issue #3593); starting the
        # resource tracker first avoids it.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    except Exception:  # noqa: BLE001 - only needed by jobs that spawn processes
        pass
    app = TuilabApp(paths, model=model, four_bit=four_bit, **kwargs)
    result = app.run()
    return int(result or app.return_code or 0)


def main(argv: list[str] | None = None) -> int:
    """`python -m tuilab.tui.app [--home DIR] [--model NAME]`: the UI alone (e.g. under `textual serve`)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tuilab.tui.app", description="Open the tuilab UI.")
    parser.add_argument("--home", help="lab folder holding models/ and db/ (default: $TUILAB_HOME or .)")
    parser.add_argument("--db", help="database file (default: HOME/db/lab.db)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="base model to sample candidates from")
    parser.add_argument("--4bit", dest="four_bit", action="store_true", help="load the base model in nf4")
    args = parser.parse_args(argv)
    return run_app(LabPaths.resolve(args.home, args.db), model=args.model, four_bit=args.four_bit)


if __name__ == "__main__":
    sys.exit(main())
