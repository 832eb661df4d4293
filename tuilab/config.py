"""Configs as dataclasses: defaults here, overridden from TOML files and `--set key=value`.

Stdlib only (no torch): the UI, the store and the CLI all read these. A config is always
built by name (a TOML key, `--set key=value`, a saved run's dict), so the config dataclasses
take keyword arguments only.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass
class LabPaths:
    """Where a lab lives: `models/` and `db/` under one home folder.

    The home is `--home`, else `TUILAB_HOME`, else the working directory, so one
    folder per experiment works without flags.
    """

    home: Path
    db_override: Path | None = None

    @classmethod
    def resolve(cls, home: str | os.PathLike | None = None, db: str | os.PathLike | None = None) -> LabPaths:
        chosen = home or os.environ.get("TUILAB_HOME") or os.getcwd()
        return cls(Path(chosen).expanduser().resolve(), Path(db).expanduser().resolve() if db else None)

    @property
    def db(self) -> Path:
        return self.db_override or self.home / "db" / "lab.db"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def runs(self) -> Path:
        return self.models / "runs"


@dataclass(kw_only=True)
class SamplingConfig:
    """How candidates and rollouts are sampled."""

    max_new_tokens: int = 128
    temperature: float = 0.8
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    batch_size: int = 8


@dataclass(kw_only=True)
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    # "all-linear" or a comma-separated list of module names.
    target_modules: str = "all-linear"
    # Adapt only the top N transformer blocks (0: all). Backpropagation then stops at
    # the lowest adapted block, so a step costs less (measured on the default model,
    # 2 threads, 16×90 tokens: forward+backward 6.9 s with all 30 blocks, 3.5 s with 6).
    layers: int = 0


@dataclass(kw_only=True)
class ModelTraining:
    """What every training run sets, whatever it trains: the base model and its adapter, the step, the run.

    jobs/validate.py checks these once for every kind of run.
    """

    base_model: str = DEFAULT_MODEL
    four_bit: bool = False
    lora: LoraSettings = field(default_factory=LoraSettings)
    learning_rate: float = 1e-4
    batch_size: int = 8
    max_grad_norm: float = 1.0
    seed: int = 0
    name: str = ""


@dataclass(kw_only=True)
class PairTraining(ModelTraining):
    """What training on the preference pairs needs, whatever it trains: the pairs, epochs, schedule."""

    # "skip" leaves ties out; "half" trains them toward a tie (σ(Δ) = 0.5, equal implicit rewards).
    ties: str = "skip"
    epochs: int = 2
    max_length: int = 512
    # Pairs whose prompt is in the held-out split are the eval set; when the
    # database has none, this fraction of pairs is held out instead.
    eval_fraction: float = 0.1
    min_pairs: int = 16
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    # Chosen and rejected share their prompt: run it once per pair (one packed
    # sequence, masked so neither answer sees the other). Checked against the
    # plain path on the first batch; falls back by itself if a model disagrees.
    share_prefix: bool = True


@dataclass(kw_only=True)
class RewardConfig(PairTraining):
    """Bradley–Terry reward-model training on the preference database."""

    # TRL's center_rewards_coefficient: η·(r_c + r_r)² keeps rewards near zero.
    center_coef: float = 0.01
    ensemble: int = 1
    checkpoint_every: int = 100
    eval_every_epoch: bool = True
    # Recomputes each layer's activations during the backward pass: less memory, one more
    # forward's worth of time per step. Off unless asked.
    gradient_checkpointing: bool = False


@dataclass(kw_only=True)
class PPOConfig(ModelTraining):
    """PPO with a LoRA policy on the shared base model; see training/ppo.py for each trick.

    `batch_size` (from ModelTraining) is the rollout: prompts sampled per update.
    """

    # ModelTraining's settings, with PPO's defaults (a redeclared field keeps its place among them).
    learning_rate: float = 2e-4
    reward_run: str = ""  # run id (or models/ path) of the reward model / ensemble
    # Rollouts
    max_new_tokens: int = 48
    temperature: float = 0.9
    total_updates: int = 30
    prompt_split: str = "train"
    prompt_limit: int = 0  # 0 = every prompt in the split
    # Only prompts from this source ("demo", or an imported file's name such as
    # "prompts.jsonl"); "" = every prompt in the split.
    prompt_source: str = ""
    # Optimisation
    # The critic's own learning rate. It is a fresh linear head on the trunk's hidden states, whose
    # entries sum to ~650 in absolute value on SmolLM2-135M: one Adam step of 5e-4 moves a value by up
    # to ~0.3, more than a third of the returns' spread, so at the policy's rate the head fits each
    # batch's noise and predicts the next batch worse than a constant (explained variance −0.2 to
    # −0.3 over the length scenario's last updates, 2026-12-01). At 2e-5 it stays within ±0.06 of 0
    # over the scenario's 16 updates (2026-12-02).
    value_learning_rate: float = 2e-5
    ppo_epochs: int = 2  # passes over each rollout, each a forward + backward (Huang et al. 2024, N+: 4)
    minibatch_size: int = 4  # rollout rows per optimiser step; batch_size must be a multiple
    clip_range: float = 0.2  # ε of the clipped ratio objective
    clip_range_value: float = 0.2  # the value loss clips predictions to within this of the rollout's values
    vf_coef: float = 0.1  # weight of the value loss beside the policy loss
    gamma: float = 1.0  # discount per token (1: the end-of-answer score counts fully at every token)
    lam: float = 0.95  # GAE's λ: bias (0) against variance (1) of the advantages
    adam_eps: float = 1e-5  # AdamW's ε (PyTorch's default is 1e-8)
    lr_decay: bool = True  # learning rate falls linearly to 0 at total_updates
    # Linear warm-up over the first N updates. Adam's first steps move every LoRA weight by
    # about the learning rate whatever the gradient says (its variance estimate has no history
    # yet; Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond"):
    # measured in the length scenario at 5e-4, approx-KL 0.12 and clip fraction 18 % at update 1
    # without warm-up, 0.008 and 6 % with 4 updates of it.
    warmup_updates: int = 0
    # Reward shaping
    kl_coef: float = 0.05
    adaptive_kl: bool = False
    kl_target: float = 6.0
    kl_horizon: int = 10000
    # Answers cut off at max_new_tokens: "subtract" takes missing_eos_penalty (≥ 0, TRL's field and
    # sign) off the score; "replace" sets the score to truncated_score (< 0), as N+ details do.
    truncated: str = "subtract"
    missing_eos_penalty: float = 1.0
    truncated_score: float = -1.0
    whiten_rewards: bool = False
    # mean | min | uncertainty (mean − λ·variance, Coste et al. 2023) | mean_minus_std
    ensemble_mode: str = "mean"
    ensemble_lambda: float = 0.1
    # Experiments
    gold_scorer: str = ""  # "module:function" (text -> float) or a reward run id
    sample_every: int = 1
    checkpoint_every: int = 5
    # Gold audits while the run trains: at each audited checkpoint, `audit_pairs` blind pairs
    # (the policy at that step against the reference, on held-out "test" prompts, the same ones
    # at every step) join the label queue, served before fresh pairs; headless, they wait in the
    # database. 0 = off. `audit_every`: updates between audits, a multiple of checkpoint_every
    # (each audited step is a checkpoint, the adapter `tuilab runs best` exports); 0 = at every
    # checkpoint. The last update is audited too. The same pairs `tuilab label audit RUN` queues.
    audit_pairs: int = 0
    audit_every: int = 0


@dataclass(kw_only=True)
class DPOConfig(PairTraining):
    """Direct preference optimisation of a LoRA policy on the preference database; see training/dpo.py."""

    # PairTraining's settings, with DPO's defaults (a redeclared field keeps its place among them).
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.0
    # sigmoid (DPO) | ipo | hinge (SLiC) | rdpo (length-regularised DPO)
    loss: str = "sigmoid"
    beta: float = 0.1
    # Conservative DPO: the probability that a label is flipped (0 = trust every label).
    label_smoothing: float = 0.0
    # R-DPO's α: the implicit reward of each answer token (in reward units per token).
    rdpo_alpha: float = 0.02
    # Offset the logit by the pair's margin from the database ("much better" = 1.0).
    use_margins: bool = True
    # Every this many steps: held-out accuracy, and the policy answers held-out prompts (0 = never).
    sample_every: int = 10
    sample_prompts: int = 8
    max_new_tokens: int = 48
    temperature: float = 0.9
    gold_scorer: str = ""  # "module:function" (text -> float) or a reward run id
    checkpoint_every: int = 20


# ---------------------------------------------------------------- overrides


class ConfigError(ValueError):
    """A config file or `--set` that does not fit the dataclass; the message names the key."""


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    if type(None) in typing.get_args(annotation):  # `int | None`: None, or "none" from --set / TOML text
        if value is None or str(value).strip().lower() == "none":
            return None
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    hint = annotation if isinstance(annotation, type) else None
    if hint is None:
        text = str(annotation)
        for name, typ in (("bool", bool), ("int", int), ("float", float), ("str", str)):
            if text.startswith(name):
                hint = typ
                break
    if hint is None:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        low = str(value).strip().lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    # TOML hands over typed values: true is no number (int(True) would be 1), and a list is no
    # text (str() of it would be "['q_proj', 'v_proj']", a module name nothing has).
    if isinstance(value, bool) and hint is not str:
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")
    if isinstance(value, (list, dict)):
        several = isinstance(value, list) and hint is str
        comma = ' (several names: one string, comma-separated, e.g. "q_proj,v_proj")' if several else ""
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}{comma}")
    try:
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return hint(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}") from None


def apply_overrides(cfg: Any, values: dict[str, Any], prefix: str = "") -> Any:
    """Set fields (nested with dots or sub-tables) on a dataclass, checking names and types."""
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    for key, value in values.items():
        head, _, rest = key.partition(".")
        full = f"{prefix}{head}"
        if head not in names:
            raise ConfigError(f"unknown setting {full!r}; known: {', '.join(sorted(names))}")
        current = getattr(cfg, head)
        if dataclasses.is_dataclass(current):
            if rest:
                apply_overrides(current, {rest: value}, prefix=f"{full}.")
            elif isinstance(value, dict):
                apply_overrides(current, value, prefix=f"{full}.")
            else:
                raise ConfigError(f"{full} is a section; set {full}.<name>=value")
        elif rest:
            raise ConfigError(f"{full} is not a section")
        else:
            setattr(cfg, head, _coerce(value, hints[head], full))
    return cfg


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """`["lora.r=16", "epochs=3"]` → `{"lora.r": "16", "epochs": "3"}`."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def load_config(cls: type, path: str | os.PathLike | None = None, sets: list[str] | None = None):
    """Defaults, then a TOML file, then `--set` pairs (last wins)."""
    cfg = cls()
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{p}: no such config file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: {exc}") from None
        apply_overrides(cfg, data)
    if sets:
        apply_overrides(cfg, parse_sets(sets))
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict[str, Any]):
    """Rebuild a config saved with `to_dict` (unknown keys from older versions are an error)."""
    return apply_overrides(cls(), data)
