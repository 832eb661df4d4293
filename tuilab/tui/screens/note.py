"""A one-line note: the rationale of a decision, or why a PPO sample is marked hacked."""

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

    def __init__(self, initial: str = "", title: str = "Note", *,
                 placeholder: str = "why? e.g. 'right is correct but too long'") -> None:
        super().__init__()
        self.initial = initial
        self.heading = title
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="note-dialog", classes="dialog"):
            yield Static(Text(self.heading, style="bold"), id="note-title")
            # The cursor at the end, nothing selected: a stray key adds to a stored note instead of replacing it.
            yield Input(self.initial, placeholder=self.placeholder, id="note-input", select_on_focus=False)
            yield Static(Text.assemble(("enter", "bold"), " save · ", ("ctrl+u", "bold"), " clear · ",
                                       ("esc", "bold"), " cancel"),
                         id="note-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
