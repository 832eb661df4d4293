"""Gold audits asked for in the PPO form: the run audits itself, and the runs screen shows the pairs as they come."""

from __future__ import annotations

import pytest
from runhelp import LabApp, ready, wait_for

from tuilab.store import runs as runs_store
from tuilab.store.audits import audit_pairs, audited_steps
from tuilab.store.prompts import add_prompts
from tuilab.tui.screens.runs import RunsScreen
from tuilab.tui.widgets.audits import AuditView

pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RM_RUN = "rm-20261201-2200-tiny"


@pytest.fixture(scope="module")
def reward_folder(tmp_path_factory):
    from tiny import save_policy_and_reward

    return save_policy_and_reward(tmp_path_factory.mktemp("ppo-audit-ui"), sharpen=False)


async def test_audits_from_the_train_form_arrive_on_the_runs_screen_while_the_run_goes_on(
        run_lab, reward_folder, monkeypatch):
    monkeypatch.setattr(AuditView, "REFRESH_S", 0.2)
    home, db = run_lab
    base, rm = reward_folder
    add_prompts(db, [f"Answer briefly: question {i}?" for i in range(8)], split="train")
    add_prompts(db, ["Held-out: name a colour.", "Held-out: say hello."], split="test")
    runs_store.create_run(db, "rm", {"base_model": str(base)}, run_id=RM_RUN, output_dir=str(rm))
    runs_store.set_run_status(db, RM_RUN, "completed", final_metrics={"eval/accuracy": 0.75})
    app = LabApp(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, "#ppo-form", "#train-warnings")
        screen = app.screen
        screen.query_one("#train-tabs").active = "tab-ppo"
        form = screen.query_one("#ppo-form")
        await wait_for(pilot, lambda: form.values()["reward_run"] == RM_RUN)
        await wait_for(pilot, lambda: form.values()["base_model"] == str(base))
        values = {"batch_size": "4", "max_new_tokens": "5", "total_updates": "400", "checkpoint_every": "1",
                  "audit_pairs": "2"}
        for key, value in values.items():
            form.set_value(key, value)
        form.base.minibatch_size, form.base.ppo_epochs, form.base.sample_every = 2, 1, 0
        await pilot.press("s")
        run_id = app.training.active
        assert run_id and run_id.startswith("ppo-"), str(screen.query_one("#train-warnings").render())
        config = runs_store.get_run(db, run_id).config
        assert (config["audit_pairs"], config["audit_every"], config["checkpoint_every"]) == (2, 0, 1)
        app.open_run(run_id)
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.selected == run_id)
        panel = app.screen.query_one("#runs-audits", AuditView)
        # Shown from the start, then filled in by the run's own audits while it trains.
        await wait_for(pilot, lambda: panel.has_class("-shown"))
        await wait_for(pilot, lambda: len(audit_pairs(db, run_id)) >= 4)
        await wait_for(pilot, lambda: "checkpoints (steps 1–" in str(panel.render()))  # re-read as they come
        assert "wait to be labeled on F1" in str(panel.render())
        assert app.training.live_run(run_id).status == "running"
        app.training.cancel()
        await wait_for(pilot, lambda: app.training.live_run(run_id).status == "cancelled")
    assert {1, 2} <= audited_steps(db, run_id)
