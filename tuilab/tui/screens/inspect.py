"""The PPO / DPO inspector: the latest samples, sortable; one in full beside the reference answer; `h` marks it hacked.

Live samples come from the job's forwarded `Samples` events; a past run's come
from `store.samples.list_samples`. Marking a sample hacked calls
`store.samples.mark_hacked`, which commits a comparison (origin "hacked",
reference preferred) before the screen shows the mark, so the next reward
model learns from what was seen here.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tuilab.records import Sample
from tuilab.tui.live import POLICY_KINDS, LiveRun
from tuilab.tui.widgets.run_panels import WarningsView, composed, run_line
from tuilab.tui.widgets.samples import (
    SORT_KEYS,
    SampleDetail,
    SamplesTable,
    sort_samples,
)

TICK_SECONDS = 0.5  # 2 redraws a second at most, and only of what changed


class InspectScreen(Screen):
    """Read what the policy writes while it learns; mark what games the reward model."""

    HELP_TITLE = "Inspector"
    KEYS_HELP = [
        ("Sort (again: reverse)", [
            ("s", "score"), ("k", "KL to the reference"), ("l", "length"), ("d", "ensemble spread"),
            ("f", "number of flags"), ("g", "gold score"), ("t", "step (newest first)"),
        ]),
        ("Samples", [
            ("↑ ↓", "read another sample: prompt, answer, reference answer, numbers, flags"),
            ("h", "mark it hacked: stores “reference ≻ this answer” as a preference (origin hacked)"),
            ("n", "mark it hacked with a note"),
            ("r", "re-read the samples from the database"),
        ]),
    ]
    HELP_NOTES = ("Hacked marks become comparisons: the next reward model trained on this lab's data learns "
                  "to prefer the reference answer over the hacked one.")

    BINDINGS = [
        Binding("h", "hacked", "Mark hacked"),
        Binding("n", "hacked_note", "…with note"),
        Binding("r", "reload", "Reload"),
        # One footer entry for the five sort keys (the ? screen lists each).
        Binding("s", "sort('score')", "sort", key_display="s k l d f"),
        Binding("k", "sort('kl')", "KL", show=False),
        Binding("l", "sort('length')", "length", show=False),
        Binding("d", "sort('spread')", "spread", show=False),
        Binding("f", "sort('flags')", "flags", show=False),
        Binding("g", "sort('gold')", "gold", show=False),
        Binding("t", "sort('step')", "step", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._composed = False
        self.run_id: str | None = None
        self.sort_key = "step"
        self.descending = True
        self.hacked = 0
        self._shown: tuple | None = None
        self._message: Text = Text()
        self._resort = False
        self._chosen = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="insp-line", markup=False)
        yield Static("", id="insp-status", markup=False)
        yield WarningsView(id="insp-warnings")
        yield Static("No PPO run yet. Start one on the train screen (F3); its samples appear here as it learns.",
                     id="insp-empty", markup=False)
        with Horizontal(id="insp-body"):
            yield SamplesTable(id="insp-table")
            yield SampleDetail(id="insp-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_interval(TICK_SECONDS, self.tick)
        self._choose_run()
        self.call_after_refresh(self.tick)
        self._composed = True

    def on_screen_resume(self) -> None:
        if not self._composed:  # the first resume can arrive before compose; on_mount does this then
            return
        self._choose_run()
        self.call_after_refresh(self.tick)

    def on_resize(self) -> None:
        self.set_class(self.size.width < 110, "-narrow")
        self.set_class(self.size.height < 30, "-short")

    # ------------------------------------------------------------ which run

    def _choose_run(self) -> None:
        """The run asked for, else the live PPO/DPO run, else the newest PPO or DPO run in the database."""
        state = self.app.training
        wanted = state.inspect_run
        if wanted is None:
            active = self.app.training.active_run
            if active is not None and active.kind in POLICY_KINDS:
                wanted = active.run_id
        if wanted is None:
            from tuilab.store.runs import list_runs

            runs = [r for r in list_runs(self.app.db) if r.kind in POLICY_KINDS]
            wanted = runs[0].id if runs else None
        if wanted != self.run_id or not self._chosen:
            self._chosen = True
            self.show_run(wanted)

    def show_run(self, run_id: str | None) -> None:
        self.run_id = run_id
        self._shown = None
        self._message = Text()
        if run_id is not None and run_id != self.app.training.active:
            try:
                self.app.training.live_run(run_id, reload=True)
            except KeyError:
                self.run_id = None
        self._count_hacked()
        self.set_class(self.run_id is None, "-empty")

    def live(self) -> LiveRun | None:
        if self.run_id is None:
            return None
        try:
            return self.app.training.live_run(self.run_id)
        except KeyError:
            return None

    def _count_hacked(self) -> None:
        from tuilab.store.samples import hacked_count

        self.hacked = hacked_count(self.app.db, self.run_id) if self.run_id else 0

    # ------------------------------------------------------------ drawing

    def tick(self) -> None:
        if not composed(self, "#insp-table", "#sd-flags", "#insp-warnings"):
            return
        live = self.live()
        self.query_one("#insp-line", Static).update(run_line(live) if live else "")
        self._status_line()
        if live is None:
            return
        key = (live.run_id, len(live.samples), id(live.samples[-1]) if live.samples else None,
               self.sort_key, self.descending)
        if key != self._shown:
            self._shown = key
            table = self.query_one("#insp-table", SamplesTable)
            keep = None if self._resort else table.current()
            self._resort = False
            table.show(sort_samples(live.samples, self.sort_key, self.descending), keep)
            if keep is None:
                table.move_cursor(row=0, animate=False)
                self.query_one("#insp-detail", SampleDetail).show(table.current())
        self.query_one("#insp-warnings", WarningsView).set_warnings(live.warnings, limit=3)

    def _status_line(self) -> None:
        out = Text()
        arrow = "↓" if self.descending else "↑"
        live = self.live()
        n = len(live.samples) if live else 0
        out.append(f"{n} samples", style="bold")
        out.append(f" · sorted by {SORT_KEYS[self.sort_key]} {arrow}", style="dim")
        out.append(" · ", style="dim")
        out.append(f"hacked marks {self.hacked}", style="bold red" if self.hacked else "dim")
        if self._message:
            out.append("  │  ", style="dim")
            out.append_text(self._message)
        self.query_one("#insp-status", Static).update(out)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "insp-table" and composed(self, "#sd-flags"):
            self.query_one("#insp-detail", SampleDetail).show(self.query_one("#insp-table", SamplesTable).current())

    # ------------------------------------------------------------ actions

    def action_sort(self, key: str) -> None:
        if key == self.sort_key:
            self.descending = not self.descending
        else:
            self.sort_key, self.descending = key, True
        self._resort = True  # an explicit sort shows the top; new data keeps the reader's place
        self.tick()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in SORT_KEYS:
            self.action_sort(key)

    def action_reload(self) -> None:
        if self.run_id is not None:
            self.show_run(self.run_id)
            self.tick()

    def action_hacked(self) -> None:
        self._mark(note="")

    def action_hacked_note(self) -> None:
        sample = self.query_one("#insp-table", SamplesTable).current()
        if sample is None:
            return

        def done(note: str | None) -> None:
            if note is not None:
                self._mark(note=note, sample=sample)

        from tuilab.tui.screens.note import NoteScreen

        self.app.push_screen(NoteScreen("", "Mark hacked: a note",
                                        placeholder="why? e.g. 'long and wrong: Sydney is not the capital'"), done)

    def _mark(self, *, note: str, sample: Sample | None = None) -> None:
        """Record the comparison (committed on return), then show the mark."""
        from tuilab.store.samples import mark_hacked

        table = self.query_one("#insp-table", SamplesTable)
        sample = sample or table.current()
        if sample is None or self.run_id is None:
            return
        if sample.hacked:
            self._say(Text("already marked hacked", style="yellow"))
            return
        db = self.app.db
        if sample.id is None:  # only a sample the store has written carries its id
            self._say(Text("this sample is not in the database yet; try again in a moment", style="yellow"))
            return
        try:
            cid = mark_hacked(db, sample.id, note=note)
        except (ValueError, LookupError) as exc:
            self._say(Text(str(exc), style="red"))
            return
        sample.hacked = True
        table.refresh_sample(sample)
        self.query_one("#insp-detail", SampleDetail).show(sample)
        self._count_hacked()
        self._say(Text(f"marked hacked → comparison #{cid}, reference preferred", style="green"))

    def _say(self, message: Text) -> None:
        self._message = message
        self._status_line()
