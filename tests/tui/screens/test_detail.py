"""One comparison opened in full (re-label, note, delete, markdown) and one prompt in full: the detail modals.

The data screen opens them (test_data.py covers its lists); here they run in the lab's App on a real
SQLite lab, opened from the list or pushed directly.
"""

from __future__ import annotations

from rich.markdown import Markdown as RichMarkdown
from textual.widgets import DataTable, Input, Static
from tuihelp import FIXED_TIME, add_comparisons, data_app, open_data, rows, table_ids, wait_for

from tuilab.records import Comparison, Generation
from tuilab.tui.screens.confirm import ConfirmScreen
from tuilab.tui.screens.detail import ComparisonScreen, PromptScreen, as_candidate, origin_of
from tuilab.tui.screens.note import NoteScreen


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


# ---------------------------------------------------------------- who wrote a response (no app)


def test_origin_of_names_model_adapter_and_sampling_and_marks_other_origins():
    g = Generation("Paris.", model="base-model", adapter="runs/ppo-1/policy",
                   params={"side": "B", "temperature": 0.8, "seed": 3}, n_tokens=2, finished=True)
    assert origin_of(g) == "base-model + runs/ppo-1/policy (B, T 0.8, seed 3)"
    assert origin_of(Generation("Paris.", model="base-model")) == "base-model"
    assert origin_of(Generation("Paris.", model="base-model", origin="reference",
                                params={"temperature": 1.0})) == "base-model (T 1) [reference]"
    # A human edit names no model, whatever the row says.
    assert origin_of(Generation("Mine.", model="base-model", origin="edit")) == "human edit"
    assert origin_of(Generation("?", model="")) == "?"


def test_as_candidate_copies_the_generation_and_its_params():
    g = Generation("Paris.", model="m", adapter="a", n_tokens=2, finished=False, params={"side": "A"})
    c = as_candidate(g)
    assert (c.text, c.model, c.adapter, c.n_tokens, c.finished, c.params) == ("Paris.", "m", "a", 2, False,
                                                                              {"side": "A"})
    c.params["side"] = "B"
    assert g.params == {"side": "A"}  # the stored record is not changed through the pane's copy


# ---------------------------------------------------------------- the comparison, pushed directly


async def open_comparison(pilot, cid: int, results: list | None = None) -> ComparisonScreen:
    """Push the comparison's modal over the data screen; `results` collects what it returns."""
    app = pilot.app
    await open_data(pilot)
    app.push_screen(ComparisonScreen(cid), None if results is None else results.append)
    await wait_for(pilot, lambda: isinstance(app.screen, ComparisonScreen) and app.screen._c is not None)
    return app.screen


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def test_the_meta_line_says_how_the_decision_was_made(lab):
    first, second = add_comparisons(lab, [(0, "left"), (1, "right")], strength=2)
    app = data_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_comparison(pilot, first)
        meta = text_of(screen, "#detail-meta")
        assert f"#{first}" in meta and "left much better" in meta
        assert "sides as generated" in meta and "4.0 s to decide" in meta and "human" in meta
        assert "2026-11-29 06:30" in meta and "✎ clearer" in meta
        assert screen.query_one("#detail-left").border_title == "Left ✓ · base-model (A, T 0.8)"
        assert screen.query_one("#detail-right").border_title == "Right · base-model + runs/ppo-1/policy (B, T 0.8)"
        assert screen.query_one("#detail-left").has_class("chosen")
        assert not screen.query_one("#detail-right").has_class("chosen")
        assert not screen.query_one("#detail-edit").display  # no edit: no edit pane
        await pilot.press("escape")
        screen = await open_comparison(pilot, second)
        meta = text_of(screen, "#detail-meta")
        assert "right much better" in meta and "sides swapped" in meta and "5.0 s to decide" in meta
        assert "✎" not in meta  # no rationale, no note line


