"""A job's whole configuration, checked before anything is recorded or loaded.

`validate_job` runs before a run row or run folder exists and before any
model loads, from the CLI's train verbs and from the UI's start button: a
config that cannot run is refused in one sentence naming the key, and
leaves nothing behind. It reads the database and the file system only; no
torch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tuilab.config import LabPaths, ModelTraining, PPOConfig, RewardConfig

SPLITS = ("train", "test")
ENSEMBLE_MODES = ("mean", "min", "mean_minus_std")
DPO_LOSSES = ("sigmoid", "ipo", "hinge", "rdpo")


class InvalidConfig(ValueError):
    """A setting that cannot run; `str()` names the key, its value and what would do."""


def _number(cfg: Any, key: str) -> float:
    value = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _rules(cfg: Any, rules: list[tuple[str, Any, str]]) -> None:
    for key, ok, need in rules:
        value = _number(cfg, key)
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidConfig(f"{key} must be a finite number, got {value}")
        if not ok(value):
            raise InvalidConfig(f"{key} must be {need}, got {value!r}")


def _common(cfg: ModelTraining) -> list[tuple[str, Any, str]]:
    return [
        ("lora.r", lambda v: v >= 1, "at least 1 (the LoRA rank)"),
        ("lora.alpha", lambda v: v > 0, "positive"),
        ("lora.dropout", lambda v: 0 <= v < 1, "in [0, 1)"),
        ("lora.target_modules", lambda v: bool(str(v).strip()), '"all-linear" or module names'),
        ("lora.layers", lambda v: v >= 0, "0 (every block) or the number of top blocks to adapt"),
        ("learning_rate", lambda v: 0 < v <= 1, "in (0, 1]"),
        ("batch_size", lambda v: v >= 1, "at least 1"),
        ("max_grad_norm", lambda v: v > 0, "positive"),
    ]


def validate_reward_config(cfg: RewardConfig) -> None:
    _rules(cfg, [
        *_common(cfg),
        ("epochs", lambda v: v >= 1, "at least 1"),
        ("max_length", lambda v: v >= 8, "at least 8 tokens"),
        ("ties", lambda v: v in ("skip", "half"), '"skip" or "half"'),
        ("center_coef", lambda v: v >= 0, "0 or more"),
        ("ensemble", lambda v: 1 <= v <= 16, "between 1 and 16"),
        ("eval_fraction", lambda v: 0 <= v < 1, "in [0, 1)"),
        ("min_pairs", lambda v: v >= 1, "at least 1"),
        ("weight_decay", lambda v: v >= 0, "0 or more"),
        ("warmup_ratio", lambda v: 0 <= v < 1, "in [0, 1)"),
        ("checkpoint_every", lambda v: v >= 0, "0 (never) or more"),
    ])


def validate_ppo_config(cfg: PPOConfig) -> None:
    _rules(cfg, [
        *_common(cfg),
        ("warmup_updates", lambda v: v >= 0, "0 (none) or more"),
        ("value_learning_rate", lambda v: 0 < v <= 1, "in (0, 1]"),
        ("minibatch_size", lambda v: 1 <= v <= cfg.batch_size and cfg.batch_size % v == 0,
         f"at least 1 and divide batch_size ({cfg.batch_size})"),
        ("max_new_tokens", lambda v: v >= 1, "at least 1"),
        ("temperature", lambda v: v > 0, "positive"),
        ("total_updates", lambda v: v >= 1, "at least 1"),
        ("prompt_split", lambda v: v in SPLITS, '"train" or "test"'),
        ("prompt_limit", lambda v: v >= 0, "0 (all) or more"),
        ("ppo_epochs", lambda v: v >= 1, "at least 1"),
        ("clip_range", lambda v: v > 0, "positive"),
        ("clip_range_value", lambda v: v > 0, "positive"),
        ("vf_coef", lambda v: v >= 0, "0 or more"),
        ("gamma", lambda v: 0 < v <= 1, "in (0, 1]"),
        ("lam", lambda v: 0 <= v <= 1, "in [0, 1]"),
        ("adam_eps", lambda v: v > 0, "positive"),
        ("kl_coef", lambda v: v >= 0, "0 or more"),
        ("kl_target", lambda v: v > 0, "positive"),
        ("kl_horizon", lambda v: v >= 1, "at least 1"),
        ("missing_eos_penalty", lambda v: True, "a number"),
        ("ensemble_mode", lambda v: v in ENSEMBLE_MODES, "mean, min or mean_minus_std"),
        ("ensemble_lambda", lambda v: v >= 0, "0 or more"),
        ("sample_every", lambda v: v >= 0, "0 (never) or more"),
        ("checkpoint_every", lambda v: v >= 0, "0 (never) or more"),
        ("audit_pairs", lambda v: v >= 0, "0 (no audits) or more"),
        ("audit_every", lambda v: v >= 0, "0 (at every checkpoint) or more"),
    ])
    if cfg.audit_pairs > 0:  # each audited step is a checkpoint: the adapter `tuilab runs best` exports
        if cfg.checkpoint_every < 1:
            raise InvalidConfig(f"audit_pairs: audits happen at checkpoints and checkpoint_every is 0 (never); "
                                f"set checkpoint_every to 1 or more, or audit_pairs = 0, got {cfg.audit_pairs}")
        if cfg.audit_every % cfg.checkpoint_every:
            raise InvalidConfig(f"audit_every must be 0 (at every checkpoint) or a multiple of checkpoint_every "
                                f"({cfg.checkpoint_every}): each audited step is a checkpoint, got {cfg.audit_every}")


def validate_dpo_config(cfg: Any) -> None:
    _rules(cfg, [
        *_common(cfg),
        ("loss", lambda v: v in DPO_LOSSES, ", ".join(DPO_LOSSES)),
        ("beta", lambda v: v > 0, "positive"),
        ("label_smoothing", lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
        ("rdpo_alpha", lambda v: v >= 0, "0 or more"),
        ("ties", lambda v: v in ("skip", "half"), '"skip" or "half"'),
        ("epochs", lambda v: v >= 1, "at least 1"),
        ("max_length", lambda v: v >= 8, "at least 8 tokens"),
        ("eval_fraction", lambda v: 0 <= v < 1, "in [0, 1)"),
        ("min_pairs", lambda v: v >= 1, "at least 1"),
        ("weight_decay", lambda v: v >= 0, "0 or more"),
        ("warmup_ratio", lambda v: 0 <= v < 1, "in [0, 1)"),
        ("sample_every", lambda v: v >= 0, "0 (never) or more"),
        ("sample_prompts", lambda v: v >= 0, "0 or more"),
        ("max_new_tokens", lambda v: v >= 1, "at least 1"),
        ("temperature", lambda v: v > 0, "positive"),
        ("checkpoint_every", lambda v: v >= 0, "0 (never) or more"),
    ])


def check_model(spec: str, paths: LabPaths, key: str = "base_model") -> Path:
    """The base model's folder; InvalidConfig if it is not a model (nothing is loaded)."""
    from tuilab.modeling.registry import ModelNotFound, resolve_model

    try:
        return resolve_model(spec, paths.models)
    except ModelNotFound as exc:
        raise InvalidConfig(f"{key}: {exc}") from None


