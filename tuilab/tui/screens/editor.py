"""The edit dialog: rewrite the better response; the rewrite is preferred over both."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea


@dataclass
class EditResult:
    text: str
    base: str  # "left" or "right": the response the edit started from (recorded as better)


class EditScreen(ModalScreen[EditResult | None]):
    """A TextArea pre-filled with one side. Saving returns the text; cancelling returns None."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),
        Binding("ctrl+t", "other_side", "Start from other side", priority=True),
    ]

    def __init__(self, left: str, right: str, base: str = "left") -> None:
        super().__init__()
        self.texts = {"left": left, "right": right}
        self.base = base

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-dialog", classes="dialog"):
            yield Static(id="edit-title", markup=False)
            yield TextArea(self.texts[self.base], id="edit-text", soft_wrap=True, tab_behavior="indent")
            yield Static(id="edit-error", markup=False)
            yield Static(
                Text.assemble(("ctrl+s", "bold"), " save (recorded as: edit ≻ both, ",
                              "base side better) · ", ("ctrl+t", "bold"), " start from the other side · ",
                              ("esc", "bold"), " cancel (nothing recorded)"),
                id="edit-hint",
            )

    def on_mount(self) -> None:
        self._title()
        self.query_one(TextArea).focus()

    def _title(self) -> None:
        self.query_one("#edit-title", Static).update(
            Text.assemble(("Edit ", "bold"), (f"the {self.base} response", "bold reverse"),
                          " — your text becomes a new response, preferred over both")
        )

    def action_other_side(self) -> None:
        area = self.query_one(TextArea)
        if area.text != self.texts[self.base]:
            self.notify("Your changes to this side were replaced by the other side's text.", timeout=3)
        self.base = "right" if self.base == "left" else "left"
        area.load_text(self.texts[self.base])
        self._title()

    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        if not text.strip():
            self.query_one("#edit-error", Static).update(
                Text("The edit is empty. Write a response, or press esc to cancel.", style="bold red")
            )
            return
        self.dismiss(EditResult(text.rstrip(), self.base))

    def action_cancel(self) -> None:
        self.dismiss(None)
