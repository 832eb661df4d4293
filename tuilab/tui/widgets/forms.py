"""Config forms: one compact row per setting, read back into a config dataclass with per-field errors.

Every field is checked by the same `apply_overrides` the CLI's `--set` uses, so
the UI and `tuilab train … --set key=value` accept and refuse exactly the same
values; a bad field is marked and named, and nothing typed is lost.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Checkbox, Input, Label, Select

from tuilab.config import ConfigError, DPOConfig, PPOConfig, RewardConfig, apply_overrides


@dataclass(frozen=True)
class FieldSpec:
    key: str  # dotted config key, e.g. "lora.r"
    label: str
    kind: str = "text"  # text | int | float | bool | choice
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (label, value) for "choice"
    optional: bool = False  # an empty text means "leave the default"
    short: str = ""  # label on a narrow screen

    @property
    def short_label(self) -> str:
        return self.short or self.label


RM_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("base_model", "base model", help="a name in models/, a folder, or a hub id"),
    FieldSpec("four_bit", "4-bit", "bool", help="load the base model in nf4 (bitsandbytes)"),
    FieldSpec("lora.r", "LoRA r", "int", help="rank of the LoRA adapter"),
    FieldSpec("learning_rate", "learning rate", "float", short="lr"),
    FieldSpec("epochs", "epochs", "int"),
    FieldSpec("batch_size", "batch size", "int", help="pairs per step"),
    FieldSpec("ensemble", "ensemble k", "int", help="members trained on bootstrap resamples (k > 1)"),
    FieldSpec("eval_fraction", "eval fraction", "float", short="eval frac",
              help="pairs on test-split prompts are held out; without any, this fraction is"),
    FieldSpec("ties", "ties", "choice", help="skip ties, or train them toward 0.5",
              choices=(("skip", "skip"), ("half (σ→0.5)", "half"))),
    FieldSpec("name", "run name", optional=True, help="optional"),
)

PPO_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("reward_run", "reward run", "choice", help="a completed reward-model run"),
    FieldSpec("base_model", "base model", help="must be the reward model's base"),
    FieldSpec("kl_coef", "β (KL coef)", "float", help="weight of the KL penalty to the reference"),
    FieldSpec("adaptive_kl", "adaptive KL", "bool", help="adjust β toward the KL target (Ziegler et al.)"),
    FieldSpec("kl_target", "KL target", "float"),
    FieldSpec("learning_rate", "learning rate", "float", short="lr"),
    FieldSpec("value_learning_rate", "critic lr", "float", help="the value head's own learning rate"),
    FieldSpec("batch_size", "batch", "int", help="rollouts per update"),
    FieldSpec("max_new_tokens", "max new tokens", "int", short="max tokens"),
    FieldSpec("total_updates", "updates", "int"),
    FieldSpec("ensemble_mode", "ensemble", "choice", help="how reward members combine",
              choices=(("mean", "mean"), ("worst case (min)", "min"), ("mean − λ·std", "mean_minus_std"))),
    FieldSpec("gold_scorer", "gold scorer", optional=True,
              help="module:function or a reward run id; empty for none"),
    FieldSpec("checkpoint_every", "ckpt every", "int", help="updates between checkpoints (resume, audits, runs best)"),
    FieldSpec("audit_pairs", "audit pairs", "int", short="audits",
              help="gold audits: blind pairs of the policy against the reference at each audited checkpoint, "
                   "in the label queue while the run trains (0 = off)"),
    FieldSpec("audit_every", "audit every", "int",
              help="updates between audits, a multiple of ckpt every (0 = at every checkpoint)"),
    FieldSpec("name", "run name", optional=True, help="optional"),
)


DPO_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("base_model", "base model", help="a name in models/, a folder, or a hub id"),
    FieldSpec("loss", "loss", "choice", help="the preference loss (training/dpo.py names each paper)",
              choices=(("sigmoid (DPO)", "sigmoid"), ("IPO", "ipo"), ("hinge (SLiC)", "hinge"),
                       ("R-DPO (length)", "rdpo"))),
    FieldSpec("beta", "β", "float", help="how far the policy may move from the reference"),
    FieldSpec("rdpo_alpha", "R-DPO α", "float", help="reward per token that length explains (R-DPO only)"),
    FieldSpec("label_smoothing", "label smoothing", "float", short="smoothing",
              help="conservative DPO: the share of labels assumed flipped"),
    FieldSpec("learning_rate", "learning rate", "float", short="lr"),
    FieldSpec("epochs", "epochs", "int"),
    FieldSpec("batch_size", "batch size", "int", help="pairs per step"),
    FieldSpec("ties", "ties", "choice", help="skip ties, or train them toward equal implicit rewards",
              choices=(("skip", "skip"), ("half (σ→0.5)", "half"))),
    FieldSpec("sample_every", "sample every", "int", help="steps between held-out answers (0 = never)"),
    FieldSpec("gold_scorer", "gold scorer", optional=True,
              help="module:function or a reward run id; empty for none"),
    FieldSpec("name", "run name", optional=True, help="optional"),
)


class FormErrors(ValueError):
    """One message per bad field, in form order."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(msg for _, msg in errors))
        self.errors = errors


