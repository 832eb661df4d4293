"""The yes/no dialog on its own: the question shown, each key's answer (the data screens use it to delete)."""

from __future__ import annotations

import pytest
from tuihelp import modal_host, wait_for

from tuilab.tui.screens.confirm import ConfirmScreen


@pytest.mark.parametrize(("key", "answer"), [("y", True), ("enter", True), ("n", False), ("escape", False)])
async def test_each_key_answers_and_closes_the_dialog(key, answer):
    app = modal_host()
    async with app.run_test(size=(80, 24)) as pilot:
        app.ask(ConfirmScreen("Delete comparison #7? Its responses stay stored."))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press(key)
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.results == [answer]


async def test_the_question_and_the_keys_are_shown_and_other_keys_do_nothing():
    app = modal_host()
    async with app.run_test(size=(80, 24)) as pilot:
        app.ask(ConfirmScreen("Delete comparison #7?"))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        dialog = app.screen
        assert str(dialog.query_one("#confirm-question").render()).strip() == "Delete comparison #7?"
        hint = str(dialog.query_one("#confirm-hint").render())
        assert "y / enter: yes" in hint and "n / esc: no" in hint
        await pilot.press("x", "d", "space")
        assert app.screen is dialog and app.results == []  # only an answer closes it
