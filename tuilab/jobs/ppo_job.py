"""The PPO job: prompts from the database, base + reward model from the reward run's folder → `train_ppo`.

Resuming continues the same run row: the newest complete checkpoint (from the
database, or from disk when the process died between writing a checkpoint and
recording it), the same prompt list (saved in the run folder when it started),
so the data order, β and step count carry on where they stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuilab.config import PPOConfig
from tuilab.jobs.resume import JobRefused, newest_checkpoint, resume_job, run_inputs
from tuilab.jobs.runner import Job, JobContext
from tuilab.records import Prompt

PROMPTS_FILE = "prompts.json"


class PPOJobError(JobRefused):
    """A PPO run that cannot start; the message says what to do."""


def ppo_job(cfg: PPOConfig, *, name: str | None = None, run_id: str = "") -> Job:
    """A Job that runs PPO with `cfg` against the reward run `cfg.reward_run`."""
    parents = (cfg.reward_run,) if cfg.reward_run and not _looks_like_path(cfg.reward_run) else ()
    return Job(kind="ppo", config=cfg, fn=lambda ctx: run_ppo_job(cfg, ctx), name=name or cfg.name,
               parents=parents, run_id=run_id)


def resume_ppo_job(db, run_id: str, *, total_updates: int | None = None) -> Job:
    """A Job that continues PPO run `run_id` from its newest checkpoint; `total_updates` may extend it."""
    return resume_job(db, run_id, kind="ppo", config_cls=PPOConfig, run_fn=run_ppo_job, length_key="total_updates",
                      length=total_updates, unit="updates", error=PPOJobError)


def _looks_like_path(text: str) -> bool:
    return "/" in text or text.startswith((".", "~")) or Path(text).expanduser().is_dir()


def reward_dir(db, spec: str, paths, key: str = "reward_run") -> Path:
    """A reward run id (its output folder) or a folder holding reward.json."""
    from tuilab.jobs.validate import InvalidConfig, check_reward_run

    try:
        return check_reward_run(db, spec, paths, key, completed=False)
    except InvalidConfig as exc:
        raise PPOJobError(str(exc)) from None


def _prompts(ctx: JobContext, cfg: PPOConfig, resume: bool) -> list[Prompt]:
    """The run's prompt list, the same one in the same order on resume."""
    return run_inputs(ctx, PROMPTS_FILE, resume, Prompt, lambda: _choose_prompts(ctx, cfg))


def _choose_prompts(ctx: JobContext, cfg: PPOConfig) -> list[Prompt]:
    from tuilab.store.prompts import count_prompts, list_prompts

    source = cfg.prompt_source or None
    n = count_prompts(ctx.db, split=cfg.prompt_split, source=source)
    if n == 0:
        total = count_prompts(ctx.db)
        where = f" from source {source!r}" if source else ""
        raise PPOJobError(f"no {cfg.prompt_split!r} prompts{where} in this lab ({total} in all); add some "
                          "with `tuilab data import FILE`, or set prompt_split / prompt_source")
    limit = cfg.prompt_limit if cfg.prompt_limit > 0 else n
    return list_prompts(ctx.db, split=cfg.prompt_split, limit=limit, source=source)


def run_ppo_job(cfg: PPOConfig, ctx: JobContext, *, resume: bool = False) -> dict[str, Any]:
    from tuilab.modeling.loading import load_model
    from tuilab.modeling.registry import resolve_model
    from tuilab.training.ppo import STATE_FILE, train_ppo

    prompts = _prompts(ctx, cfg, resume)
    rm_dir = reward_dir(ctx.db, cfg.reward_run, ctx.paths)
    resume_from = newest_checkpoint(ctx, STATE_FILE) if resume else None
    gold_spec = cfg.gold_scorer
    if gold_spec and ":" not in gold_spec:  # a reward run id (or folder) as the gold judge
        gold_spec = str(reward_dir(ctx.db, gold_spec, ctx.paths, "gold_scorer"))
    base = load_model(resolve_model(cfg.base_model, ctx.paths.models), four_bit=cfg.four_bit)
    if gold_spec != cfg.gold_scorer:
        from dataclasses import replace

        cfg = replace(cfg, gold_scorer=gold_spec)
    return train_ppo(cfg, prompts, base=base, reward=str(rm_dir), output_dir=ctx.output_dir, sink=ctx.sink,
                     control=ctx.control, resume_from=resume_from)