def check_reward_run(db: Any, spec: str, paths: LabPaths, key: str = "reward_run", *, completed: bool = True) -> Path:
    """A completed reward-model run (or a folder holding reward.json) → its folder.

    A job about to load the model asks only for its files (`completed=False`):
    the run's status was checked before the job started.
    """
    from tuilab.store import runs as runs_store

    if not spec:
        raise InvalidConfig(f"{key} is not set (no reward model): name a completed reward run (`tuilab runs list --kind rm`) "
                            "or a reward model folder, e.g. --set reward_run=rm-…")
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "reward.json").is_file():
            raise InvalidConfig(f"{key}: {path} is not a reward model folder (no reward.json)")
        return path
    try:
        run = runs_store.get_run(db, spec)
    except runs_store.RunNotFound:
        raise InvalidConfig(f"{key}: no run {spec!r} in this lab and no such folder; "
                            "`tuilab runs list --kind rm` shows the reward runs") from None
    if run.kind != "rm":
        raise InvalidConfig(f"{key}: {spec} is a {run.kind} run, not a reward model run")
    if completed and run.status != "completed":
        raise InvalidConfig(f"{key}: reward run {spec} is {run.status}, not completed; "
                            "train one to the end or pick another")
    folder = Path(run.output_dir or paths.runs / run.id)
    if not (folder / "reward.json").is_file():
        raise InvalidConfig(f"{key}: reward run {spec} has no trained model in {folder} (no reward.json)")
    return folder


