"""The data screen: browse, filter, search, open, delete (the opened comparison: test_detail.py)."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Select
from tuihelp import add_comparisons, data_app, make_app, open_data, rows, table_ids, wait_for

from tuilab.tui.screens.confirm import ConfirmScreen
from tuilab.tui.screens.detail import PromptScreen


async def test_lists_comparisons_newest_first_and_filters_by_decision(lab):
    ids = add_comparisons(lab, [(0, "left"), (1, "right"), (2, "tie"), (3, "left")])
    app = data_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_data(pilot)
        assert table_ids(screen) == ids[::-1]
        screen.query_one("#cmp-decision", Select).value = "left"
        await pilot.pause()
        assert table_ids(screen) == [ids[3], ids[0]]
        assert "2 comparisons" in str(screen.query_one("#cmp-count").render())


async def test_search_matches_prompt_and_response_text(lab):
    ids = add_comparisons(lab, [(0, "left"), (1, "right"), (4, "tie")])
    app = data_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_data(pilot)
        await pilot.press("slash")
        assert screen.focused is screen.query_one("#cmp-search", Input)
        await pilot.press(*"rainbow", "enter")
        assert table_ids(screen) == [ids[1]]
        await pilot.press("slash")
        screen.query_one("#cmp-search", Input).value = "answer number 2"
        await pilot.press("enter")
        assert table_ids(screen) == [ids[2]]
        await pilot.press("slash")
        screen.query_one("#cmp-search", Input).value = "no such text anywhere"
        await pilot.press("enter")
        assert table_ids(screen) == []
        assert "No comparisons match" in str(screen.query_one("#cmp-count").render())


async def test_delete_asks_first(lab):
    ids = add_comparisons(lab, [(0, "left"), (1, "right")])
    app = data_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_data(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        assert len(rows(lab, "SELECT id FROM comparisons")) == 2
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen)
        assert rows(lab, "SELECT id FROM comparisons") == [(ids[0],)]
        assert table_ids(screen) == [ids[0]]
        # Its responses stay stored.
        assert rows(lab, "SELECT count(*) FROM generations") == [(4,)]


async def test_prompts_tab_search_and_open(lab):
    app = data_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_data(pilot)
        screen.query_one("#data-tabs").active = "tab-prompts"
        await pilot.pause()
        assert len(table_ids(screen, "#prompt-table")) == 10
        await pilot.press("slash", *"build first", "enter")
        (pid,) = table_ids(screen, "#prompt-table")
        assert "(4 turns)" in screen.query_one("#prompt-table", DataTable).get_row_at(0)[3]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        assert f"Prompt #{pid}" in str(app.screen.query_one("#prompt-meta").render())
        await pilot.press("escape")
        assert app.screen is screen


async def test_new_labels_show_up_when_switching_to_data(lab):
    app = make_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.current is not None)
        await pilot.press("1", "f2")
        screen = await open_data(pilot)
        assert len(table_ids(screen)) == 1
        await pilot.press("f1")
        await wait_for(pilot, lambda: app.screen.current is not None)
        await pilot.press("t", "f2")
        await wait_for(pilot, lambda: len(table_ids(screen)) == 2)
