"""The label screen under the Pilot: every key, every state, with the fake generator (no torch)."""

from __future__ import annotations

import threading

import pytest
from rich.markdown import Markdown as RichMarkdown
from textual.widgets import ContentSwitcher, Input, Static, TextArea
from tuihelp import make_app, make_lab, ready, rows, wait_for

from tests.labeling.fake_source import FakeCandidateSource
from tuilab.tui.screens.editor import EditScreen
from tuilab.tui.screens.help import HelpScreen
from tuilab.tui.screens.label import LabelScreen
from tuilab.tui.screens.note import NoteScreen


def comparisons(lab):
    return rows(
        lab,
        "SELECT id, prompt_id, left_id, right_id, swapped, decision, strength, rationale, edited_id, seconds "
        "FROM comparisons ORDER BY id",
    )


def body(screen) -> str:
    return screen.query_one("#body", ContentSwitcher).current


async def test_first_pair_appears_and_sides_are_hidden(lab):
    app = make_app(lab)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await ready(pilot)
        assert isinstance(screen, LabelScreen)
        assert body(screen) == "pair"
        pair = screen.current
        # The stored generations are the ones on screen, in the order shown.
        [(lt,)] = rows(lab, "SELECT text FROM generations WHERE id = ?", (pair.left_id,))
        [(rt,)] = rows(lab, "SELECT text FROM generations WHERE id = ?", (pair.right_id,))
        assert (lt, rt) == (pair.left.text, pair.right.text)
        # Nothing on screen names the model before the decision.
        visible = [w for w in screen.query(Static) if w.region.area]  # what is on screen now
        shown = " ".join(str(w.render()) for w in visible)
        shown += " ".join(str(p.border_title) + str(p.border_subtitle) for p in screen.query("#left, #right"))
        assert "Left" in shown and "fake-model" not in shown


@pytest.mark.parametrize(
    ("keys", "decision", "strength"),
    [
        ("1", "left", 1),
        ("left", "left", 1),
        ("2", "right", 1),
        ("right", "right", 1),
        ("exclamation_mark", "left", 2),
        ("shift+left", "left", 2),
        ("at", "right", 2),
        ("shift+right", "right", 2),
        ("t", "tie", 1),
        ("b", "both_bad", 1),
        ("s", "skip", 1),
    ],
)
async def test_each_decision_key_records_one_committed_row(lab, keys, decision, strength):
    app = make_app(lab)
    async with app.run_test() as pilot:
        screen = await ready(pilot)
        pair = screen.current
        await pilot.press(keys)
        # Read by another connection right after the key: it is committed.
        (row,) = comparisons(lab)
        _, prompt_id, left_id, right_id, swapped, got, got_strength, _, edited, seconds = row
        assert (got, got_strength) == (decision, strength)
        assert (prompt_id, left_id, right_id, bool(swapped)) == (
            pair.prompt.id, pair.left_id, pair.right_id, pair.swapped)
        assert edited is None and seconds is not None and seconds >= 0
        # The next pair is on screen, and the reveal names the models.
        assert screen.current is not None and screen.current is not pair
        assert "fake-model" in str(screen.query_one("#status").render())


async def test_swaps_are_random_and_recorded(lab):
    app = make_app(lab, queue_size=4)
    async with app.run_test() as pilot:
        for _ in range(10):
            await ready(pilot)
            await pilot.press("1")
    swapped = {r[4] for r in comparisons(lab)}
    assert swapped == {0, 1}
    # A (the source's first candidate, the short one) is on the right exactly when swapped.
    for left_id, swapped_flag in rows(lab, "SELECT left_id, swapped FROM comparisons"):
        (params,) = rows(lab, "SELECT params FROM generations WHERE id = ?", (left_id,))[0]
        assert ('"side": "B"' in params) == bool(swapped_flag)


async def test_undo_deletes_the_row_and_brings_the_pair_back_repeatedly(lab):
    app = make_app(lab)
    async with app.run_test() as pilot:
        screen = await ready(pilot)
        first = screen.current
        await pilot.press("1")
        await ready(pilot, 0)
        second = screen.current
        await pilot.press("t")
        await ready(pilot, 0)
        assert len(comparisons(lab)) == 2
        await pilot.press("u")
        assert screen.current is second
        assert [r[5] for r in comparisons(lab)] == ["left"]
        await pilot.press("u")
        assert screen.current is first
        assert comparisons(lab) == []
        # Undo past the start: a warning, nothing else changes.
        await pilot.press("u")
        assert screen.current is first
        assert any("Nothing to undo" in n.message for n in app._notifications)
        # The pairs put back are not lost: deciding again walks through them in order.
        await pilot.press("2")
        assert screen.current is second


