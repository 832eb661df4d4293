"""`tuilab train dpo`: the DPO job the UI runs, headless, with a progress bar.

Progress, warnings and checkpoints go to stderr; stdout gets exactly one JSON
line (the final metrics). `--resume RUN_ID` continues a run (after a crash,
`kill -9`, or a cancel) from its newest checkpoint, in the same run row.
"""

from __future__ import annotations

import argparse
import json
import sys

from tuilab.cli.job_args import build_config, json_safe
from tuilab.config import DPOConfig


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "dpo",
        help="train a policy with DPO on the preference pairs",
        description="Direct preference optimisation (LoRA policy, reference = adapters off) on the lab's "
        "preference pairs. Prints progress on stderr and the final metrics as one JSON line on stdout.",
    )
    parser.add_argument("--config", metavar="FILE.toml", help="DPOConfig settings (see `tuilab/config.py`)")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help="override one setting, e.g. --set loss=rdpo --set beta=0.1 (repeatable; wins over --config)",
    )
    parser.add_argument("--name", help="a name for the run")
    parser.add_argument("--resume", metavar="RUN_ID",
                        help="continue this DPO run from its newest checkpoint (only epochs may be --set)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _resume_epochs(args: argparse.Namespace) -> int | None:
    """On --resume only `epochs` may change (the data order and optimiser depend on the rest)."""
    from tuilab.cli import CLIError
    from tuilab.config import ConfigError, parse_sets

    if args.config:
        raise CLIError("--resume continues a run with its own config; drop --config")
    try:
        sets = parse_sets(args.sets)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    other = sorted(set(sets) - {"epochs"})
    if other:
        raise CLIError(f"--resume can only change epochs, not {', '.join(other)}")
    if "epochs" in sets:
        try:
            return int(sets["epochs"])
        except ValueError:
            raise CLIError(f"epochs: expected int, got {sets['epochs']!r}") from None
    return None


class _ProgressView:
    """Forwarded event batches → a rich progress bar on stderr (loss, accuracy, held-out accuracy, length)."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("acc {task.fields[acc]}"),
            TextColumn("held-out {task.fields[eval]}"), TextColumn("len {task.fields[length]}"),
            TimeElapsedColumn(), console=self.console, disable=quiet, transient=False,
        )
        self.task = self.progress.add_task("dpo", total=None, loss="–", acc="–", eval="–", length="–")

    def __enter__(self) -> _ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, events: list) -> None:
        from tuilab.training.events import Checkpoint, Metrics, RunWarning

        for event in events:
            if isinstance(event, Metrics):
                v = event.values
                fields = {}
                if "loss" in v:
                    fields.update(loss=f"{v['loss']:.3f}", acc=f"{v['rewards/accuracies']:.0%}")
                if "eval/accuracy" in v:
                    fields["eval"] = f"{v['eval/accuracy']:.0%}"
                if "response/length_mean" in v:
                    fields["length"] = f"{v['response/length_mean']:.0f}"
                self.progress.update(self.task, total=event.total_steps, completed=event.step, **fields)
            elif isinstance(event, RunWarning):
                self.progress.console.print(f"[yellow]warning[/] (step {event.step}, {event.code}): {event.message}")
            elif isinstance(event, Checkpoint):
                self.progress.console.print(f"checkpoint at step {event.step}: {event.path}", style="dim")


def run(args: argparse.Namespace) -> int:
    from tuilab.cli import CLIError, paths_from
    from tuilab.jobs.dpo_job import DPOJobError, dpo_job, resume_dpo_job
    from tuilab.jobs.runner import run_job

    paths = paths_from(args)
    if args.resume:
        epochs = _resume_epochs(args)
        from tuilab.store.db import open_db

        db = open_db(paths.db)
        try:
            job = resume_dpo_job(db, args.resume, epochs=epochs)
        except DPOJobError as exc:
            raise CLIError(str(exc)) from None
        finally:
            db.conn.close()
    else:
        try:
            job = dpo_job(build_config(DPOConfig, args))
        except DPOJobError as exc:
            raise CLIError(str(exc)) from None
    cfg = job.config
    with _ProgressView(args.quiet) as view:
        verb = "resuming" if args.resume else "run"
        view.console.print(f"{verb} {job.run_id}: base model {cfg.base_model}, loss {cfg.loss}, β {cfg.beta}, "
                           f"output {paths.runs / job.run_id}", style="dim")
        outcome = run_job(job, paths=paths, forward=view)
    if outcome.status == "completed":
        metrics = dict(outcome.metrics)
        metrics.setdefault("run_id", outcome.run_id)
        print(json.dumps(json_safe(metrics)), flush=True)
        return 0
    if outcome.status == "cancelled":
        print(f"tuilab: run {outcome.run_id} cancelled at step {outcome.step or 0}; "
              f"continue with `tuilab train dpo --resume {outcome.run_id}`", file=sys.stderr)
        return 130
    step = f" at step {outcome.step}" if outcome.step is not None else ""
    raise CLIError(f"DPO run {outcome.run_id} failed{step}: {outcome.error_summary}")