def get_key(cfg: Any, key: str) -> Any:
    obj = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def build_config(cls: type, base: Any | None, values: dict[str, Any], specs: Sequence[FieldSpec]) -> Any:
    """A fresh config (`base` copied, else defaults) with every form value applied.

    Raises `FormErrors` naming each field that `apply_overrides` refused.
    """
    cfg = copy.deepcopy(base) if base is not None else cls()
    errors: list[tuple[str, str]] = []
    by_key = {s.key: s for s in specs}
    for key, value in values.items():
        spec = by_key.get(key)
        if isinstance(value, str):
            value = value.strip()
            if value == "" and spec is not None and not spec.optional and spec.kind != "choice":
                errors.append((key, f"{spec.label}: empty; enter a value"))
                continue
        try:
            apply_overrides(cfg, {key: value})
        except ConfigError as exc:
            label = spec.label if spec else key
            text = str(exc)
            # "lora.r: expected int, got 'x'" → "LoRA r: expected a whole number, got 'x'"
            if ":" in text and text.split(":", 1)[0] == key:
                text = text.split(":", 1)[1].strip()
            text = text.replace("expected int", "expected a whole number").replace(
                "expected float", "expected a number")
            errors.append((key, f"{label}: {text}"))
    if errors:
        raise FormErrors(errors)
    return cfg


def on_off(value: bool) -> str:
    return "on" if value else "off"


def _widget_id(prefix: str, key: str) -> str:
    return f"{prefix}-{key.replace('.', '-').replace('_', '-')}"


class ConfigForm(VerticalScroll):
    """A scrolling column of `label  field` rows for one config dataclass."""

    def __init__(self, cls: type, specs: Sequence[FieldSpec], *, prefix: str, config: Any | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.cls = cls
        self.specs = tuple(specs)
        self.prefix = prefix
        self.base = copy.deepcopy(config) if config is not None else cls()

    def compose(self) -> ComposeResult:
        for spec in self.specs:
            wid = _widget_id(self.prefix, spec.key)
            value = get_key(self.base, spec.key)
            with Horizontal(classes="form-row", id=f"{wid}-row"):
                yield Label(spec.label, classes="form-label")
                if spec.kind == "bool":
                    yield Checkbox(on_off(bool(value)), bool(value), id=wid, compact=True,
                                   tooltip=spec.help or None)
                elif spec.kind == "choice":
                    options = list(spec.choices)
                    current = fmt_value(value)
                    allowed = {v for _, v in options}
                    yield Select(options, value=current if current in allowed else Select.NULL,
                                 id=wid, compact=True, allow_blank=not options or current not in allowed,
                                 prompt="(none)", tooltip=spec.help or None)
                else:
                    yield Input(fmt_value(value), id=wid, compact=True, tooltip=spec.help or None,
                                placeholder=spec.help if spec.optional else "")

    def on_resize(self) -> None:
        narrow = self.size.width < 36
        for spec, label in zip(self.specs, self.query(".form-label").results(Label), strict=False):
            label.update(spec.short_label if narrow else spec.label)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        """A compact checkbox shows the same glyph either way: say it in words."""
        event.checkbox.label = on_off(event.value)

    # ------------------------------------------------------------ values

    def widget(self, key: str) -> Input | Checkbox | Select:
        return self.query_one(f"#{_widget_id(self.prefix, key)}")

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in self.specs:
            w = self.widget(spec.key)
            if isinstance(w, Checkbox):
                out[spec.key] = bool(w.value)
            elif isinstance(w, Select):
                out[spec.key] = "" if w.value is Select.NULL else str(w.value)
            else:
                out[spec.key] = w.value
        return out

    def set_value(self, key: str, value: Any) -> None:
        w = self.widget(key)
        if isinstance(w, Checkbox):
            w.value = bool(value)
        elif isinstance(w, Select):
            w.value = value if value not in ("", None) else Select.NULL
        else:
            w.value = fmt_value(value)

    def set_choices(self, key: str, options: list[tuple[str, str]], value: str | None = None) -> None:
        w = self.widget(key)
        assert isinstance(w, Select)
        current = value if value is not None else (None if w.value is Select.NULL else w.value)
        w.set_options(options)
        if current is not None and any(v == current for _, v in options):
            w.value = current

    def config(self) -> Any:
        """The config the form describes; marks and raises on bad fields."""
        for row in self.query(".form-row"):
            row.remove_class("-invalid")
        try:
            return build_config(self.cls, self.base, self.values(), self.specs)
        except FormErrors as exc:
            for key, _ in exc.errors:
                self.query_one(f"#{_widget_id(self.prefix, key)}-row").add_class("-invalid")
            raise


def rm_form(config: RewardConfig | None = None) -> ConfigForm:
    return ConfigForm(RewardConfig, RM_FIELDS, prefix="rm", config=config, id="rm-form")


def ppo_form(config: PPOConfig | None = None) -> ConfigForm:
    return ConfigForm(PPOConfig, PPO_FIELDS, prefix="ppo", config=config, id="ppo-form")


def dpo_form(config: DPOConfig | None = None) -> ConfigForm:
    return ConfigForm(DPOConfig, DPO_FIELDS, prefix="dpo", config=config, id="dpo-form")
