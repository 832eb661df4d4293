"""The PPO job: prompts from the database, base + reward model from the reward run's folder → `train_ppo`.

Resuming continues the same run row: the newest complete checkpoint (from the
database, or from disk when the process died between writing a checkpoint and
recording it), the same prompt list (saved in the run folder when it started),
so the data order, β and step count carry on where they stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuilab.config import PPOConfig, from_dict
from tuilab.jobs.runner import Job, JobContext
from tuilab.records import Prompt

PROMPTS_FILE = "prompts.json"


class PPOJobError(ValueError):
    """A PPO run that cannot start; the message says what to do."""


def ppo_job(cfg: PPOConfig, *, name: str | None = None, run_id: str = "") -> Job:
    """A Job that runs PPO with `cfg` against the reward run `cfg.reward_run`."""
    parents = (cfg.reward_run,) if cfg.reward_run and not _looks_like_path(cfg.reward_run) else ()
    return Job(kind="ppo", config=cfg, fn=lambda ctx: run_ppo_job(cfg, ctx), name=name or cfg.name,
               parents=parents, run_id=run_id)


def resume_ppo_job(db, run_id: str, *, total_updates: int | None = None) -> Job:
    """A Job that continues PPO run `run_id` from its newest checkpoint (same run row, same config).

    `total_updates` may extend a run; nothing else may change on resume, since
    the data order and the optimiser state depend on it.
    """
    from tuilab.store import runs as runs_store

    try:
        run = runs_store.get_run(db, run_id)
    except runs_store.RunNotFound:
        raise PPOJobError(f"no run {run_id!r} in this lab (see the runs with `tuilab runs` or the Train screen)") from None
    if run.kind != "ppo":
        raise PPOJobError(f"run {run_id} is a {run.kind} run, not a PPO run; only PPO runs resume here")
    cfg = from_dict(PPOConfig, run.config)
    if total_updates is not None:
        cfg.total_updates = int(total_updates)
    if run.status == "completed" and total_updates is None:
        raise PPOJobError(f"run {run_id} already completed {cfg.total_updates} updates; "
                          "pass --set total_updates=N (more) to continue it")
    return Job(kind="ppo", config=cfg, fn=lambda ctx: run_ppo_job(cfg, ctx, resume=True), name=run.name,
               parents=tuple(run.parents), run_id=run_id)


def _looks_like_path(text: str) -> bool:
    return "/" in text or text.startswith((".", "~")) or Path(text).expanduser().is_dir()


def reward_dir(db, spec: str, paths) -> Path:
    """A reward run id (its output folder) or a folder holding reward.json."""
    from tuilab.store import runs as runs_store

    if not spec:
        raise PPOJobError("no reward model: set reward_run to a reward run id (`tuilab train rm` prints it) "
                          "or a reward model folder")
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    try:
        run = runs_store.get_run(db, spec)
    except runs_store.RunNotFound:
        raise PPOJobError(f"reward_run {spec!r} is neither a run in this lab nor a folder; "
                          "train one with `tuilab train rm`") from None
    if run.kind != "rm":
        raise PPOJobError(f"reward_run {spec!r} is a {run.kind} run, not a reward model")
    folder = Path(run.output_dir or paths.runs / run.id)
    if not (folder / "reward.json").exists():
        raise PPOJobError(f"reward run {spec} ({run.status}) has no trained model in {folder}; "
                          "wait for it to complete or pick another")
    return folder


def _prompts(ctx: JobContext, cfg: PPOConfig, resume: bool) -> list[Prompt]:
    """The run's prompt list: saved at the start so a resume sees the same list in the same order."""
    from tuilab.store.prompts import count_prompts, list_prompts

    saved = ctx.output_dir / PROMPTS_FILE
    if resume and saved.exists():
        return [Prompt(**p) for p in json.loads(saved.read_text())]
    source = cfg.prompt_source or None
    n = count_prompts(ctx.db, split=cfg.prompt_split, source=source)
    if n == 0:
        total = count_prompts(ctx.db)
        where = f" from source {source!r}" if source else ""
        raise PPOJobError(f"no {cfg.prompt_split!r} prompts{where} in this lab ({total} in all); add some "
                          "with `tuilab data import FILE`, or set prompt_split / prompt_source")
    limit = cfg.prompt_limit if cfg.prompt_limit > 0 else n
    prompts = list_prompts(ctx.db, split=cfg.prompt_split, limit=limit, source=source)
    saved.write_text(json.dumps([p.__dict__ for p in prompts], ensure_ascii=False))
    return prompts


def _checkpoint(ctx: JobContext) -> Path | None:
    """The newest complete checkpoint whose step's metrics reached the database.

    A kill can land after a checkpoint folder is written but before the flush
    that records its metrics; resuming from it would leave that step's metrics
    missing. Metrics are flushed in step order, so any checkpoint at or before
    the last recorded step is safe, whether or not its own row was written.
    """
    from tuilab.store import runs as runs_store
    from tuilab.training.ppo import STATE_FILE

    recorded = runs_store.last_metric_step(ctx.db, ctx.run_id)
    found: list[tuple[int, Path]] = []
    latest = runs_store.latest_checkpoint(ctx.db, ctx.run_id)
    if latest and (Path(latest[1]) / STATE_FILE).exists():
        found.append((latest[0], Path(latest[1])))
    root = ctx.output_dir / "checkpoints"
    for folder in root.glob("step-*") if root.is_dir() else []:
        if folder.name[5:].isdigit() and (folder / STATE_FILE).exists():
            found.append((int(folder.name[5:]), folder))
    found = [f for f in found if f[0] <= recorded]
    return max(found)[1] if found else None


def run_ppo_job(cfg: PPOConfig, ctx: JobContext, *, resume: bool = False) -> dict[str, Any]:
    from tuilab.modeling.loading import load_model
    from tuilab.modeling.registry import resolve_model
    from tuilab.training.ppo import train_ppo

    prompts = _prompts(ctx, cfg, resume)
    rm_dir = reward_dir(ctx.db, cfg.reward_run, ctx.paths)
    resume_from = _checkpoint(ctx) if resume else None
    gold_spec = cfg.gold_scorer
    if gold_spec and ":" not in gold_spec:  # a reward run id (or folder) as the gold judge
        gold_spec = str(reward_dir(ctx.db, gold_spec, ctx.paths))
    base = load_model(resolve_model(cfg.base_model, ctx.paths.models), four_bit=cfg.four_bit)
    if gold_spec != cfg.gold_scorer:
        from dataclasses import replace

        cfg = replace(cfg, gold_scorer=gold_spec)
    return train_ppo(cfg, prompts, base=base, reward=str(rm_dir), output_dir=ctx.output_dir, sink=ctx.sink,
                     control=ctx.control, resume_from=resume_from)