def _check_pairs(db: Any, cfg: Any) -> None:
    """Enough usable pairs for `cfg`, counted as the reward job counts them."""
    from tuilab.jobs.rm_job import left_out_counts
    from tuilab.store.pairs import preference_pairs

    n = identical = 0
    for p in preference_pairs(db, ties=cfg.ties):
        if p.chosen == p.rejected:
            identical += 1
        elif p.label == 1.0 or cfg.ties == "half":
            n += 1
    if n >= cfg.min_pairs:
        return
    words = {"both_bad": "marked both bad", "skip": "skipped", "ties": "ties (ties = \"skip\")"}
    left_out = {**left_out_counts(db, cfg), "identical": identical}  # reads only cfg.ties
    reasons = [f"{k} {words.get(w, w)}" for w, k in left_out.items() if k]
    why = f"; left out: {', '.join(reasons)}" if reasons else ""
    raise InvalidConfig(f"min_pairs: not enough preference pairs to train a reward model: {n} usable, "
                        f"{cfg.min_pairs} needed (min_pairs){why}. Label more pairs, or lower min_pairs")


def validate_job(kind: str, cfg: Any, *, db: Any, paths: LabPaths) -> None:
    """Everything a `kind` job with `cfg` needs, checked now; raises InvalidConfig naming the key."""
    if kind == "rm":
        validate_reward_config(cfg)
        check_model(cfg.base_model, paths)
        _check_pairs(db, cfg)
    elif kind == "dpo":
        validate_dpo_config(cfg)
        check_model(cfg.base_model, paths)
        _check_pairs(db, cfg)
        if cfg.gold_scorer and ":" not in cfg.gold_scorer:
            check_reward_run(db, cfg.gold_scorer, paths, key="gold_scorer")
    elif kind == "ppo":
        validate_ppo_config(cfg)
        check_model(cfg.base_model, paths)
        check_reward_run(db, cfg.reward_run, paths)
        if cfg.gold_scorer and ":" not in cfg.gold_scorer:
            check_reward_run(db, cfg.gold_scorer, paths, key="gold_scorer")
        from tuilab.store.prompts import count_prompts

        source = cfg.prompt_source or None
        if count_prompts(db, split=cfg.prompt_split, source=source) == 0:
            where = f" from source {source!r}" if source else ""
            raise InvalidConfig(f"prompt_split: no {cfg.prompt_split!r} prompts{where} in this lab; add some "
                                "with `tuilab data import FILE`, or change prompt_split / prompt_source")
        if cfg.audit_pairs > 0 and count_prompts(db, split="test") == 0:
            raise InvalidConfig("audit_pairs: no held-out ('test') prompts in this lab to audit on; add some with "
                                "`tuilab data import FILE --split test`, or set audit_pairs = 0")
    # Other kinds (none yet) have no checks here; their job builder refuses what it cannot run.
