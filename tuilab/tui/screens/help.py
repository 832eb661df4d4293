"""The `?` screen: the keys of the screen it was opened from, then the lab-wide keys.

A screen describes its keys with a `KEYS_HELP` list of sections, each `(title, [(keys,
what), ...])`, and optionally `HELP_NOTES` (a paragraph) and `HELP_TITLE` (a lab mode's screen
is titled as its mode). A screen that only has Textual's `HELP` (a Markdown string) gets that
rendered instead.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from tuilab.tui.modes import LAB_MODES

HelpSection = tuple[str, list[tuple[str, str]]]


def global_help() -> HelpSection:
    keys = [(m.key.upper(), f"{m.title}: {m.description}") for m in LAB_MODES]
    keys += [
        ("ctrl+p", "command palette: screens, candidate sources, themes, Markdown"),
        ("?", "this help (? or esc closes it)"),
        ("ctrl+q", "quit (every decision is already saved)"),
    ]
    return ("Everywhere", keys)


def screen_title(screen: Screen | None) -> str:
    """Its `HELP_TITLE`, else the title of the lab mode it is (`modes.LAB_MODES`), else its class name."""
    if screen is None:
        return ""
    cls = type(screen)
    mode = next((m for m in LAB_MODES if m.screen == f"{cls.__module__}:{cls.__name__}"), None)
    return getattr(screen, "HELP_TITLE", None) or (mode.title if mode else cls.__name__)


def help_sections(screen: Screen | None) -> tuple[str, list[HelpSection], str]:
    """(title, sections, notes) for `screen`, the lab-wide keys last."""
    title = screen_title(screen)
    own = list(getattr(screen, "KEYS_HELP", []) or [])
    return title, [*own, global_help()], getattr(screen, "HELP_NOTES", "")


def markdown_help(screen: Screen | None) -> str:
    """Textual's `HELP` Markdown of a screen without `KEYS_HELP` ('' otherwise)."""
    if screen is None or getattr(screen, "KEYS_HELP", None):
        return ""
    text = getattr(screen, "HELP", None)
    return text if isinstance(text, str) else ""


def help_renderable(title: str, sections: list[HelpSection], notes: str, markdown: str = "") -> Group:
    parts: list = []
    if markdown:
        from rich.markdown import Markdown

        parts.append(Markdown(markdown))
    elif title:
        parts.append(Text(f"{title} screen", style="bold underline"))
    key_width = max((len(k) for _, keys in sections for k, _ in keys), default=4)
    for heading, keys in sections:
        parts.append(Text(f"\n{heading}", style="bold"))
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 1), expand=True)
        table.add_column("keys", style="bold cyan", no_wrap=True, min_width=key_width)
        table.add_column("what", ratio=1)
        for k, what in keys:
            table.add_row(k, what)
        parts.append(table)
    if notes:
        parts.append(Text(f"\n{notes}", style="italic"))
    return Group(*parts)


def help_text(title: str, sections: list[HelpSection], notes: str) -> str:
    """The same content as plain text (tests, and `tuilab --help`-style dumps)."""
    lines = [title]
    for heading, keys in sections:
        lines.append(heading)
        lines += [f"  {k}  {what}" for k, what in keys]
    if notes:
        lines.append(notes)
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", priority=True),
    ]

    def __init__(self, for_screen: Screen | None = None) -> None:
        super().__init__()
        self.title_, self.sections, self.notes = help_sections(for_screen)
        self.markdown = markdown_help(for_screen)
        self.text = self.markdown + help_text(self.title_, self.sections, self.notes)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            with VerticalScroll(id="help-scroll"):
                yield Static(help_renderable(self.title_, self.sections, self.notes, self.markdown),
                             id="help-text")
            yield Static("esc or ? closes · ↑ ↓ scroll", id="help-hint")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
