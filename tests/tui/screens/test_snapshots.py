"""Snapshot tests of each screen (pytest-textual-snapshot), with the deterministic fake generator.

Fixed terminal sizes, fixed prompts and texts, seeded sides, fixed comparison times, no clock.
Update after an intended change with `pytest tests/tui/screens/test_snapshots.py --snapshot-update`
and look at the report before committing.
"""

from __future__ import annotations

from tuihelp import add_comparisons, make_app, wait_for

from tests.labeling.fake_source import FakeCandidateSource


async def _queue_full(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.screen.current is not None and app.feeder.ready == app.feeder.capacity
                   and app.feed_state.phase == "idle")


def test_label_screen(lab, snap_compare):
    assert snap_compare(make_app(lab), terminal_size=(110, 32), run_before=_queue_full)


def test_label_screen_80x24(lab, snap_compare):
    assert snap_compare(make_app(lab), terminal_size=(80, 24), run_before=_queue_full)


def test_label_screen_after_a_decision(lab, snap_compare):
    async def run_before(pilot):
        await _queue_full(pilot)
        pilot.app.screen.clock = lambda: 0.0  # a fixed time to decide: no clock in the snapshot
        await pilot.press("2")
        await _queue_full(pilot)
        strip = pilot.app.screen.query_one("#stats")
        await wait_for(pilot, lambda: strip._stats.session == 1)  # stats come from a worker
        pilot.app.clear_notifications()

    assert snap_compare(make_app(lab), terminal_size=(110, 32), run_before=run_before)


def test_label_screen_markdown(lab, snap_compare):
    async def run_before(pilot):
        await _queue_full(pilot)
        await pilot.press("m")
        pilot.app.clear_notifications()

    assert snap_compare(make_app(lab), terminal_size=(110, 32), run_before=run_before)


def test_help_screen(lab, snap_compare):
    async def run_before(pilot):
        await _queue_full(pilot)
        await pilot.press("question_mark")

    assert snap_compare(make_app(lab), terminal_size=(100, 40), run_before=run_before)


def test_error_state(lab, snap_compare):
    app = make_app(lab, source=FakeCandidateSource(fail="CUDA out of memory. Tried to allocate 2.00 GiB"))

    async def run_before(pilot):
        await wait_for(pilot, lambda: pilot.app.feed_state.phase == "failed")
        await pilot.pause()
        pilot.app.clear_notifications()

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_data_screen(lab, snap_compare):
    add_comparisons(lab, [(0, "left"), (1, "right"), (2, "tie"), (3, "both_bad"), (4, "skip"), (6, "left")])
    app = make_app(lab, start_feeder=False, mode="data")
    assert snap_compare(app, terminal_size=(100, 30))


def test_comparison_detail(lab, snap_compare):
    add_comparisons(lab, [(0, "right")], strength=2)
    app = make_app(lab, start_feeder=False, mode="data")
    assert snap_compare(app, terminal_size=(110, 32), press=["enter"])


def test_settings_dialog(lab, snap_compare):
    async def run_before(pilot):
        await _queue_full(pilot)
        await pilot.press("c")

    assert snap_compare(make_app(lab), terminal_size=(100, 30), run_before=run_before)