async def test_undo_restores_the_note(lab):
    app = make_app(lab)
    async with app.run_test() as pilot:
        screen = await ready(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteScreen))
        app.screen.query_one(Input).value = "left is correct"
        await pilot.press("enter")
        await pilot.press("1")
        assert comparisons(lab)[0][7] == "left is correct"
        await pilot.press("u")
        assert screen.pending_note == "left is correct"
        await pilot.press("2")
        assert comparisons(lab)[0][7] == "left is correct"


async def test_edit_saves_a_new_generation_preferred_over_both(lab):
    app = make_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await ready(pilot)
        pair = screen.current
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditScreen))
        area = app.screen.query_one(TextArea)
        assert area.text == pair.left.text
        await pilot.press("ctrl+t")  # start from the right response instead
        assert area.text == pair.right.text
        area.load_text("A better answer, written by hand.")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen)
        (row,) = comparisons(lab)
        assert row[5] == "right" and row[8] is not None
        (edit,) = rows(lab, "SELECT prompt_id, text, origin FROM generations WHERE id = ?", (row[8],))
        assert edit == (pair.prompt.id, "A better answer, written by hand.", "edit")
        # Undo removes the comparison and its edit.
        await pilot.press("u")
        assert comparisons(lab) == []
        assert rows(lab, "SELECT count(*) FROM generations WHERE origin = 'edit'") == [(0,)]


async def test_edit_cancelled_records_nothing(lab):
    app = make_app(lab)
    async with app.run_test() as pilot:
        screen = await ready(pilot)
        pair = screen.current
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditScreen))
        app.screen.query_one(TextArea).load_text("changed my mind")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert comparisons(lab) == []
        assert rows(lab, "SELECT count(*) FROM generations WHERE origin = 'edit'") == [(0,)]
        assert screen.current is pair


async def test_edit_unchanged_is_a_plain_decision_and_empty_is_refused(lab):
    app = make_app(lab)
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditScreen))
        editor = app.screen
        editor.query_one(TextArea).load_text("   ")
        await pilot.press("ctrl+s")
        assert app.screen is editor  # refused, with a message
        assert "empty" in str(editor.query_one("#edit-error").render())
        await pilot.press("ctrl+t", "ctrl+t")  # back to the left text, unchanged
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, EditScreen))
        (row,) = comparisons(lab)
        assert row[5] == "left" and row[8] is None


async def test_note_on_the_pair_then_on_the_last_decision(lab):
    app = make_app(lab)
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteScreen))
        await pilot.press(*"too long")
        await pilot.press("enter")
        await pilot.press("2")
        assert comparisons(lab)[0][7] == "too long"
        await pilot.press("N")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteScreen))
        assert app.screen.query_one(Input).value == "too long"
        app.screen.query_one(Input).value = "too long, and wrong"
        await pilot.press("enter")
        assert comparisons(lab)[0][7] == "too long, and wrong"
        # Escape leaves the note as it was.
        await pilot.press("N")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteScreen))
        await pilot.press("x", "escape")
        assert comparisons(lab)[0][7] == "too long, and wrong"


async def test_note_without_any_decision_warns(lab):
    gate = threading.Event()
    app = make_app(lab, source=FakeCandidateSource(gate=gate))
    async with app.run_test() as pilot:
        await pilot.press("N")
        assert not isinstance(app.screen, NoteScreen)
        assert any("No decision yet" in n.message for n in app._notifications)
        gate.set()


async def test_regenerate_shows_a_fresh_pair_for_the_same_prompt(lab):
    app = make_app(lab)
    async with app.run_test() as pilot:
        screen = await ready(pilot)
        old = screen.current
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.current is not None)
        new = screen.current
        assert new.prompt.id == old.prompt.id
        assert {new.left_id, new.right_id}.isdisjoint({old.left_id, old.right_id})
        await pilot.press("1")
        assert comparisons(lab)[0][2] == new.left_id


async def test_empty_queue_says_generating_and_stays_responsive(lab):
    gate = threading.Event()
    app = make_app(lab, source=FakeCandidateSource(gate=gate))
    async with app.run_test() as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: app.feed_state.phase == "generating")
        assert body(screen) == "waiting"
        assert "Generating" in str(screen.query_one("#waiting-title").render())
        await pilot.press("1", "t", "e", "r")  # no pair: warnings, no rows, no dialogs
        assert comparisons(lab) == []
        assert app.screen is screen
        assert any("No pair on screen" in n.message for n in app._notifications)
        await pilot.press("question_mark")  # other keys work meanwhile
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        gate.set()
        await ready(pilot, 0)
        assert body(screen) == "pair"


