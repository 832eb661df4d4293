"""The PPO run screen charts the health figures the loop writes every update."""

from __future__ import annotations

import pytest
from runhelp import LabApp
from textual.app import App, ComposeResult

from tuilab.tui.widgets.charts import charts_for
from tuilab.tui.widgets.run_panels import ChartPanel

HEALTH = {"critic": "val/explained_variance", "step": "policy/approxkl_avg"}


def test_ppo_charts_name_the_health_metrics():
    specs = {c.key: c for c in charts_for("ppo")}
    for key, metric in HEALTH.items():
        assert metric in specs[key].series[0].names
    assert "policy/clipfrac_avg" in specs["step"].series[1].names
    assert not {"critic", "step"} & {c.key for c in charts_for("dpo")}


class _Host(App):
    CSS_PATH = LabApp.CSS_PATH  # the lab's stylesheet lays the panel out

    def compose(self) -> ComposeResult:
        yield ChartPanel("ppo", id="panel")


@pytest.mark.asyncio
async def test_panel_lays_out_six_charts_and_hides_health_when_short():
    app = _Host()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        panel = app.query_one(ChartPanel)
        assert panel.has_class("-health") and len(list(panel.children)) == 6
        assert all(c.display for c in panel.children)
    app = _Host()
    async with app.run_test(size=(120, 16)) as pilot:
        await pilot.pause()
        panel = app.query_one(ChartPanel)
        shown = [c.id for c in panel.children if c.styles.display != "none"]
        assert shown == ["chart-score", "chart-length"]
