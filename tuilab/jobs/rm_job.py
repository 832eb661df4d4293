"""The reward-model job: preference pairs from the database → `train_reward_model` → a run folder."""

from __future__ import annotations

from typing import Any

from tuilab.config import RewardConfig
from tuilab.jobs.runner import Job, JobContext


def reward_job(cfg: RewardConfig, *, name: str | None = None, run_id: str = "") -> Job:
    """A Job that trains `cfg` on every usable pair in the lab's database."""
    return Job(kind="rm", config=cfg, fn=lambda ctx: run_reward_job(cfg, ctx), name=name or cfg.name, run_id=run_id)


def left_out_counts(db, cfg: RewardConfig) -> dict[str, int]:
    """Comparisons that give no pair under `cfg`, by reason (for the "too few pairs" message)."""
    from tuilab.store.comparisons import label_stats

    by = label_stats(db).by_decision
    counts = {"both_bad": by.get("both_bad", 0), "skip": by.get("skip", 0)}
    if cfg.ties == "skip":
        counts["ties"] = by.get("tie", 0)
    return counts


def run_reward_job(cfg: RewardConfig, ctx: JobContext) -> dict[str, Any]:
    from tuilab.store.pairs import preference_pairs
    from tuilab.training.reward import NotEnoughPairs, train_reward_model, usable_pairs

    pairs = preference_pairs(ctx.db, ties=cfg.ties)
    left_out = left_out_counts(ctx.db, cfg)
    kept, _ = usable_pairs(cfg, pairs)
    if len(kept) < cfg.min_pairs:  # refuse before spending time on loading the model
        raise NotEnoughPairs(len(kept), cfg.min_pairs, left_out)

    from tuilab.modeling.registry import resolve_model

    return train_reward_model(
        cfg,
        pairs,
        base=resolve_model(cfg.base_model, ctx.paths.models),
        output_dir=ctx.output_dir,
        sink=ctx.sink,
        control=ctx.control,
        left_out=left_out,
    )
