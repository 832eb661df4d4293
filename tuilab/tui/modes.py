"""The lab's screens (Textual modes) and the keys that switch to them.

To add a screen: write a `Screen` subclass (give it a `KEYS_HELP` list of key sections for the
`?` screen), then add one `ModeSpec` line below. The App builds `MODES` and the
switching bindings from this list, and imports a screen's module only when it is
first shown, so start-up stays fast. F3 train, F4 runs and F5 inspect are reserved
for the training screens.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class ModeSpec:
    name: str  # mode name, e.g. "label"
    key: str  # key that switches to it, e.g. "f1"
    title: str  # shown in the header, the command palette and the ? screen
    screen: str  # "package.module:ScreenClass", imported lazily
    description: str = ""


LAB_MODES: list[ModeSpec] = [
    ModeSpec("label", "f1", "Label", "tuilab.tui.screens.label:LabelScreen",
             "Compare two responses and record which is better"),
    ModeSpec("data", "f2", "Data", "tuilab.tui.screens.data:DataScreen",
             "Browse prompts and comparisons; delete or re-label"),
    ModeSpec("train", "f3", "Train", "tuilab.tui.screens.train:TrainScreen",
             "Train a reward model or run PPO; watch live charts"),
    ModeSpec("runs", "f4", "Runs", "tuilab.tui.screens.runs:RunsScreen",
             "Every run: status, curves, errors; compare two reward models"),
    ModeSpec("inspect", "f5", "Inspect", "tuilab.tui.screens.inspect:InspectScreen",
             "Read PPO samples beside the reference; mark reward hacking"),
]


def screen_factory(spec: ModeSpec) -> Callable[[], Screen]:
    """A zero-argument callable for `App.MODES` that imports the screen on first use."""

    def make() -> Screen:
        module_name, _, class_name = spec.screen.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        return cls()

    make.__name__ = f"make_{spec.name}_screen"
    return make
