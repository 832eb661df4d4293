"""The data screen: browse comparisons and prompts, filter, search, open, delete, re-label."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Select, Static, TabbedContent, TabPane

from tuilab.records import DECISIONS
from tuilab.tui.format import DECISION_LABELS

if TYPE_CHECKING:
    from tuilab.tui.app import TuilabApp

LIMIT = 500


def one_line(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# The tables' columns: (label, key).
COMPARISON_COLUMNS = (("#", "id"), ("decision", "decision"), ("sec", "sec"), ("when", "when"),
                      ("prompt", "prompt"))
PROMPT_COLUMNS = (("#", "id"), ("split", "split"), ("source", "source"), ("prompt", "prompt"))


class DataScreen(Screen):
    KEYS_HELP = [
        ("Browse", [
            ("enter", "open the selected comparison or prompt"),
            ("d  delete", "delete the selected comparison (asks first)"),
            ("/", "search prompt and response text"),
            ("ctrl+r", "reload"),
            ("tab", "move between the filter, the search box and the table"),
        ]),
        ("In an opened comparison", [
            ("1 2 ! @ t b s", "re-label it"),
            ("n", "edit its note"),
            ("d", "delete it"),
            ("m", "plain text / Markdown"),
        ]),
    ]
    HELP_NOTES = "The models that wrote each side are shown in an opened comparison: its decision is made."

    BINDINGS = [
        Binding("slash", "search", "Search", key_display="/"),
        Binding("d,delete", "delete", "Delete"),
        Binding("ctrl+r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._search_timer = None

    @property
    def lab(self) -> TuilabApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(icon="●")
        with TabbedContent(id="data-tabs", initial="tab-comparisons"):
            with TabPane("Comparisons", id="tab-comparisons"):
                with Horizontal(classes="filters"):
                    yield Select([(DECISION_LABELS[d], d) for d in DECISIONS], prompt="all decisions",
                                 id="cmp-decision", compact=True)
                    yield Input(placeholder="search prompts and responses", id="cmp-search", compact=True)
                yield DataTable(id="cmp-table", cursor_type="row", zebra_stripes=True)
                yield Static(id="cmp-count", classes="count", markup=False)
                yield Static(id="cmp-agreement", classes="count", markup=False)
            with TabPane("Prompts", id="tab-prompts"):
                with Horizontal(classes="filters"):
                    yield Select([("train", "train"), ("test", "test")], prompt="all splits",
                                 id="prompt-split", compact=True)
                    yield Input(placeholder="search prompts", id="prompt-search", compact=True)
                yield DataTable(id="prompt-table", cursor_type="row", zebra_stripes=True)
                yield Static(id="prompt-count", classes="count", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Data"
        cmp = self.query_one("#cmp-table", DataTable)
        for label, key in COMPARISON_COLUMNS:
            cmp.add_column(label, key=key)
        prompts = self.query_one("#prompt-table", DataTable)
        for label, key in PROMPT_COLUMNS:
            prompts.add_column(label, key=key)
        self.reload()
        cmp.focus()

    def on_screen_resume(self) -> None:
        self.reload()

    # ------------------------------------------------------------ loading

    def reload(self) -> None:
        self.load_comparisons()
        self.load_prompts()
        self.load_agreement()

    def load_agreement(self) -> None:
        """Labeler consistency (agreement of any two, self-agreement, biases), computed in a worker."""
        self.query_one("#cmp-agreement", Static).display = False
        self.run_worker(self._agreement_work, name="labeler agreement", group="agreement", thread=True,
                        exclusive=True, exit_on_error=False)

    def _agreement_work(self) -> None:
        from textual.worker import get_current_worker

        from tuilab.labeling.consistency import consistency
        from tuilab.store.db import open_db

        db = open_db(self.lab.paths.db)  # this thread's own connection
        try:
            report = consistency(db, resamples=200)
        finally:
            db.conn.close()
        # Shown when there is more to say than the label screen's strip: two labelers on the same pairs,
        # repeats decided, or enough picks for a bias interval.
        interesting = report.pairwise or any(
            r.repeats or (r.position is not None and r.position.n >= 10) for r in report.labelers.values())
        text = "\n".join(report.lines()) if interesting else ""
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_agreement, text)

    def _show_agreement(self, text: str) -> None:
        widget = self.query_one("#cmp-agreement", Static)
        widget.update(Text(text, style="dim"))
        widget.display = bool(text)

    def _value(self, widget_id: str) -> str | None:
        value = self.query_one(widget_id, Select).selection
        return None if value is None else str(value)

    def load_comparisons(self) -> None:
        from tuilab.store.comparisons import count_comparisons, list_comparisons

        decision = self._value("#cmp-decision")
        search = self.query_one("#cmp-search", Input).value.strip() or None
        db = self.lab.db
        rows = list_comparisons(db, decision=decision, search=search, limit=LIMIT)
        total = count_comparisons(db, decision=decision, search=search)
        table = self.query_one("#cmp-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for v in rows:
            c = v.comparison
            label = DECISION_LABELS.get(c.decision, c.decision)
            if c.strength >= 2:
                label += " ≫"
            if c.edited_id is not None:
                label += " ✎"
            table.add_row(
                str(c.id),
                label,
                "" if c.seconds is None else f"{c.seconds:.1f}",
                c.created_at[:16].replace("T", " "),
                one_line(v.prompt_text),
                key=str(c.id),
            )
        if rows:
            table.move_cursor(row=min(keep, len(rows) - 1))
        shown = f"{len(rows)} of {total}" if total > len(rows) else f"{total}"
        self.query_one("#cmp-count", Static).update(Text(
            f"{shown} comparisons · enter opens · d deletes" if total else
            "No comparisons match." if (decision or search) else "No comparisons yet: label some on F1.",
            style="dim"))

    def load_prompts(self) -> None:
        from tuilab.store.prompts import count_prompts, list_prompts

        split = self._value("#prompt-split")
        search = self.query_one("#prompt-search", Input).value.strip() or None
        db = self.lab.db
        rows = list_prompts(db, split=split, search=search, limit=LIMIT)
        total = count_prompts(db, split, search=search)
        table = self.query_one("#prompt-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for p in rows:
            turns = f" ({len(p.messages)} turns)" if len(p.messages) > 1 else ""
            table.add_row(str(p.id), p.split, p.source or "–", one_line(p.text) + turns, key=str(p.id))
        if rows:
            table.move_cursor(row=min(keep, len(rows) - 1))
        shown = f"{len(rows)} of {total}" if total > len(rows) else f"{total}"
        self.query_one("#prompt-count", Static).update(Text(f"{shown} prompts · enter opens", style="dim"))

    # ------------------------------------------------------------ events

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "cmp-decision":
            self.load_comparisons()
        elif event.select.id == "prompt-split":
            self.load_prompts()

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        target = self.load_comparisons if event.input.id == "cmp-search" else self.load_prompts
        self._search_timer = self.set_timer(0.2, target)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        if event.input.id == "cmp-search":
            self.load_comparisons()
            self.query_one("#cmp-table").focus()
        else:
            self.load_prompts()
            self.query_one("#prompt-table").focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is None:
            return
        if event.data_table.id == "cmp-table":
            self.open_comparison(int(key))
        else:
            from tuilab.tui.screens.detail import PromptScreen

            self.app.push_screen(PromptScreen(int(key)))

    def open_comparison(self, cid: int) -> None:
        from tuilab.tui.screens.detail import ComparisonScreen

        def done(changed: bool | None) -> None:
            if changed:
                self.load_comparisons()

        self.app.push_screen(ComparisonScreen(cid), done)

    # ------------------------------------------------------------ actions

    def _selected_comparison(self) -> int | None:
        table = self.query_one("#cmp-table", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    def action_search(self) -> None:
        tabs = self.query_one(TabbedContent)
        target = "#cmp-search" if tabs.active == "tab-comparisons" else "#prompt-search"
        self.query_one(target, Input).focus()

    def action_reload(self) -> None:
        self.reload()

    def action_delete(self) -> None:
        from tuilab.store.comparisons import delete_comparison
        from tuilab.tui.screens.confirm import ConfirmScreen

        if self.query_one(TabbedContent).active != "tab-comparisons":
            self.notify("Prompts are not deleted here (their comparisons would go with them).",
                        severity="warning", timeout=3)
            return
        cid = self._selected_comparison()
        if cid is None:
            return

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_comparison(self.lab.db, cid)
            except Exception as exc:  # noqa: BLE001
                self.lab.report_error("Delete", f"{type(exc).__name__}: {exc}")
                return
            self.notify(f"#{cid} deleted", timeout=2)
            self.load_comparisons()

        self.app.push_screen(ConfirmScreen(f"Delete comparison #{cid}? Its responses stay stored."), done)
