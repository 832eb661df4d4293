"""Snapshots of the train screen, the runs screen, the comparison and the inspector.

Data are written straight into the database with fixed numbers and timestamps
(`helpers.py`), and nothing on these screens shows a clock, so the pictures
only change when the screens do. Update with `pytest --snapshot-update`.
"""

from __future__ import annotations

from runhelp import LabApp, wait_for, write_ppo_run, write_rm_run

from tuilab.tui.widgets.charts import MetricChart
from tuilab.tui.widgets.samples import SamplesTable

RM_A = "rm-20261129-0601-aaaa"
RM_B = "rm-20261129-0627-3fa2"


def seeded(run_lab, mode: str) -> LabApp:
    home, db = run_lab
    write_rm_run(db, RM_A, seed=1, created="2026-11-29T06:01:00.000Z", name="first")
    write_rm_run(db, RM_B)
    write_rm_run(db, "rm-20261129-0650-bad0", status="failed", created="2026-11-29T06:50:00.000Z")
    write_ppo_run(db, reward_run=RM_B)
    return LabApp(home, mode=mode)


def drawn(app) -> bool:
    """Every visible chart drew its data at its final size; the inspector's table is filled."""
    screen = app.screen
    if any(not c.drawn for c in screen.query(MetricChart) if c.display):
        return False
    tables = list(screen.query(SamplesTable))
    return not tables or screen.has_class("-empty") or tables[0].row_count > 0


async def settle(pilot) -> None:
    await wait_for(pilot, lambda: drawn(pilot.app))
    await pilot.pause()
    await wait_for(pilot, lambda: drawn(pilot.app))
    await pilot.wait_for_scheduled_animations()


def test_train_screen(run_lab, snap_compare):
    assert snap_compare(seeded(run_lab, "train"), terminal_size=(120, 36), run_before=settle)


def test_train_screen_80x24(run_lab, snap_compare):
    assert snap_compare(seeded(run_lab, "train"), terminal_size=(80, 24), run_before=settle)


def test_train_screen_rm_run(run_lab, snap_compare):
    home, db = run_lab
    write_rm_run(db, RM_B)
    assert snap_compare(LabApp(home, mode="train"), terminal_size=(120, 36), run_before=settle)


def test_runs_screen(run_lab, snap_compare):
    assert snap_compare(seeded(run_lab, "runs"), terminal_size=(120, 36), run_before=settle)


def test_runs_screen_failed_run(run_lab, snap_compare):
    async def failed(pilot):
        await settle(pilot)
        await pilot.press("down")
        await settle(pilot)

    assert snap_compare(seeded(run_lab, "runs"), terminal_size=(120, 36), run_before=failed)


def test_compare_screen(run_lab, snap_compare):
    async def compare(pilot):
        await settle(pilot)
        await pilot.press("down", "down", "space", "down", "space", "c")
        await settle(pilot)

    assert snap_compare(seeded(run_lab, "runs"), terminal_size=(120, 36), run_before=compare)


def test_inspector(run_lab, snap_compare):
    async def by_flags(pilot):
        await settle(pilot)
        await pilot.press("f", "h")
        await settle(pilot)

    assert snap_compare(seeded(run_lab, "inspect"), terminal_size=(130, 36), run_before=by_flags)


def test_inspector_80x24(run_lab, snap_compare):
    assert snap_compare(seeded(run_lab, "inspect"), terminal_size=(80, 24), run_before=settle)
