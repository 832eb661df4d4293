"""PPO started from the train screen on the tiny model: live charts, the √KL axis, live samples in the inspector."""

from __future__ import annotations

import pytest
from runhelp import LabApp, ready, wait_for

from tuilab.store import runs as runs_store
from tuilab.store.prompts import add_prompts
from tuilab.tui.screens.inspect import InspectScreen
from tuilab.tui.screens.runs import RunsScreen
from tuilab.tui.widgets.charts import SQRT_KL, MetricChart
from tuilab.tui.widgets.forms import ConfigForm

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


RM_RUN = "rm-20261129-0500-tiny"


@pytest.fixture(scope="module")
def reward_folder(tmp_path_factory):
    """A one-member reward model on a tiny base, in the reward-run layout (no training needed)."""
    from tiny import save_policy_and_reward

    return save_policy_and_reward(tmp_path_factory.mktemp("ppo-ui"), sharpen=False)


async def test_ppo_from_the_train_screen_feeds_charts_and_the_inspector(run_lab, reward_folder):
    home, db = run_lab
    base, rm = reward_folder
    add_prompts(db, [f"Answer briefly: question {i}?" for i in range(12)], split="train")
    runs_store.create_run(db, "rm", {"base_model": str(base)}, run_id=RM_RUN, output_dir=str(rm))
    runs_store.set_run_status(db, RM_RUN, "completed", final_metrics={"eval/accuracy": 0.75})
    app = LabApp(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, "#ppo-form", "#train-warnings")
        screen = app.screen
        screen.query_one("#train-tabs").active = "tab-ppo"
        form = screen.query_one("#ppo-form", ConfigForm)
        # The completed reward run is offered, and picking it fills in its base model.
        await wait_for(pilot, lambda: form.values()["reward_run"] == RM_RUN)
        await wait_for(pilot, lambda: form.values()["base_model"] == str(base))
        for key, value in {"batch_size": "4", "max_new_tokens": "6", "total_updates": "500"}.items():
            form.set_value(key, value)
        form.base.minibatch_size, form.base.ppo_epochs, form.base.checkpoint_every = 2, 1, 1
        await pilot.press("s")
        run_id = app.training.active
        assert run_id and run_id.startswith("ppo-")
        score = screen.query_one("#chart-score", MetricChart)
        await wait_for(pilot, lambda: score.point_count > 0)
        await pilot.press("k")
        assert screen.x_mode == SQRT_KL
        kl = screen.query_one("#chart-kl", MetricChart)
        await wait_for(pilot, lambda: kl.point_count > 0 and "√KL" in str(kl.border_subtitle))
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectScreen))
        inspector = app.screen
        assert isinstance(inspector, InspectScreen) and inspector.run_id == run_id
        await wait_for(pilot, lambda: inspector.query_one("#insp-table").row_count > 0)
        first = inspector.query_one("#insp-table").current()
        assert first is not None and first.ref_response is not None
        app.training.cancel()
        live = app.training.live_run(run_id)
        await wait_for(pilot, lambda: live.status == "cancelled")
        assert runs_store.get_run(db, run_id).status == "cancelled"
        # R on the runs screen continues the same run from its newest checkpoint.
        stopped_at = live.step
        await wait_for(pilot, lambda: app.training.thread_run is None)  # the thread has returned
        app.open_run(run_id)
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.selected == run_id)
        await pilot.press("R")
        assert app.training.active == run_id
        # Resuming re-reads the run from the database: a new LiveRun, fed by the new thread.
        await wait_for(pilot, lambda: (app.training.live_run(run_id).step or 0) > stopped_at + 1)
        app.training.cancel()
        await wait_for(pilot, lambda: app.training.live_run(run_id).status == "cancelled")
    run = runs_store.get_run(db, run_id)
    assert run.status == "cancelled" and run.parents == [RM_RUN]
    steps = [s for s, _ in runs_store.read_metrics(db, run_id, ["objective/scores"])["objective/scores"]]
    assert steps == sorted(set(steps)) and steps[-1] > stopped_at
