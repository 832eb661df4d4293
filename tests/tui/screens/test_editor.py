"""The edit dialog on its own: which side it starts from, switching sides, saving, refusing an empty edit.

(What the label screen records from its result: test_label.py.)
"""

from __future__ import annotations

from textual.widgets import TextArea
from tuihelp import modal_host, wait_for

from tuilab.tui.screens.editor import EditResult, EditScreen

LEFT = "Paris is the capital."
RIGHT = "The capital of France is Paris, on the Seine."


async def open_editor(pilot, editor: EditScreen) -> EditScreen:
    pilot.app.ask(editor)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, EditScreen))
    return pilot.app.screen


def title(editor: EditScreen) -> str:
    return str(editor.query_one("#edit-title").render())


async def test_starts_from_the_base_side_and_saves_the_text_without_trailing_space():
    app = modal_host()
    async with app.run_test(size=(100, 30)) as pilot:
        editor = await open_editor(pilot, EditScreen(LEFT, RIGHT, base="right"))
        area = editor.query_one(TextArea)
        assert area.text == RIGHT and editor.focused is area
        assert "Edit the right response" in title(editor)
        area.load_text("The capital of France is Paris.\n\n  ")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.results == [EditResult("The capital of France is Paris.", "right")])
        assert not isinstance(app.screen, EditScreen)


async def test_ctrl_t_starts_again_from_the_other_side_and_says_when_changes_are_replaced():
    app = modal_host()
    async with app.run_test(size=(100, 30)) as pilot:
        editor = await open_editor(pilot, EditScreen(LEFT, RIGHT))
        area = editor.query_one(TextArea)
        assert area.text == LEFT and "Edit the left response" in title(editor)
        await pilot.press("ctrl+t")  # nothing typed yet: nothing lost, nothing said
        assert area.text == RIGHT and editor.base == "right" and "Edit the right response" in title(editor)
        assert not app._notifications
        area.load_text("my own words")
        await pilot.press("ctrl+t")
        assert area.text == LEFT and editor.base == "left"
        assert [n.message for n in app._notifications] == [
            "Your changes to this side were replaced by the other side's text."]
        await pilot.press("ctrl+s")  # unchanged text: still a result, from the side it now starts from
        await wait_for(pilot, lambda: app.results == [EditResult(LEFT, "left")])


async def test_an_empty_edit_is_refused_in_words_and_the_dialog_stays():
    app = modal_host()
    async with app.run_test(size=(100, 30)) as pilot:
        editor = await open_editor(pilot, EditScreen(LEFT, RIGHT))
        assert str(editor.query_one("#edit-error").render()).strip() == ""
        editor.query_one(TextArea).load_text(" \n\t ")
        await pilot.press("ctrl+s")
        assert app.screen is editor and app.results == []
        error = str(editor.query_one("#edit-error").render())
        assert "The edit is empty. Write a response, or press esc to cancel." in error
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.results == [None])