async def test_an_edited_comparison_shows_the_edit_preferred_over_both(lab):
    from tuilab.store.comparisons import record_comparison
    from tuilab.store.db import open_db
    from tuilab.store.generations import add_generation

    db = open_db(lab.db)
    try:
        pid = db.execute("SELECT min(id) FROM prompts").fetchone()[0]
        left = add_generation(db, pid, "Left text.", model="m", created_at=FIXED_TIME)
        right = add_generation(db, pid, "Right text.", model="m", created_at=FIXED_TIME)
        edit = add_generation(db, pid, "A hand-written answer.", origin="edit", created_at=FIXED_TIME)
        cid = record_comparison(db, Comparison(prompt_id=pid, left_id=left, right_id=right, decision="right",
                                               edited_id=edit), created_at=FIXED_TIME)
    finally:
        db.conn.close()
    app = data_app(lab)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_comparison(pilot, cid)
        assert "right better, edited" in text_of(screen, "#detail-meta")
        pane = screen.query_one("#detail-edit")
        assert pane.display and pane.border_title == "Edit ✓ (preferred over both)"
        assert str(pane.query_one(".response-text", Static).content) == "A hand-written answer."


async def test_close_returns_whether_the_comparison_changed_and_escape_on_the_note_keeps_it(lab):
    (cid,) = add_comparisons(lab, [(0, "left")])
    app = data_app(lab)
    results: list = []
    async with app.run_test(size=(100, 30)) as pilot:
        await open_comparison(pilot, cid, results)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteScreen))
        assert app.screen.query_one(Input).value == "clearer"  # the stored rationale, to edit
        await pilot.press("x", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ComparisonScreen))
        await pilot.press("q")
        await wait_for(pilot, lambda: results == [False])  # nothing changed: the list need not reload
        assert rows(lab, "SELECT decision, rationale FROM comparisons") == [("left", "clearer")]
        await open_comparison(pilot, cid, results)
        await pilot.press("2", "escape")
        await wait_for(pilot, lambda: results == [False, True])
        assert rows(lab, "SELECT decision, strength FROM comparisons") == [("right", 1)]


async def test_markdown_key_redraws_both_responses(lab):
    (cid,) = add_comparisons(lab, [(0, "left")])
    app = data_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_comparison(pilot, cid)

        def rendered(side: str):
            return screen.query_one(f"#detail-{side} .response-text", Static).content

        assert not isinstance(rendered("right"), RichMarkdown)
        await pilot.press("m")
        assert app.markdown and isinstance(rendered("left"), RichMarkdown) and isinstance(rendered("right"),
                                                                                          RichMarkdown)
        await pilot.press("m")
        assert not app.markdown and not isinstance(rendered("right"), RichMarkdown)


async def test_a_comparison_deleted_elsewhere_is_reported_when_relabeled_and_the_screen_stays(lab):
    (cid,) = add_comparisons(lab, [(0, "left")])
    app = data_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_comparison(pilot, cid)
        app.db.execute("DELETE FROM comparisons WHERE id = ?", [cid])
        app.db.conn.commit()
        await pilot.press("t")
        assert app.screen is screen and not screen.changed
        assert app.errors and app.errors[-1].where == "Re-label"
        assert f"no comparison with id {cid}" in app.errors[-1].summary
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen)  # the delete failed: the dialog stays open
        assert app.errors[-1].where == "Delete" and f"no comparison with id {cid}" in app.errors[-1].summary


# ---------------------------------------------------------------- one prompt in full


async def test_prompt_screen_shows_the_whole_conversation_and_its_use(lab):
    add_comparisons(lab, [(6, "tie")])  # the 4-turn chat prompt: two responses, one comparison
    app = data_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_data(pilot)
        ids = [r[0] for r in rows(lab, "SELECT id FROM prompts ORDER BY id")]
        chat, unused = ids[6], ids[0]
        app.push_screen(PromptScreen(chat))
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        screen = app.screen
        meta = text_of(screen, "#prompt-meta")
        assert f"Prompt #{chat}" in meta and "train split · source test · 2 responses · 1 comparisons" in meta
        view = screen.query_one("#prompt-full")
        assert view.has_focus and view.border_subtitle == "4 turns"
        shown = str(screen.query_one("#prompt-text", Static).content)
        assert "system: You are a terse assistant." in shown and "user: What should I build first?" in shown
        await pilot.press("q")
        await wait_for(pilot, lambda: not isinstance(app.screen, PromptScreen))
        app.push_screen(PromptScreen(unused))
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        assert "0 responses · 0 comparisons" in text_of(app.screen, "#prompt-meta")
