"""Continuing a PPO or DPO run: the run row to continue, and the checkpoint to continue from.

Both loops save their state in `checkpoints/step-N/` of the run folder and
resume in the same run row with the same config; only the run's length may grow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuilab.config import from_dict
from tuilab.jobs.runner import Job, JobContext


class JobRefused(ValueError):
    """A run that cannot start or continue; the message says what to do."""


def main_process() -> bool:
    """False on the other ranks of a launched multi-process job (`RANK` > 0): only rank 0 writes the run folder."""
    return os.environ.get("RANK", "0") in ("", "0")


def run_inputs(ctx: JobContext, filename: str, resume: bool, record: type, load: Callable[[], list]) -> list:
    """The run's inputs (prompts, pairs): `load()`ed and saved in the run folder when the run starts,
    so a resume sees the same items in the same order (read back as `record`s)."""
    saved = ctx.output_dir / filename
    if resume and saved.exists():
        return [record(**item) for item in json.loads(saved.read_text())]
    items = load()
    if main_process():
        saved.write_text(json.dumps([item.__dict__ for item in items], ensure_ascii=False))
    return items

def resume_job(db, run_id: str, *, kind: str, config_cls: type, run_fn: Callable[..., dict[str, Any]],
               length_key: str, length: int | None, unit: str, error: type[ValueError]) -> Job:
    """A Job that continues run `run_id` of `kind` from its newest checkpoint (same run row, same config).

    `length` (the config's `length_key`: total_updates, epochs) may extend a
    run; nothing else may change on resume, since the data order and the
    optimiser state depend on it. Refusals raise `error` with a sentence.
    """
    from tuilab.store import runs as runs_store

    name = kind.upper()
    try:
        run = runs_store.get_run(db, run_id)
    except runs_store.RunNotFound:
        raise error(f"no run {run_id!r} in this lab; `tuilab runs list --kind {kind}` (or the Train screen) "
                    f"shows the {name} runs") from None
    if run.kind != kind:
        raise error(f"run {run_id} is a {run.kind} run, not a {name} run; only {name} runs resume here")
    cfg = from_dict(config_cls, run.config)
    if length is not None:
        setattr(cfg, length_key, int(length))
    elif run.status == "completed":
        raise error(f"run {run_id} already completed {getattr(cfg, length_key)} {unit}; "
                    f"pass --set {length_key}=N (more) to continue it")
    return Job(kind=kind, config=cfg, fn=lambda ctx: run_fn(cfg, ctx, resume=True), name=run.name,
               parents=tuple(run.parents), run_id=run_id)


def newest_checkpoint(ctx: JobContext, state_file: str) -> Path | None:
    """The newest complete checkpoint (one holding `state_file`) whose step's metrics reached the database.

    A kill can land after a checkpoint folder is written but before the flush
    that records its metrics; resuming from it would leave that step's metrics
    missing. Metrics are flushed in step order, so any checkpoint at or before
    the last recorded step is safe, whether or not its own row was written.
    """
    from tuilab.store import runs as runs_store

    recorded = runs_store.last_metric_step(ctx.db, ctx.run_id)
    found: list[tuple[int, Path]] = []
    latest = runs_store.latest_checkpoint(ctx.db, ctx.run_id)
    if latest and (Path(latest[1]) / state_file).exists():
        found.append((latest[0], Path(latest[1])))
    root = ctx.output_dir / "checkpoints"
    for folder in root.glob("step-*") if root.is_dir() else []:
        if folder.name[5:].isdigit() and (folder / state_file).exists():
            found.append((int(folder.name[5:]), folder))
    found = [f for f in found if f[0] <= recorded]
    return max(found)[1] if found else None
