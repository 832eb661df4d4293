"""A one-line rationale note (why this decision), stored with the comparison."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class NoteScreen(ModalScreen[str | None]):
    """Returns the note (possibly empty, to clear it) on enter, None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", priority=True)]

    def __init__(self, initial: str = "", title: str = "Note") -> None:
        super().__init__()
        self.initial = initial
        self.heading = title

    def compose(self) -> ComposeResult:
        with Vertical(id="note-dialog", classes="dialog"):
            yield Static(Text(self.heading, style="bold"), id="note-title")
            yield Input(self.initial, placeholder="why? e.g. 'right is correct but too long'", id="note-input")
            yield Static(Text.assemble(("enter", "bold"), " save · ", ("esc", "bold"), " cancel"),
                         id="note-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
