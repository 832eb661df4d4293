"""The PPO / DPO inspector: the latest samples, sortable; one in full beside the reference answer; `h` marks it hacked.

Live samples come from the job's forwarded `Samples` events; a past run's come
from `store.samples.list_samples`. Marking a sample hacked calls
`store.samples.mark_hacked`, which commits a comparison (origin "hacked",
reference preferred) before the screen shows the mark, so the next reward
model learns from what was seen here. A run keeps the reference answer only
every `sample_every`-th step; for the other samples `h` first samples it in a
worker (`labeling.references`: the run's base model, adapters off, at the run's
temperature and token cap), stores it on the sample, then marks.
"""

from __future__ import annotations

import contextlib
from typing import Any

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

# The sort keys: (key, what it sorts by, what the ? screen says of it).
SORTS = (
    ("s", "score", "score"),
    ("k", "kl", "KL to the reference"),
    ("l", "length", "length"),
    ("d", "spread", "ensemble spread"),
    ("f", "flags", "number of flags"),
    ("g", "gold", "gold score"),
    ("t", "step", "step (newest first)"),
)


class InspectScreen(Screen):
    """Read what the policy writes while it learns; mark what games the reward model."""

    HELP_TITLE = "Inspector"
    KEYS_HELP = [
        ("Sort (again: reverse)", [(key, said) for key, _, said in SORTS]),
        ("Samples", [
            ("↑ ↓", "read another sample: prompt, answer, reference answer, numbers, flags"),
            ("h", "mark it hacked: stores “reference ≻ this answer” as a preference (origin hacked); on a "
                  "step the run kept no reference answer for, one is sampled first (base model, adapters off)"),
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
        *(Binding(key, f"sort('{by}')", SORT_KEYS[by], show=False) for key, by, _ in SORTS[1:]),
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
        self._status_fits = True
        self._sampling: set[int] = set()  # sample ids whose reference answer a worker is sampling
        self._hosts: dict[tuple[str, bool], Any] = {}  # this screen's own ModelHosts, by (base model, 4-bit)

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
        widget = self.query_one("#insp-status", Static)
        fits = True
        if self._message:
            # A long message (a failure says what to do) goes on lines of its own rather than off the edge.
            fits = len(out.plain) + 5 + len(self._message.plain) <= max(20, self.size.width - 2)
            out.append("  │  " if fits else "\n", style="dim")
            out.append_text(self._message)
        if fits != self._status_fits:  # a layout change only when it flips
            self._status_fits = fits
            widget.styles.height = 1 if fits else "auto"
        widget.update(out)

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
        if sample.id is not None and sample.id in self._sampling:
            self._mark(note="", sample=sample)  # says it is still sampling; asks for no note
            return

        def done(note: str | None) -> None:
            if note is not None:
                self._mark(note=note, sample=sample)

        from tuilab.tui.screens.note import NoteScreen

        self.app.push_screen(NoteScreen("", "Mark hacked: a note",
                                        placeholder="why? e.g. 'long and wrong: Sydney is not the capital'"), done)

    def _mark(self, *, note: str, sample: Sample | None = None) -> None:
        """Record the comparison (committed on return), then show the mark.

        A sample from a step the run kept no reference answer for gets one sampled first,
        in a worker (`_sample_reference`); the mark follows when it arrives.
        """
        from tuilab.store.samples import get_sample

        table = self.query_one("#insp-table", SamplesTable)
        sample = sample or table.current()
        if sample is None or self.run_id is None:
            return
        if sample.hacked:
            self._say(Text("already marked hacked", style="yellow"))
            return
        if sample.id is None:  # only a sample the store has written carries its id
            self._say(Text("this sample is not in the database yet; try again in a moment", style="yellow"))
            return
        if sample.id in self._sampling:
            self._say(Text(f"still sampling the reference answer for sample {sample.id}; it is marked when the "
                           "answer arrives", style="yellow"))
            return
        if not sample.ref_response:
            try:  # `data mark-hacked` may have stored one (or marked it) since this screen read the row
                stored = get_sample(self.app.db, sample.id)
            except (ValueError, LookupError) as exc:
                self._say(Text(str(exc), style="red"))
                return
            if stored.hacked:
                sample.hacked = True
                self._show_sample(sample)
                self._count_hacked()
                self._say(Text("already marked hacked", style="yellow"))
                return
            if not stored.ref_response:
                self._sample_reference(sample, note)
                return
            sample.ref_response = stored.ref_response
        self._write_mark(sample, note)

    def _write_mark(self, sample: Sample, note: str) -> None:
        from tuilab.store.samples import mark_hacked

        assert sample.id is not None
        try:
            cid = mark_hacked(self.app.db, sample.id, note=note)
        except (ValueError, LookupError) as exc:
            self._say(Text(str(exc), style="red"))
            return
        sample.hacked = True
        self._show_sample(sample)
        self._count_hacked()
        self._say(Text(f"marked hacked → comparison #{cid}, reference preferred", style="green"))

    def _show_sample(self, sample: Sample) -> None:
        """Redraw `sample`'s row, and the detail pane when it is the one shown there.

        Matched by id: a reload (`r`) while a reference was being sampled put fresh objects in the table.
        """
        table = self.query_one("#insp-table", SamplesTable)
        for row in table.samples:
            if row is sample or (sample.id is not None and row.id == sample.id):
                row.hacked, row.ref_response = sample.hacked, sample.ref_response
                table.refresh_sample(row)
                if table.current() is row:
                    self.query_one("#insp-detail", SampleDetail).show(row)

    # ------------------------------------------------------------ a missing reference answer

    def _sample_reference(self, sample: Sample, note: str) -> None:
        """Sample the reference policy's answer in a worker; `_reference_ready` stores it and marks."""
        from tuilab.labeling.references import base_model, host_for
        from tuilab.store.prompts import get_prompt
        from tuilab.store.runs import RunNotFound, get_run

        assert sample.id is not None
        run_id = sample.run_id or self.run_id
        try:
            run = get_run(self.app.db, run_id)
            if sample.prompt_id is None:
                raise ValueError(f"sample {sample.id}: its prompt was deleted, so no comparison can be recorded")
            messages = get_prompt(self.app.db, sample.prompt_id).messages
        except (RunNotFound, ValueError, LookupError) as exc:
            self._say(Text(str(exc), style="red"))
            return
        config = dict(run.config or {})
        base = base_model(config)
        if not base:
            self._say(Text(f"sample {sample.id} has no reference answer and run {run.id} does not name its base "
                           "model, so none can be sampled; nothing was marked", style="red"))
            return
        shared = self._app_host()
        host = self._hosts.get((base, bool(config.get("four_bit", False))))
        if host is None:
            host = host_for(config, self.app.paths.models, shared)
            if host is not shared:  # kept for the next h; dropped when the screen goes
                self._hosts[(base, host.four_bit)] = host
        self._sampling.add(sample.id)
        self._say(Text(f"sampling the reference answer for sample {sample.id} from {base} (adapters off), "
                       "then marking it …", style="yellow"))
        self.run_worker(lambda: self._reference_work(sample, note, host, messages, config),
                        name="reference answer", group="references", thread=True, exit_on_error=False)

    def _app_host(self) -> Any:
        """The App's shared ModelHost (`TuilabApp.shared_host`); None in an App without one."""
        shared_host = getattr(self.app, "shared_host", None)
        return shared_host() if shared_host is not None else None

    def _reference_work(self, sample: Sample, note: str, host, messages, config: dict) -> None:
        """Worker thread: the model's only use from this screen. Every outcome goes back to the UI thread."""
        from textual.worker import get_current_worker

        from tuilab.labeling.references import sample_references

        worker = get_current_worker()

        def tell(fn, *args) -> None:
            if worker.is_cancelled:
                return
            with contextlib.suppress(RuntimeError):  # the app closed meanwhile: nothing written, nothing to show
                self.app.call_from_thread(fn, *args)

        def progress(text: str, *counts) -> None:
            if not counts:  # phases (loading, sampling), not each decoded token
                tell(self._say, Text(f"sample {sample.id}: {text} …", style="yellow"))

        try:
            text = sample_references(host, [messages], config, progress=progress,
                                     stop=lambda: worker.is_cancelled)[0]
        except Exception as exc:  # noqa: BLE001 - shown in the status line; nothing was written
            tell(self._reference_failed, sample, exc)
            return
        tell(self._reference_ready, sample, note, text)

    def _reference_ready(self, sample: Sample, note: str, text: str) -> None:
        """UI thread: store the reference answer on the sample, then the same write as any `h`."""
        from tuilab.store.samples import set_reference

        assert sample.id is not None
        self._sampling.discard(sample.id)
        if not text:
            self._say(Text(f"the reference policy answered nothing for sample {sample.id}; press h to sample "
                           "again", style="yellow"))
            return
        try:
            set_reference(self.app.db, sample.id, text)
        except (ValueError, LookupError) as exc:
            self._say(Text(str(exc), style="red"))
            return
        sample.ref_response = text
        self._write_mark(sample, note)

    def _reference_failed(self, sample: Sample, exc: BaseException) -> None:
        self._sampling.discard(sample.id)
        why = str(exc).strip() or type(exc).__name__
        if not isinstance(exc, (FileNotFoundError, LookupError, ValueError, OSError, InterruptedError)):
            why = f"{type(exc).__name__}: {why}"
            report = getattr(self.app, "report_error", None)
            if report is not None:
                import traceback

                report("Inspector", why, "".join(traceback.format_exception(exc)), notify=False)
        self._say(Text(f"could not sample a reference answer for sample {sample.id}, so it is not marked: {why}",
                       style="red"))

    def on_unmount(self) -> None:
        for host in self._hosts.values():  # waits for a decode in flight (its lock), then frees the model
            host.close()
        self._hosts.clear()

    def _say(self, message: Text) -> None:
        self._message = message
        self._status_line()