async def test_model_error_shows_a_panel_and_the_app_stays_up(lab):
    source = FakeCandidateSource(fail="model file is corrupt: unexpected end of safetensors header")
    app = make_app(lab, source=source)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: body(screen) == "error")
        reason = str(screen.query_one("#error-reason").render())
        assert "unexpected end of safetensors header" in reason
        assert app.errors and "safetensors" in app.errors[0].summary
        # Other screens work.
        await pilot.press("f2")
        assert app.current_mode == "data"
        await pilot.press("f1")
        assert app.screen is screen
        # Fix the cause, retry with r: pairs arrive.
        source.fail = None
        await pilot.press("r")
        await ready(pilot, 0)
        assert body(screen) == "pair"


async def test_no_prompts_says_how_to_add_them(tmp_path):
    lab = make_lab(tmp_path, prompts=[])
    app = make_app(lab)
    async with app.run_test() as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: body(screen) == "error")
        assert "tuilab data import" in str(screen.query_one("#error-reason").render())


async def test_markdown_toggle(lab):
    app = make_app(lab)
    async with app.run_test() as pilot:
        screen = await ready(pilot)
        text = screen.query_one("#left .response-text", Static)
        assert not isinstance(text.content, RichMarkdown)
        await pilot.press("m")
        assert isinstance(screen.query_one("#left .response-text", Static).content, RichMarkdown)
        await pilot.press("m")
        assert not isinstance(screen.query_one("#left .response-text", Static).content, RichMarkdown)


async def test_help_lists_every_key_of_the_screen(lab):
    app = make_app(lab)
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.text
        keys = {k for _, section in app.screen.sections for ks, _ in section for k in ks.split()}
        for key in ("1", "2", "←", "→", "!", "@", "t", "b", "s", "e", "u", "n", "N", "r", "m", "c", "esc",
                    "F1", "F2", "ctrl+p", "?"):
            assert key in keys, key
        assert "shift+←" in text
        await pilot.press("question_mark")
        assert isinstance(app.screen, LabelScreen)


async def test_stats_strip_counts_the_session(lab):
    app = make_app(lab)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await ready(pilot)
        for key in ("1", "2", "1", "t"):
            await pilot.press(key)
            await ready(pilot, 0)
        strip = screen.query_one("#stats")
        await wait_for(pilot, lambda: strip._stats.session == 4)  # computed in a worker thread
        stats = strip._stats
        assert stats.session == 4 and stats.total == 4
        assert stats.by_decision["left"] == 2 and stats.by_decision["tie"] == 1
        assert stats.left_share == pytest.approx(2 / 3)
        assert "4 session" in str(screen.query_one("#stats").render())


async def test_time_to_decide_stops_while_a_dialog_is_open(lab):
    app = make_app(lab)
    now = [1000.0]
    async with app.run_test() as pilot:
        screen = await ready(pilot)
        screen.clock = lambda: now[0]
        await pilot.press("u")  # nothing to undo; re-displays nothing
        screen._display(screen.current)  # restart the clock at 1000
        now[0] = 1003.0
        await pilot.press("question_mark")
        now[0] = 1060.0  # a minute reading the help
        await pilot.press("escape")
        now[0] = 1062.0
        await pilot.press("1")
        (row,) = comparisons(lab)
        assert row[9] == pytest.approx(5.0)


async def test_fits_80_by_24(lab):
    app = make_app(lab)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await ready(pilot)
        for selector in ("#prompt", "#left", "#right", "#status", "#stats"):
            region = screen.query_one(selector).region
            assert region.width > 0 and region.height > 0, selector
            assert region.bottom <= 24 and region.right <= 80
        assert screen.query_one("#left").region.height >= 8


async def test_command_palette_offers_sources_and_screens(lab):
    app = make_app(lab)
    adapter = lab.models / "runs" / "ppo-1" / "policy"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"task_type": "CAUSAL_LM"}')
    reward = lab.models / "runs" / "rm-1" / "reward-0"
    reward.mkdir(parents=True)
    (reward / "adapter_config.json").write_text('{"task_type": "SEQ_CLS"}')
    async with app.run_test() as pilot:
        await ready(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Screen: Data (F2)" in titles
        assert any(t.endswith("vs runs/ppo-1/policy") for t in titles)
        assert not any("reward-0" in t for t in titles)


async def test_a_brand_new_lab_is_created_with_the_demo_prompts(tmp_path):
    """No database yet: the app creates it (once, before any worker opens it) and seeds prompts."""
    from tuilab.config import LabPaths

    lab = LabPaths(tmp_path / "new-lab")
    app = make_app(lab)
    async with app.run_test() as pilot:
        await ready(pilot, 0)
        await wait_for(pilot, lambda: app.screen.query_one("#stats")._stats is not None)
        assert rows(lab, "SELECT count(*) > 50 FROM prompts") == [(1,)]
        assert not app.errors
