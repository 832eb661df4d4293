"""The data screen: browse, filter, search, open, re-label, delete."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Select
from tuihelp import add_comparisons, make_app, rows, wait_for

from tuilab.tui.screens.confirm import ConfirmScreen
from tuilab.tui.screens.data import DataScreen
from tuilab.tui.screens.detail import ComparisonScreen, PromptScreen
from tuilab.tui.screens.note import NoteScreen


def data_app(lab, **kw):
    return make_app(lab, start_feeder=False, mode="data", **kw)


async def open_data(pilot) -> DataScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, DataScreen))
    return pilot.app.screen


def table_ids(screen, which="#cmp-table") -> list[int]:
    table = screen.query_one(which, DataTable)
    return [int(table.get_row_at(i)[0]) for i in range(table.row_count)]


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


async def test_open_relabel_note_and_close(lab):
    (cid,) = add_comparisons(lab, [(0, "left")])
    app = data_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_data(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ComparisonScreen))
        detail = app.screen
        # Decided already: the models are shown here.
        assert "runs/ppo-1/policy" in str(detail.query_one("#detail-right").border_title)
        await pilot.press("at")
        assert rows(lab, "SELECT decision, strength FROM comparisons") == [("right", 2)]
        await pilot.press("t")
        assert rows(lab, "SELECT decision, strength FROM comparisons") == [("tie", 1)]
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteScreen))
        app.screen.query_one(Input).value = "on reflection, equal"
        await pilot.press("enter")
        assert rows(lab, "SELECT rationale FROM comparisons") == [("on reflection, equal",)]
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        table = screen.query_one("#cmp-table", DataTable)
        assert table.get_row_at(0)[1] == "tie"
        assert cid == int(table.get_row_at(0)[0])


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


async def test_delete_from_the_opened_comparison(lab):
    add_comparisons(lab, [(0, "left")])
    app = data_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_data(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ComparisonScreen))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen)
        assert rows(lab, "SELECT count(*) FROM comparisons") == [(0,)]
        assert table_ids(screen) == []


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
