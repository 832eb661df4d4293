"""The runs screen: every run with its kind, status, start, duration and final metrics.

Highlighting a run redraws its curves from the database (`read_metrics`), so a
finished run looks the same after a restart as it did live; a failed one
shows its error summary, and `e` the whole traceback. Two reward-model runs
marked with space compare side by side (`c`); any number of marked PPO/DPO
runs open on one plot (`c`, screens/overlay.py).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Static

from tuilab.records import Run
from tuilab.tui.live import POLICY_KINDS, LiveRun, fmt_duration
from tuilab.tui.widgets.audits import AuditView
from tuilab.tui.widgets.charts import COMPARE_COLORS
from tuilab.tui.widgets.run_panels import (
    HEADLINE,
    STATUS_STYLE,
    ChartPanel,
    WarningsView,
    composed,
    fmt_number,
    metrics_line,
    parse_ts,
    run_line,
    show_failure,
)

TICK_SECONDS = 0.5  # 2 redraws a second at most, and only of what changed
LIST_EVERY = 4  # ticks between re-reading the run list (2 s)


def started_label(run: Run) -> str:
    """Local date and time the run started (created, if it never started)."""
    ts = parse_ts(run.started_at or run.created_at)
    return ts.strftime("%m-%d %H:%M") if ts else "–"


def duration_label(run: Run) -> str:
    start, end = parse_ts(run.started_at), parse_ts(run.finished_at)
    if start is None or end is None:
        return "–" if run.status in ("completed", "failed", "cancelled", "pending") else "running"
    return fmt_duration((end - start).total_seconds())


def final_label(run: Run) -> Text:
    if run.status == "failed":
        return Text(run.error_summary or "failed", style="red")
    return metrics_line(run.kind, run.final_metrics, limit=3)


def compare_rows(a: LiveRun, b: LiveRun) -> list[tuple[str, str, str, str]]:
    """(metric, A, B, B − A) for every numeric final metric either run has, headline metrics first."""
    head = [k for k, _ in HEADLINE.get(a.kind, ())]
    keys = {k for k, v in {**a.final_metrics, **b.final_metrics}.items() if isinstance(v, int | float)
            and not isinstance(v, bool)}
    ordered = [k for k in head if k in keys] + sorted(keys - set(head))
    rows = []
    for key in ordered:
        va, vb = a.final_metrics.get(key), b.final_metrics.get(key)
        delta = "–"
        if isinstance(va, int | float) and isinstance(vb, int | float):
            delta = f"{vb - va:+.3g}"
        rows.append((key, fmt_number(va), fmt_number(vb), delta))
    return rows


class TracebackScreen(ModalScreen[None]):
    """A failed run's whole error, scrollable; esc closes."""

    BINDINGS = [Binding("escape,e,q", "dismiss", "Close")]
    def __init__(self, run_id: str, summary: str, error: str) -> None:
        super().__init__()
        self.run_id, self.summary, self.error = run_id, summary, error

    def compose(self) -> ComposeResult:
        with Vertical(id="tb-dialog") as box:
            box.border_title = f"{self.run_id}: error"
            yield Static(self.summary or "failed", id="tb-summary", markup=False)
            with VerticalScroll(id="tb-scroll"):
                yield Static(self.error or "(no traceback was recorded)", id="tb-text", markup=False)
            yield Static("esc closes", id="tb-hint")


