"""A yes/no question (deleting a comparison)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", priority=True),
        Binding("n,escape", "answer(False)", "No", priority=True),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Static(Text(self.question, style="bold"), id="confirm-question")
            yield Static(Text.assemble(("y", "bold"), " / enter: yes · ", ("n", "bold"), " / esc: no"),
                         id="confirm-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
