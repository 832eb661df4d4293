"""The lab's screens as modes: one `ModeSpec` line each, imported only when first shown."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from textual.screen import Screen

from tuilab.tui.modes import LAB_MODES, ModeSpec, screen_factory


def test_every_mode_names_a_screen_class_with_keys_help_and_a_description():
    for spec in LAB_MODES:
        module_name, _, class_name = spec.screen.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        assert issubclass(cls, Screen), spec
        assert cls.KEYS_HELP, f"{spec.screen} has no KEYS_HELP for the ? screen"
        assert spec.title and spec.description, spec


def test_names_and_keys_are_unique_and_f3_to_f5_are_the_training_screens():
    assert len({m.name for m in LAB_MODES}) == len({m.key for m in LAB_MODES}) == len(LAB_MODES)
    keys = {m.key: m.name for m in LAB_MODES}
    assert (keys["f1"], keys["f2"], keys["f3"], keys["f4"], keys["f5"]) == ("label", "data", "train", "runs",
                                                                            "inspect")


def test_the_factory_makes_a_fresh_screen_each_call_and_is_named_for_its_mode():
    spec = next(m for m in LAB_MODES if m.name == "runs")
    make = screen_factory(spec)
    assert make.__name__ == "make_runs_screen"
    first, second = make(), make()
    assert type(first).__name__ == "RunsScreen" and first is not second


def test_a_wrong_screen_path_fails_when_the_mode_is_first_shown_naming_what_is_missing():
    missing_module = screen_factory(ModeSpec("x", "f9", "X", "tuilab.tui.screens.no_such_screen:XScreen"))
    with pytest.raises(ModuleNotFoundError, match="tuilab.tui.screens.no_such_screen"):
        missing_module()
    missing_class = screen_factory(ModeSpec("y", "f10", "Y", "tuilab.tui.screens.label:NoSuchScreen"))
    with pytest.raises(AttributeError, match="NoSuchScreen"):
        missing_class()


def test_building_the_factories_imports_no_screen():
    """Start-up stays fast: a screen's module is imported when its mode is first shown, not before."""
    code = (
        "import sys\n"
        "from tuilab.tui.modes import LAB_MODES, screen_factory\n"
        "makers = {m.name: screen_factory(m) for m in LAB_MODES}\n"
        "print(sorted(n for n in sys.modules if n.startswith('tuilab.tui.screens.')))\n"
        "makers['data']()\n"
        "print('tuilab.tui.screens.data' in sys.modules, 'tuilab.tui.screens.runs' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "True False"]


def test_the_app_has_one_mode_and_one_switching_key_per_spec():
    from tuilab.tui.app import TuilabApp

    assert set(TuilabApp.MODES) == {m.name for m in LAB_MODES}
    switches = {b.key: b.action for b in TuilabApp.BINDINGS if b.action.startswith("switch_mode")}
    assert switches == {m.key: f"switch_mode('{m.name}')" for m in LAB_MODES}
