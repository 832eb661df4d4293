"""The ? screen's title: a screen's own, else its lab mode's, else its class name."""

from __future__ import annotations

from textual.screen import Screen

from tuilab.tui.modes import LAB_MODES
from tuilab.tui.screens.help import help_sections, screen_title
from tuilab.tui.screens.inspect import InspectScreen
from tuilab.tui.screens.label import LabelScreen


def test_a_mode_screen_is_titled_as_its_mode_unless_it_names_itself():
    assert screen_title(LabelScreen()) == "Label" == next(m.title for m in LAB_MODES if m.name == "label")
    assert screen_title(InspectScreen()) == "Inspector"  # its own HELP_TITLE wins
    assert screen_title(Screen()) == "Screen"
    assert screen_title(None) == ""


def test_help_sections_end_with_the_lab_wide_keys():
    title, sections, notes = help_sections(InspectScreen())
    assert title == "Inspector" and notes == InspectScreen.HELP_NOTES
    assert sections[:-1] == InspectScreen.KEYS_HELP and sections[-1][0] == "Everywhere"
