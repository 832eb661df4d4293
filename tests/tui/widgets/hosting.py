"""A small App that mounts the widgets under test with the lab's stylesheet (nothing else of the lab).

`paths` is set for widgets that open the lab database themselves (the audit panel).
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.widget import Widget

from tuilab import tui
from tuilab.config import LabPaths


class Host(App):
    CSS_PATH = Path(tui.__file__).with_name("app.tcss")  # the lab's one stylesheet

    def __init__(self, *widgets: Widget, home: Path | None = None) -> None:
        super().__init__()
        self._widgets = widgets
        self.paths = LabPaths(home) if home is not None else None

    def compose(self) -> ComposeResult:
        yield from self._widgets

