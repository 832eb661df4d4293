"""The train screen: reward-model, PPO and DPO config forms, start / pause / cancel, live charts.

The screen never runs training itself: Start hands the config to the App
(`app.training.start`, the `TrainingController`), which owns the thread. A 0.4 s timer redraws
from the watched run's `LiveRun` only when its version moved, so the screen
costs nothing while nothing changes and input is never queued behind drawing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import (
    Button,
    Footer,
    Header,
    ProgressBar,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from tuilab.tui.controller import JobBusy
from tuilab.tui.live import POLICY_KINDS, LiveRun
from tuilab.tui.widgets.charts import SQRT_KL, STEP
from tuilab.tui.widgets.forms import ConfigForm, FormErrors, dpo_form, ppo_form, rm_form
from tuilab.tui.widgets.run_panels import (
    ChartPanel,
    WarningsView,
    composed,
    metrics_line,
    run_line,
    show_failure,
)

TICK_SECONDS = 0.5  # 2 redraws a second at most, and only of what changed


def reward_run_choices(db: Any) -> list[tuple[str, str]]:
    """Completed reward-model runs, newest first, labelled with their eval accuracy."""
    from tuilab.store.runs import list_runs

    out = []
    for run in list_runs(db, "rm"):
        if run.status != "completed":
            continue
        acc = run.final_metrics.get("eval/accuracy")
        label = run.id + (f" {run.name}" if run.name else "")
        if isinstance(acc, int | float):
            label += f" (acc {acc:.2f})"
        out.append((label, run.id))
    return out


def usable_pair_count(db: Any, ties: str) -> int:
    from tuilab.store.pairs import preference_pairs

    return len(preference_pairs(db, ties=ties))


class TrainScreen(Screen):
    """Configure and start a job; watch it learn."""

    KEYS_HELP = [
        ("Jobs", [
            ("s", "start the job of the open tab (reward model, PPO or DPO)"),
            ("p", "pause / resume: the loop stops at its next step"),
            ("x", "cancel: the run ends cancelled and keeps a checkpoint"),
        ]),
        ("View", [
            ("k", "PPO / DPO charts against step or √KL, the distance from the reference (Gao et al.)"),
            ("f", "hide / show the settings form"),
            ("i", "the inspector on the PPO or DPO run's samples"),
            ("r", "the runs screen on this run"),
            ("tab / esc", "into the form / out of it (letters type into fields while one is focused)"),
        ]),
    ]
    HELP_NOTES = ("Curves are drawn dim as measured and bright as a 5-point moving average: single updates "
                  "at batch 8 are noisy. Warnings (length bias, EOS rate falling, …) appear in words under "
                  "the charts and as a notification.")

    AUTO_FOCUS = None  # keys work at once; Tab enters the form
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("p", "pause", "Pause/resume"),
        Binding("x", "cancel", "Cancel run"),
        Binding("k", "toggle_axis", "x: step/√KL"),
        Binding("f", "toggle_form", "Form"),
        Binding("i", "inspect", "Inspect"),
        Binding("r", "runs", "Runs", show=False),
        Binding("escape", "leave_form", "Leave form", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._composed = False
        self.x_mode = STEP
        self._db_run: str | None = None  # the latest run in the database, shown before any job starts here
        self._drawn: tuple | None = None
        self._statuses: tuple = ()

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="train-body"):
            with Vertical(id="train-left"):
                with TabbedContent(id="train-tabs"):
                    with TabPane("Reward model", id="tab-rm"):
                        yield rm_form()
                    with TabPane("PPO", id="tab-ppo"):
                        yield ppo_form()
                    with TabPane("DPO", id="tab-dpo"):
                        yield dpo_form()
                yield Static("", id="form-errors", markup=False)
                with Horizontal(id="train-buttons"):
                    yield Button("Start", id="btn-start", variant="success", compact=True, action="screen.start")
                    yield Button("Pause", id="btn-pause", variant="warning", compact=True, action="screen.pause")
                    yield Button("Cancel", id="btn-cancel", variant="error", compact=True, action="screen.cancel")
            with Vertical(id="train-right"):
                yield Static("", id="run-line", markup=False)
                yield ProgressBar(id="run-progress", show_eta=False, show_percentage=True)
                yield Static("", id="run-metrics", markup=False)
                yield Static("", id="run-error", markup=False)
                yield ChartPanel("rm", id="train-charts")
                yield WarningsView(id="train-warnings")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_interval(TICK_SECONDS, self.tick)
        self.call_after_refresh(self._setup)

    def _setup(self) -> None:
        """First fill, once the forms inside the tabs exist (they mount after this screen does)."""
        if not composed(self, "#ppo-form", "#ppo-reward-run", "#train-warnings"):
            self.call_after_refresh(self._setup)
            return
        self._composed = True
        self._reread()

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")
        self.set_class(self.size.height < 30, "-short")

    def on_screen_resume(self) -> None:
        if not self._composed:  # the first resume can arrive before compose; on_mount does this then
            return
        self._reread()

    def _reread(self) -> None:
        """The reward-run choices and the run on show, from the database; then a full redraw."""
        self._load_choices()
        self._pick_db_run()
        self._drawn = None
        self.call_after_refresh(self.tick)

    def _load_choices(self) -> None:
        form = self.query_one("#ppo-form", ConfigForm)
        choices = reward_run_choices(self.app.db)
        current = form.values().get("reward_run") or None
        form.set_choices("reward_run", choices, current or (choices[0][1] if choices else None))

    def _pick_db_run(self) -> None:
        from tuilab.store.runs import list_runs

        if self.app.training.last is None:
            runs = list_runs(self.app.db)
            self._db_run = runs[0].id if runs else None

    # ------------------------------------------------------------ the watched run

    def watched(self) -> LiveRun | None:
        state = self.app.training
        run_id = state.active or state.last or self._db_run
        if run_id is None:
            return None
        try:
            return self.app.training.live_run(run_id)
        except KeyError:
            return None

    async def tick(self) -> None:
        """Redraw what changed: header and progress each tick (cheap), charts only on new data."""
        if not self._composed:
            return
        statuses = tuple((r.run_id, r.status) for r in self.app.training.runs.values())
        if statuses != self._statuses:  # a reward run may have just completed: offer it to PPO
            self._statuses = statuses
            self._load_choices()
        live = self.watched()
        self.query_one("#run-line", Static).update(run_line(live))
        self._buttons(live)
        if live is None:
            self.query_one("#run-progress", ProgressBar).update(total=None, progress=0)
            return
        charts = self.query_one("#train-charts", ChartPanel)
        if charts.kind != live.kind:
            await charts.set_kind(live.kind)
            self._drawn = None
        key = (live.run_id, live.version, self.x_mode)
        if key != self._drawn:
            self._drawn = key
            bar = self.query_one("#run-progress", ProgressBar)
            if live.total_steps:
                total, progress = live.total_steps, live.step or 0
            else:
                total, progress = (None, 0) if live.is_active else (1, 1)
            if (bar.total, bar.progress) != (total, progress):
                bar.update(total=total, progress=progress)
            self.query_one("#run-metrics", Static).update(metrics_line(live.kind, live.final_metrics, limit=5))
            show_failure(self.query_one("#run-error", Static), live, "failed: ", "unknown error",
                         "   (runs screen: e shows the traceback)")
            self.query_one("#train-warnings", WarningsView).set_warnings(live.warnings)
        charts.show([("", live)], self.x_mode if live.kind in POLICY_KINDS else STEP)

    def _buttons(self, live: LiveRun | None) -> None:
        running = live is not None and live.is_active and self.app.training.active == live.run_id
        self.query_one("#btn-start", Button).disabled = running
        pause = self.query_one("#btn-pause", Button)
        pause.disabled = not running
        pause.label = "Resume" if running and live is not None and live.status == "paused" else "Pause"
        self.query_one("#btn-cancel", Button).disabled = not running or bool(live and live.pending_action)

    # ------------------------------------------------------------ actions

    def _say(self, message: str | Text = "") -> None:
        self.query_one("#form-errors", Static).update(message)

    def action_start(self) -> None:
        tabs = self.query_one("#train-tabs", TabbedContent)
        kind = {"tab-ppo": "ppo", "tab-dpo": "dpo"}.get(tabs.active, "rm")
        form = self.query_one(f"#{kind}-form", ConfigForm)
        try:
            cfg = form.config()
        except FormErrors as exc:
            self._say("\n".join(msg for _, msg in exc.errors))
            return
        problem = self._preflight(kind, cfg)
        if problem:
            self._say(problem)
            return
        try:
            run_id = self.app.training.start(kind, cfg, name=cfg.name)
        except (JobBusy, ValueError) as exc:  # ValueError: the config, refused before any run exists
            self._say(str(exc))
            return
        self._say(Text(f"started {run_id}", style="green"))
        self._drawn = None
        if self.size.width < 100:
            self.query_one("#train-left").add_class("-hidden")
        self.call_after_refresh(self.tick)

    def _preflight(self, kind: str, cfg: Any) -> str:
        """Refusals that need no model: too few pairs, no reward run."""
        if kind in ("rm", "dpo"):
            have = usable_pair_count(self.app.db, cfg.ties)
            if have < cfg.min_pairs:
                return (f"only {have} usable preference pairs (ties {cfg.ties}); training needs at least "
                        f"{cfg.min_pairs}. Label more on the Label screen or import some (tuilab data import).")
            return ""
        if not cfg.reward_run:
            return "pick a reward run: PPO needs a completed reward-model run (train one on the Reward model tab)"
        return ""

    def action_pause(self) -> None:
        self._steer(self.app.training.pause,
                    lambda paused: "paused: the loop stops at its next step" if paused else "resumed")

    def action_cancel(self) -> None:
        self._steer(self.app.training.cancel,
                    lambda run_id: f"cancelling {run_id}: it stops at its next step and keeps a checkpoint")

    def _steer(self, act: Callable[[], Any], said: Callable[[Any], str]) -> None:
        """Pause or cancel the running job: what happened (or why not) on the status line, then redraw."""
        try:
            result = act()
        except JobBusy as exc:
            self._say(str(exc))
            return
        self._say(said(result))
        self.call_after_refresh(self.tick)

    def action_toggle_axis(self) -> None:
        self.x_mode = SQRT_KL if self.x_mode == STEP else STEP
        live = self.watched()
        if live is not None and live.kind not in POLICY_KINDS:
            self._say("the √KL axis is for PPO and DPO runs (Gao et al.); reward-model charts stay on steps")
        self._drawn = None
        self.call_after_refresh(self.tick)

    def action_toggle_form(self) -> None:
        self.query_one("#train-left").toggle_class("-hidden")

    def action_leave_form(self) -> None:
        self.set_focus(None)

    def action_inspect(self) -> None:
        live = self.watched()
        self.app.open_inspector(live.run_id if live is not None and live.kind in POLICY_KINDS else None)

    def action_runs(self) -> None:
        live = self.watched()
        if live is not None:
            self.app.open_run(live.run_id)
        else:
            self.app.switch_mode("runs")

    def on_select_changed(self, event: Select.Changed) -> None:
        """Picking a reward run fills in its base model (PPO must use the reward model's base)."""
        if event.select.id != "ppo-reward-run" or event.value is Select.NULL:
            return
        from tuilab.store.runs import RunNotFound, get_run

        try:
            run = get_run(self.app.db, str(event.value))
        except RunNotFound:
            return
        base = run.config.get("base_model")
        if base:
            self.query_one("#ppo-form", ConfigForm).set_value("base_model", base)
