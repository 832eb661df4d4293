"""The candidate settings panel: where the two sides of a pair come from, and the queue size."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Select, Static

from tuilab.labeling.candidates import SourceSpec
from tuilab.modeling.host import find_adapters

if TYPE_CHECKING:
    from tuilab.tui.app import CandidateSettings


class SettingsScreen(ModalScreen["CandidateSettings | None"]):
    """Edits a copy of the settings; returns it checked, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", priority=True),
        Binding("ctrl+s", "apply", "Apply", priority=True),
    ]

    def __init__(self, settings: CandidateSettings, models_dir: Path, model: str) -> None:
        super().__init__()
        self.settings = settings
        self.model = model
        self.adapters = find_adapters(models_dir)
        self.reward_runs = reward_folders(models_dir)

    def compose(self) -> ComposeResult:
        spec = self.settings.spec
        adapter_options = [(a.name, a.name) for a in self.adapters]
        with Vertical(id="settings-dialog", classes="dialog"):
            yield Static(Text("Candidate source", style="bold"), id="settings-title")
            with VerticalScroll(id="settings-form"):
                with RadioSet(id="settings-mode"):
                    yield RadioButton(f"Two samples of {self.model}", value=spec.mode == "samples",
                                      id="mode-samples")
                    yield RadioButton("Model A vs model B (base vs a policy adapter)",
                                      value=spec.mode == "ab", id="mode-ab")
                    yield RadioButton("The pair a reward model is least sure about (of 4 samples)",
                                      value=spec.mode == "disagreement", id="mode-disagreement")
                with Horizontal(classes="field"):
                    yield Label("A", classes="field-label")
                    yield Select([("base model (no adapter)", ""), *adapter_options], value=spec.adapter_a,
                                 allow_blank=False, id="adapter-a", compact=True)
                with Horizontal(classes="field"):
                    yield Label("B", classes="field-label")
                    yield Select(adapter_options, value=spec.adapter_b if spec.adapter_b in dict(adapter_options)
                                 else Select.NULL, prompt="(no policy adapter in models/ yet)",
                                 id="adapter-b", compact=True)
                with Horizontal(classes="field"):
                    yield Label("reward model", classes="field-label")
                    rewards = [(r, r) for r in self.reward_runs]
                    yield Select(rewards, value=spec.reward_run if spec.reward_run in dict(rewards) else Select.NULL,
                                 prompt="(no reward model in models/ yet)", id="reward-run", compact=True)
                with Horizontal(classes="field"):
                    yield Label("temperature A / B", classes="field-label")
                    yield Input(f"{spec.temperature_a:g}", id="temp-a", compact=True, classes="short")
                    yield Input(f"{spec.temperature_b:g}", id="temp-b", compact=True, classes="short")
                with Horizontal(classes="field"):
                    yield Label("max new tokens", classes="field-label")
                    yield Input(str(spec.max_new_tokens), id="max-tokens", compact=True, classes="short")
                with Horizontal(classes="field"):
                    yield Label("seed (blank: random)", classes="field-label")
                    yield Input("" if spec.seed is None else str(spec.seed), id="seed", compact=True,
                                classes="short")
                with Horizontal(classes="field"):
                    yield Label("pairs kept ready", classes="field-label")
                    yield Input(str(self.settings.queue_size), id="queue-size", compact=True, classes="short")
            yield Static("", id="settings-error", markup=False)
            with Horizontal(id="settings-buttons"):
                yield Button("Apply", variant="primary", id="apply", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
            yield Static(Text.assemble(("ctrl+s", "bold"), " apply · ", ("esc", "bold"),
                                       " cancel · applying drops the pairs already queued"), id="settings-hint")

    def on_mount(self) -> None:
        self.query_one(RadioSet).focus()
        self._sync_mode()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        self._sync_mode()

    def _sync_mode(self) -> None:
        """Adapters only matter for model A vs model B."""
        ab = self.query_one("#mode-ab", RadioButton).value
        for widget_id in ("#adapter-a", "#adapter-b"):
            self.query_one(widget_id, Select).disabled = not ab
        self.query_one("#reward-run", Select).disabled = not self.query_one("#mode-disagreement", RadioButton).value

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "apply":
            self.action_apply()
        else:
            self.action_cancel()

    def read(self) -> CandidateSettings:
        """The form as settings; ValueError names the field that does not parse or fit."""
        from tuilab.tui.app import CandidateSettings

        def number(widget_id: str, kind: type, name: str, blank_ok: bool = False):
            raw = self.query_one(f"#{widget_id}", Input).value.strip()
            if not raw and blank_ok:
                return None
            try:
                return kind(raw)
            except ValueError:
                raise ValueError(f"{name}: expected {'a whole number' if kind is int else 'a number'}, "
                                 f"got {raw!r}") from None

        mode = ("ab" if self.query_one("#mode-ab", RadioButton).value else
                "disagreement" if self.query_one("#mode-disagreement", RadioButton).value else "samples")
        b_value = self.query_one("#adapter-b", Select).value
        reward = self.query_one("#reward-run", Select).value
        spec = replace(
            self.settings.spec,
            mode=mode,
            adapter_a=str(self.query_one("#adapter-a", Select).value or "") if mode == "ab" else "",
            adapter_b=str(b_value) if mode == "ab" and b_value not in (Select.NULL, None) else "",
            reward_run=str(reward) if mode == "disagreement" and reward not in (Select.NULL, None) else "",
            temperature_a=number("temp-a", float, "temperature A"),
            temperature_b=number("temp-b", float, "temperature B"),
            max_new_tokens=number("max-tokens", int, "max new tokens"),
            seed=number("seed", int, "seed", blank_ok=True),
        )
        SourceSpec.check(spec)
        queue = number("queue-size", int, "pairs kept ready")
        if not 1 <= queue <= 64:
            raise ValueError(f"pairs kept ready must be between 1 and 64, got {queue}")
        return CandidateSettings(spec, queue)

    def action_apply(self) -> None:
        try:
            settings = self.read()
        except ValueError as exc:
            self.query_one("#settings-error", Static).update(Text(str(exc), style="bold red"))
            return
        self.dismiss(settings)

    def action_cancel(self) -> None:
        self.dismiss(None)


def reward_folders(models_dir: Path) -> list[str]:
    """Reward models under models/ (folders holding reward.json; checkpoints included), relative paths."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    return sorted(str(p.parent.relative_to(models_dir)) for p in models_dir.rglob("reward.json")
                  if not any(part.endswith(".tmp") for part in p.parent.relative_to(models_dir).parts))
