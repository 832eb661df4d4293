"""The DPO job: preference pairs from the database, the base model → `train_dpo` → a run folder.

The pairs are the reward model's (`preference_pairs`, same ties and both-bad
rules). They are saved in the run folder when the run starts, so a resume
(after a crash, `kill -9` or a cancel) trains on the same pairs in the same
order from the newest checkpoint whose metrics reached the database.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tuilab.config import DPOConfig
from tuilab.jobs.resume import JobRefused, newest_checkpoint, resume_job, run_inputs
from tuilab.jobs.runner import Job, JobContext
from tuilab.records import PreferencePair

PAIRS_FILE = "pairs.json"


class DPOJobError(JobRefused):
    """A DPO run that cannot start; the message says what to do."""


def dpo_job(cfg: DPOConfig, *, name: str | None = None, run_id: str = "") -> Job:
    """A Job that trains a DPO policy with `cfg` on every usable pair in the lab's database.

    Raises DPOJobError for a setting out of range, before any run row exists.
    """
    from tuilab.training.dpo import validate_config

    try:
        validate_config(cfg)
    except ValueError as exc:
        raise DPOJobError(str(exc)) from None
    return Job(kind="dpo", config=cfg, fn=lambda ctx: run_dpo_job(cfg, ctx), name=name or cfg.name, run_id=run_id)


def resume_dpo_job(db, run_id: str, *, epochs: int | None = None) -> Job:
    """A Job that continues DPO run `run_id` from its newest checkpoint; `epochs` may extend it."""
    return resume_job(db, run_id, kind="dpo", config_cls=DPOConfig, run_fn=run_dpo_job, length_key="epochs",
                      length=epochs, unit="epochs", error=DPOJobError)


def _pairs(ctx: JobContext, cfg: DPOConfig, resume: bool) -> list[PreferencePair]:
    """The run's pairs, the same ones in the same order on resume."""
    from tuilab.store.pairs import preference_pairs

    return run_inputs(ctx, PAIRS_FILE, resume, PreferencePair, lambda: preference_pairs(ctx.db, ties=cfg.ties))


def run_dpo_job(cfg: DPOConfig, ctx: JobContext, *, resume: bool = False) -> dict[str, Any]:
    from tuilab.jobs.ppo_job import reward_dir
    from tuilab.jobs.rm_job import left_out_counts
    from tuilab.modeling.loading import load_model
    from tuilab.training.dpo import STATE_FILE, train_dpo
    from tuilab.training.reward import NotEnoughPairs, usable_pairs

    pairs = _pairs(ctx, cfg, resume)
    left_out = left_out_counts(ctx.db, cfg)
    kept, _ = usable_pairs(cfg, pairs)
    if len(kept) < cfg.min_pairs:  # refuse before spending time on loading the model
        raise NotEnoughPairs(len(kept), cfg.min_pairs, left_out)
    resume_from = newest_checkpoint(ctx, STATE_FILE) if resume else None
    if cfg.gold_scorer and ":" not in cfg.gold_scorer:  # a reward run id (or folder) as the gold judge
        cfg = replace(cfg, gold_scorer=str(reward_dir(ctx.db, cfg.gold_scorer, ctx.paths, "gold_scorer")))
    base_path = Path(cfg.base_model).expanduser()
    if not base_path.is_dir():
        from tuilab.modeling.registry import resolve_model

        base_path = resolve_model(cfg.base_model, ctx.paths.models)
    base = load_model(base_path, four_bit=cfg.four_bit)
    return train_dpo(cfg, pairs, base=base, output_dir=ctx.output_dir, sink=ctx.sink, control=ctx.control,
                     resume_from=resume_from, left_out=left_out)
