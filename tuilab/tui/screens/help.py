"""The `?` screen: the keys of the screen it was opened from, then the lab-wide keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown, Static

from tuilab.tui.modes import LAB_MODES

GLOBAL_HELP = """\
### Everywhere

| key | |
|---|---|
{modes}
| `ctrl+p` | command palette: screens, candidate sources, themes, Markdown toggle |
| `?` | this help (again, or `esc`, to close) |
| `ctrl+q` | quit (every decision is already saved) |
"""


def help_markdown(screen: Screen | None) -> str:
    modes = "\n".join(f"| `{m.key.upper()}` | {m.title}: {m.description} |" for m in LAB_MODES)
    own = getattr(screen, "HELP", "") if screen is not None else ""
    title = getattr(screen, "HELP_TITLE", None) or (type(screen).__name__ if screen is not None else "")
    head = f"## {title} screen\n\n{own}\n" if own else ""
    return head + GLOBAL_HELP.format(modes=modes)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", priority=True),
    ]

    def __init__(self, for_screen: Screen | None = None) -> None:
        super().__init__()
        self.text = help_markdown(for_screen)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            with VerticalScroll(id="help-scroll"):
                yield Markdown(self.text, id="help-text")
            yield Static("esc or ? closes · ↑ ↓ scroll", id="help-hint")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