class CompareScreen(Screen):
    """Two reward-model runs: their curves overlaid (A blue, B orange) and their final metrics side by side."""

    BINDINGS = [Binding("escape,c,q", "dismiss", "Back to runs")]
    HELP_TITLE = "Compare runs"
    KEYS_HELP = [("Compare", [("esc", "back to the runs list")])]

    def __init__(self, a: LiveRun, b: LiveRun) -> None:
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        yield Header()
        title = Text()
        for label, live, color in (("A", self.a, COMPARE_COLORS[0]), ("B", self.b, COMPARE_COLORS[1])):
            title.append(f"━ {label} ", style=f"bold {color}")
            title.append_text(run_line(live, clock=False))
            title.append("\n")
        title.rstrip()
        yield Static(title, id="cmp-title", markup=False)
        yield ChartPanel(self.a.kind, id="cmp-charts")
        yield DataTable(id="cmp-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#cmp-table", DataTable)
        table.add_columns("final metric", "A", "B", "B − A")
        for row in compare_rows(self.a, self.b):
            table.add_row(*row)
        self.call_after_refresh(self._draw)

    def _draw(self) -> None:
        self.query_one("#cmp-charts", ChartPanel).show([("A", self.a), ("B", self.b)], force=True)

    def on_resize(self) -> None:
        self.call_after_refresh(self._draw)


