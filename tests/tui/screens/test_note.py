"""The one-line note dialog on its own: what it shows, what enter and escape return.

(What a note changes is the host's business: test_label.py, test_detail.py, test_inspect.py.)
"""

from __future__ import annotations

from textual.widgets import Input
from tuihelp import modal_host, wait_for

from tuilab.tui.screens.note import NoteScreen


async def open_note(pilot, note: NoteScreen) -> NoteScreen:
    pilot.app.ask(note)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, NoteScreen))
    return pilot.app.screen


async def test_enter_returns_the_note_stripped_and_the_input_has_focus():
    app = modal_host()
    async with app.run_test(size=(80, 24)) as pilot:
        note = await open_note(pilot, NoteScreen())
        field = note.query_one(Input)
        assert note.focused is field and field.value == ""
        assert field.placeholder == "why? e.g. 'right is correct but too long'"
        assert str(note.query_one("#note-title").render()).strip() == "Note"
        await pilot.press(*"  too long  ", "enter")
        await wait_for(pilot, lambda: app.results == ["too long"])
        assert not isinstance(app.screen, NoteScreen)


async def test_the_initial_note_can_be_extended_replaced_or_cleared():
    app = modal_host()
    async with app.run_test(size=(80, 24)) as pilot:
        note = await open_note(pilot, NoteScreen("clearer", "Note on decision #3", placeholder="why?"))
        field = note.query_one(Input)
        assert field.value == "clearer" and field.placeholder == "why?"
        assert str(note.query_one("#note-title").render()).strip() == "Note on decision #3"
        # The initial note opens with the cursor at its end: typing straight away adds to it.
        await pilot.press("comma", *" and shorter", "enter")
        await wait_for(pilot, lambda: app.results == ["clearer, and shorter"])
        note = await open_note(pilot, NoteScreen("clearer"))
        assert "ctrl+u clear" in str(note.query_one("#note-hint").render())
        await pilot.press("ctrl+u", *"wrong", "enter")
        await wait_for(pilot, lambda: app.results[1:] == ["wrong"])
        note = await open_note(pilot, NoteScreen("clearer"))
        note.query_one(Input).value = "   "
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.results) == 3)
        assert app.results[2] == ""  # an empty note: clear the stored one (not None: that is "cancelled")


async def test_escape_returns_none_whatever_was_typed():
    app = modal_host()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_note(pilot, NoteScreen("kept"))
        await pilot.press("x", "y", "escape")
        await wait_for(pilot, lambda: app.results == [None])
        assert not isinstance(app.screen, NoteScreen)
