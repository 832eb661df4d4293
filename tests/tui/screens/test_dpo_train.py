"""A DPO run from the train screen's DPO tab on the tiny model: charts, samples, the inspector."""

from __future__ import annotations

import pytest
from runhelp import LabApp, add_pairs, ready, wait_for
from textual.widgets import TabbedContent

from tuilab.store.runs import get_run
from tuilab.store.samples import count_samples
from tuilab.tui.screens.inspect import InspectScreen
from tuilab.tui.widgets.charts import MetricChart
from tuilab.tui.widgets.forms import ConfigForm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


async def test_dpo_tab_runs_a_job_whose_samples_reach_the_inspector(run_lab, tiny_model_dir):
    home, db = run_lab
    add_pairs(db, 24)
    app = LabApp(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, "#rm-form", "#dpo-form", "#train-warnings")
        screen = app.screen
        screen.query_one("#train-tabs", TabbedContent).active = "tab-dpo"
        form = screen.query_one("#dpo-form", ConfigForm)
        for key, value in {"base_model": str(tiny_model_dir), "epochs": "2", "sample_every": "1",
                           "loss": "rdpo", "name": "d"}.items():
            form.set_value(key, value)
        await pilot.pause()  # the tab switch and the field values settle before the key
        await pilot.press("s")
        said = screen.query_one("#form-errors")
        await wait_for(pilot, lambda: app.training.last is not None or str(said.render()).strip())
        # `last`, not `active`: on the tiny model the job can finish (and `active` clear) before the
        # key press returns, as it did on the CI machine.
        run_id = app.training.last
        assert run_id is not None and run_id.startswith("dpo-"), (str(said.render()), app.focused)
        live = app.training.live_run(run_id)
        await wait_for(pilot, lambda: live.status == "completed")
        assert get_run(db, run_id).config["loss"] == "rdpo"
        accuracy = screen.query_one("#chart-accuracy", MetricChart)
        await wait_for(pilot, lambda: accuracy.point_count > 0)
        assert live.values("objective/kl") and live.values("response/length_mean")
        assert count_samples(db, run_id) > 0
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectScreen) and app.screen.run_id == run_id)
