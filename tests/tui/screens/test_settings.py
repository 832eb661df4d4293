"""The candidate settings panel and switching sources from the app."""

from __future__ import annotations

import json

from textual.widgets import Input, RadioButton, Select
from tuihelp import make_app, ready, rows, wait_for

from tests.labeling.fake_source import FakeCandidateSource
from tuilab.labeling.candidates import SourceSpec
from tuilab.tui.screens.settings import SettingsScreen


def add_adapter(lab, rel="runs/ppo-1/policy"):
    folder = lab.models / rel
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"task_type": "CAUSAL_LM"}))


async def test_settings_apply_rebuilds_the_source(lab):
    add_adapter(lab)
    built: list[SourceSpec] = []

    def factory(spec: SourceSpec):
        built.append(spec)
        return FakeCandidateSource(adapter_b=spec.adapter_b, label=f"fake {spec.mode}")

    app = make_app(lab, source=None, source_factory=factory)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        dialog = app.screen
        dialog.query_one("#mode-ab", RadioButton).value = True
        dialog.query_one("#adapter-b", Select).value = "runs/ppo-1/policy"
        dialog.query_one("#temp-b", Input).value = "hot"
        await pilot.press("ctrl+s")
        assert app.screen is dialog
        assert "temperature B" in str(dialog.query_one("#settings-error").render())
        dialog.query_one("#temp-b", Input).value = "1.2"
        dialog.query_one("#queue-size", Input).value = "2"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        spec = built[-1]
        assert (spec.mode, spec.adapter_b, spec.temperature_b) == ("ab", "runs/ppo-1/policy", 1.2)
        assert app.settings.queue_size == 2 and app.feeder.capacity == 2
        await wait_for(pilot, lambda: app.feeder.ready == 2)
        assert app.feed_state.source == "fake ab"
        # The pair on screen is still there; after deciding, pairs come from the new source.
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.current is not None and app.screen.current.source == "fake ab")
        assert app.screen.current.b.adapter == "runs/ppo-1/policy"


async def test_settings_cancel_changes_nothing(lab):
    app = make_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        feeder = app.feeder
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        app.screen.query_one("#queue-size", Input).value = "9"
        await pilot.press("escape")
        assert app.feeder is feeder and app.settings.queue_size == 3


async def test_ab_without_adapter_is_refused_in_the_dialog(lab):
    app = make_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        app.screen.query_one("#mode-ab", RadioButton).value = True
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen)
        assert "needs a policy adapter" in str(app.screen.query_one("#settings-error").render())


async def test_app_labels_with_a_real_tiny_model(lab, tiny_model_dir):
    """No injected source: the App loads the model in its worker thread and fills the queue."""
    from tuilab.tui.app import TuilabApp

    app = TuilabApp(lab, model=str(tiny_model_dir), queue_size=2, seed=0,
                    spec=SourceSpec(max_new_tokens=4, seed=0))
    async with app.run_test() as pilot:
        screen = await ready(pilot, 0)
        pair = screen.current
        assert pair.left.model == "tiny-llama" and pair.left.n_tokens <= 4
        await pilot.press("2")
        assert rows(lab, "SELECT decision, left_id, right_id FROM comparisons") == [
            ("right", pair.left_id, pair.right_id)]


async def test_app_with_a_missing_model_shows_how_to_get_one(lab):
    from tuilab.tui.app import TuilabApp

    app = TuilabApp(lab, model="no-such-model", queue_size=1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: app.feed_state.phase == "failed")
        await pilot.pause()
        assert "tuilab models setup" in str(screen.query_one("#error-reason").render())