class RunsScreen(Screen):
    """Every run, newest first; the highlighted one's curves, metrics and error below."""

    KEYS_HELP = [
        ("Runs", [
            ("↑ ↓", "highlight a run: its curves are redrawn from the database"),
            ("space", "mark / unmark a run for comparison (reward models: two; PPO/DPO: any number)"),
            ("c", "compare: two reward models side by side, or the PPO/DPO runs on one plot (gold vs √KL, Gao fits)"),
            ("e", "the whole error (traceback) of a failed run"),
            ("i", "open a PPO or DPO run in the inspector"),
            ("R", "resume a cancelled or failed PPO or DPO run from its newest checkpoint"),
            ("x", "cancel a running run, also one another process trains (a sweep trial, a terminal job)"),
            ("t", "the train screen"),
            ("r", "re-read the list"),
        ]),
    ]
    HELP_NOTES = "Runs left running by a process that ended are shown as failed (interrupted)."

    BINDINGS = [
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("e", "error", "Error"),
        Binding("i", "inspect", "Inspect"),
        Binding("R", "resume", "Resume", show=False),
        Binding("x", "cancel", "Cancel run", show=False),
        Binding("t", "train", "Train", show=False),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._composed = False
        self.runs: list[Run] = []
        self.marked: list[str] = []
        self.selected: str | None = None
        self._list_sig: tuple | None = None
        self._drawn: tuple | None = None
        self._ticks = 0
        self._loaded: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("No runs yet. Train a reward model on the train screen (F3) or with `tuilab train rm`.",
                     id="runs-empty", markup=False)
        with Vertical(id="runs-detail"):
            yield Static("", id="runs-line", markup=False)
            yield Static("", id="runs-metrics", markup=False)
            yield Static("", id="runs-error", markup=False)
            yield Static("", id="runs-hint", markup=False)
            yield ChartPanel("rm", id="runs-charts")
            yield WarningsView(id="runs-warnings")
            yield AuditView(id="runs-audits")  # PPO runs with gold-audit pairs: the human win rate per step
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.add_column("", key="mark", width=1)
        table.add_column("run", key="id")
        table.add_column("kind", key="kind")
        table.add_column("status", key="status")
        table.add_column("started", key="started")
        table.add_column("took", key="took")
        table.add_column("final metrics", key="final")
        table.add_column("name", key="name")
        self.reload()
        self._take_focus_request()
        self.set_interval(TICK_SECONDS, self.tick)
        self._composed = True

    def on_resize(self) -> None:
        self.set_class(self.size.height < 30, "-short")

    def on_screen_resume(self) -> None:
        if not self._composed:  # the first resume can arrive before compose; on_mount does this then
            return
        self.reload()
        self._take_focus_request()

    def _take_focus_request(self) -> None:
        """`App.open_run(run_id)` asked for a run: highlight it."""
        focus = self.app.training.runs_focus
        if focus:
            self.app.training.runs_focus = None
            self.show_run(focus)

    # ------------------------------------------------------------ list

    def reload(self) -> None:
        from tuilab.store.runs import list_runs

        self.runs = list_runs(self.app.db)
        sig = tuple((r.id, r.status, r.finished_at, r.error_summary, tuple(sorted(map(str, r.final_metrics))))
                    for r in self.runs) + (tuple(self.marked),)
        if sig == self._list_sig:
            return
        self._list_sig = sig
        table = self.query_one("#runs-table", DataTable)
        keep = self.selected
        table.clear()
        for run in self.runs:
            table.add_row(*self._cells(run), key=run.id)
        self.set_class(not self.runs, "-empty")
        if self.runs:
            ids = [r.id for r in self.runs]
            target = keep if keep in ids else ids[0]
            table.move_cursor(row=ids.index(target), animate=False)
            self.selected = target
        self._drawn = None

    def _cells(self, run: Run) -> list[Any]:
        mark = Text("●", style="bold cyan") if run.id in self.marked else Text(" ")
        status = Text(run.status, style=STATUS_STYLE.get(run.status, ""))
        return [mark, run.id, run.kind.upper(), status, started_label(run), duration_label(run),
                final_label(run), run.name]

    def show_run(self, run_id: str) -> None:
        ids = [r.id for r in self.runs]
        if run_id not in ids:
            self.reload()
            ids = [r.id for r in self.runs]
        if run_id in ids:
            self.query_one("#runs-table", DataTable).move_cursor(row=ids.index(run_id), animate=False)
            self.selected = run_id
            self._drawn = None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "runs-table" and event.row_key is not None:
            self.selected = str(event.row_key.value)
            self.call_after_refresh(self.tick)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a PPO or DPO run opens the inspector; on another run, its error if it failed."""
        if event.data_table.id != "runs-table":
            return
        run = self._run(str(event.row_key.value))
        if run is None:
            return
        if run.kind in POLICY_KINDS:
            self.app.open_inspector(run.id)
        elif run.status == "failed":
            self.action_error()

    def _run(self, run_id: str | None) -> Run | None:
        return next((r for r in self.runs if r.id == run_id), None)

    # ------------------------------------------------------------ detail

    def selected_live(self) -> LiveRun | None:
        if self.selected is None:
            return None
        # A run still training lives in the App; any other is read back from the database
        # each time it is highlighted anew (it may have been trained by another process).
        fresh = self.selected != self._loaded
        try:
            live = self.app.training.live_run(self.selected, reload=fresh)
        except KeyError:
            return None
        self._loaded = self.selected
        return live

    async def tick(self) -> None:
        if not composed(self, "#runs-charts", "#runs-warnings"):
            return
        self._ticks += 1
        if self._ticks % LIST_EVERY == 0:
            self.reload()
        live = self.selected_live()
        if live is None:
            return
        key = (live.run_id, live.version)
        charts = self.query_one("#runs-charts", ChartPanel)
        if charts.kind != live.kind:
            await charts.set_kind(live.kind)
        self.query_one("#runs-line", Static).update(run_line(live))
        if key != self._drawn:
            self._drawn = key
            self.query_one("#runs-metrics", Static).update(metrics_line(live.kind, live.final_metrics, limit=6))
            show_failure(self.query_one("#runs-error", Static), live, "error: ", "unknown",
                         "   e: the whole traceback")
            self.query_one("#runs-hint", Static).update(self._hint(live))
            self.query_one("#runs-warnings", WarningsView).set_warnings(live.warnings)
        charts.show([("", live)])
        self.query_one("#runs-audits", AuditView).show_run(live.run_id, live.kind)

    def _hint(self, live: LiveRun) -> Text:
        bits = []
        if live.kind in POLICY_KINDS:
            bits.append("enter / i: inspect its samples")
        if live.kind == "rm":
            bits.append("space: mark for comparison" if live.run_id not in self.marked else "marked for comparison")
        if live.checkpoints:
            step, path = live.checkpoints[-1]
            bits.append(f"last checkpoint step {step}")
        if live.output_dir:
            bits.append(live.output_dir)
        return Text(" · ".join(bits), style="dim")

    # ------------------------------------------------------------ actions

    def action_mark(self) -> None:
        """Reward-model runs compare two at a time; PPO and DPO runs any number on one plot."""
        run = self._run(self.selected)
        if run is None:
            return
        family = {r.kind == "rm" for r in self.runs if r.id in self.marked}
        if family and family != {run.kind == "rm"}:
            self.marked.clear()  # a reward model and a policy run do not share a plot: start a new set
        if run.id in self.marked:
            self.marked.remove(run.id)
        else:
            self.marked.append(run.id)
            if run.kind == "rm":
                del self.marked[:-2]
        self._list_sig = None
        self.reload()

    def action_compare(self) -> None:
        marked = [r for r in self.runs if r.id in self.marked]
        if marked and all(r.kind != "rm" for r in marked):
            from tuilab.tui.screens.overlay import OverlayScreen

            labels = {r.id: r.name or r.id for r in marked}
            self.app.push_screen(OverlayScreen(self.app.db, [r.id for r in marked], labels))
            return
        if len(self.marked) != 2:
            self.notify(f"Mark two reward-model runs, or any PPO/DPO runs, with space first "
                        f"({len(self.marked)} marked).", severity="warning")
            return
        a, b = (self.app.training.live_run(r, reload=r != self.app.training.active) for r in self.marked)
        self.app.push_screen(CompareScreen(a, b))

    def action_error(self) -> None:
        live = self.selected_live()
        if live is None:
            return
        if live.status != "failed":
            self.notify(f"{live.run_id} did not fail ({live.status}).")
            return
        self.app.push_screen(TracebackScreen(live.run_id, live.error_summary, live.error))

    def action_inspect(self) -> None:
        run = self._run(self.selected)
        if run is None or run.kind not in POLICY_KINDS:
            self.notify("The inspector shows PPO and DPO runs' samples; highlight one.", severity="warning")
            return
        self.app.open_inspector(run.id)

    def action_resume(self) -> None:
        from tuilab.tui.controller import JobBusy

        run = self._run(self.selected)
        if run is None:
            return
        if run.kind not in POLICY_KINDS:
            self.notify("Only PPO and DPO runs resume from a checkpoint; train a new reward model instead.",
                        severity="warning")
            return
        try:
            self.app.training.resume(run.id)
        except (JobBusy, ValueError) as exc:
            self.notify(str(exc), title="Resume", severity="warning", timeout=8)
            return
        self.notify(f"Resuming {run.id} from its newest checkpoint.", title="Resume")
        self._loaded = self.selected  # live from now on: do not re-read it over the job's events
        self._drawn = None

    def action_cancel(self) -> None:
        """The App's own job stops through its controls; a run another process trains (a `tuilab sweep`
        trial, a terminal job) through a request in the database, which that job reads between updates."""
        from tuilab.store.run_requests import request_cancel
        from tuilab.store.runs import RunNotFound, get_run

        training = self.app.training
        live = training.active_run
        if live is not None and live.run_id == self.selected and live.is_active:
            training.cancel()
            self.notify(f"Cancelling {live.run_id}: it stops at its next step and keeps a checkpoint.",
                        title="Cancel")
            return
        try:
            run = get_run(self.app.db, self.selected or "")  # fresh: the list is up to 2 s old
        except RunNotFound:
            return
        if run.status not in ("pending", "running", "paused"):
            self.notify(f"{run.id} is not running ({run.status}).", title="Cancel", severity="warning")
            return
        request_cancel(self.app.db, run.id)
        self.notify(f"{run.id}: cancel requested; it runs in another process (a sweep trial or a terminal "
                    "job), which stops it after its current update with a checkpoint.", title="Cancel", timeout=8)

    def action_train(self) -> None:
        self.app.switch_mode("train")

    def action_reload(self) -> None:
        self._list_sig = None
        self.reload()
        self._loaded = None
        self._drawn = None
