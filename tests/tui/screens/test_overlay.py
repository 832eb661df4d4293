"""Several PPO runs on one plot: colours, Gao fits and peaks, axis and quantity keys, live growth."""

from __future__ import annotations

import math
import re

from textual.app import App

from tuilab.store import runs as runs_store
from tuilab.store.db import open_db
from tuilab.tui.screens.overlay import OverlayChart, OverlayScreen


def gao_metrics(alpha: float, beta: float, steps: int) -> list[tuple[int, str, float]]:
    rows = []
    for s in range(1, steps + 1):
        kl = 0.05 * (s - 1) ** 2
        d = math.sqrt(kl)
        gold = 0.5 + (d * (alpha - beta * math.log(d)) if d > 0 else 0.0)
        rows += [(s, "objective/kl", kl), (s, "objective/gold", gold), (s, "objective/scores", 0.1 * s),
                 (s, "response/length_mean", 20 + s)]
    return rows


def make_runs(db, specs):
    ids = []
    for name, alpha, beta, steps in specs:
        rid = runs_store.create_run(db, "ppo", {"kl_coef": 0.05}, name=name)
        runs_store.write_metrics(db, rid, gao_metrics(alpha, beta, steps))
        ids.append(rid)
    return ids


class Host(App):
    def __init__(self, db, ids, labels):
        super().__init__()
        self.db, self.ids, self.labels = db, ids, labels

    def on_mount(self) -> None:
        self.push_screen(OverlayScreen(self.db, self.ids, self.labels))


async def test_three_runs_one_plot_with_fits_peaks_and_live_growth(tmp_path):
    db = open_db(tmp_path / "lab.db")
    ids = make_runs(db, [("β 0.01", 1.0, 0.5, 20), ("β 0.05", 1.2, 0.5, 20), ("β 0.2", 0.8, 0.4, 12)])
    labels = {rid: n for rid, n in zip(ids, ["β 0.01", "β 0.05", "β 0.2"], strict=True)}
    app = Host(db, ids, labels)
    async with app.run_test(size=(110, 36)) as pilot:
        await pilot.pause()
        screen = app.screen
        chart = screen.query_one(OverlayChart)
        assert [s.run_id for s in chart.series] == ids
        for s, alpha in zip(chart.series, [1.0, 1.2, 0.8], strict=True):
            assert abs(s.fit.alpha - alpha) < 1e-6 and s.peak is not None
        assert screen.query_one("#overlay-fits").row_count == 3
        legend = chart.border_subtitle
        assert all(labels[r] in str(legend) for r in ids)
        assert len(set(re.findall(r"\[(rgb\([^)]*\))\]━", str(legend)))) == 3  # one colour per run
        # live: a run gains points in the database → the next refresh redraws with them
        before = chart.redraws
        runs_store.write_metrics(db, ids[2], [(r[0] + 12, r[1], r[2]) for r in gao_metrics(0.8, 0.4, 3)][:4])
        screen.refresh_data()
        assert chart.redraws == before + 1 and len(chart.series[2].xs) == 13
        screen.refresh_data()  # nothing new: no redraw
        assert chart.redraws == before + 1
        await pilot.press("x")  # gold on the step axis: no fits drawn, table hidden
        assert screen.axis == "step" and all(s.fit is None for s in chart.series)
        assert not screen.query_one("#overlay-fits").display
        await pilot.press("l")
        assert screen.quantity == "length" and chart.series[0].ys[:3] == [21, 22, 23]
        await pilot.press("a")  # 5-update trailing mean
        assert chart.series[0].ys[:3] == [21, 21.5, 22] and "5-update mean" in chart.border_title
    db.conn.close()


async def test_runs_without_gold_are_named(tmp_path):
    db = open_db(tmp_path / "lab.db")
    ids = make_runs(db, [("a", 1.0, 0.5, 6)])
    bare = runs_store.create_run(db, "dpo", {}, name="no-gold")
    runs_store.write_metrics(db, bare, [(1, "objective/kl", 0.0), (2, "objective/kl", 0.2)])
    app = Host(db, [*ids, bare], {bare: "no-gold"})
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        note = str(app.screen.query_one("#overlay-note").render())
        assert "no gold logged yet: no-gold" in note and "gold_scorer" in note
        await pilot.press("k")
        assert len(app.screen.query_one(OverlayChart).series) == 2
    db.conn.close()


BETAS = {"ppo-20261129-0712-0001": "β 0.01", "ppo-20261129-0712-0002": "β 0.05", "ppo-20261129-0712-0003": "β 0.2"}


def seed_beta_sweep(db) -> list[str]:
    """Three finished PPO runs of a β sweep: gold rises and falls against √KL, each with its own peak."""
    ids = []
    for i, ((run_id, name), (alpha, beta)) in enumerate(zip(BETAS.items(), [(0.9, 0.6), (1.1, 0.55), (1.3, 0.5)],
                                                           strict=True)):
        runs_store.create_run(db, "ppo", {"kl_coef": float(name.split()[1])}, name=name, run_id=run_id,
                              total_steps=24)
        rows = [(s, k, v + (0.04 * math.sin(1.7 * s + i) if k == "objective/gold" else 0.0))
                for s, k, v in gao_metrics(alpha, beta, 24)]
        runs_store.write_metrics(db, run_id, rows)
        runs_store.set_run_status(db, run_id, "completed", final_metrics={"objective/gold": rows[-3][2]})
        ids.append(run_id)
    return ids


async def test_runs_screen_marks_any_number_of_ppo_runs_and_opens_one_plot(run_lab):
    from runhelp import LabApp, wait_for

    home, db = run_lab
    ids = seed_beta_sweep(db)
    app = LabApp(home, mode="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#runs-table").row_count == 3)
        table = screen.query_one("#runs-table")
        table.focus()
        for row in range(3):
            table.move_cursor(row=row)
            await pilot.pause()
            await pilot.press("space")
        assert sorted(screen.marked) == ids
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, OverlayScreen))
        overlay = app.screen
        series = overlay.query_one(OverlayChart).series
        assert sorted(s.run_id for s in series) == ids and {s.label for s in series} == set(BETAS.values())
        assert all(s.fit is not None for s in series)  # gold against √KL: one Gao fit per run
        await pilot.press("escape")
        assert app.screen is screen


def test_overlay_screen_snapshot(run_lab, snap_compare):
    from runhelp import LabApp

    home, db = run_lab
    ids = seed_beta_sweep(db)

    async def open_overlay(pilot):
        await pilot.pause()
        pilot.app.push_screen(OverlayScreen(pilot.app.db, ids, BETAS))
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(LabApp(home, mode="runs"), terminal_size=(120, 36), run_before=open_overlay)
