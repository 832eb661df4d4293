"""`tuilab train rm`: the reward-model job the UI runs, headless, with a progress bar.

Progress and warnings go to stderr; stdout gets exactly one JSON line (the
final metrics) so scripts can read it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tuilab.cli.job_args import build_config, json_safe, validate
from tuilab.config import RewardConfig


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "rm",
        help="train a reward model (Bradley–Terry, LoRA) on the labelled pairs",
        description="Train a reward model on every usable pair in the lab's database. "
        "Prints progress on stderr and the final metrics as one JSON line on stdout.",
    )
    parser.add_argument("--config", metavar="FILE.toml", help="RewardConfig settings (see `tuilab/config.py`)")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help="override one setting, e.g. --set epochs=3 --set lora.r=16 (repeatable; wins over --config)",
    )
    parser.add_argument("--name", help="a name for the run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


class _ProgressView:
    """Turns forwarded event batches into a rich progress bar on stderr."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("acc {task.fields[acc]}"),
            TextColumn("eval {task.fields[eval]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=quiet,
            transient=False,
        )
        self.task = self.progress.add_task("reward model", total=None, loss="–", acc="–", eval="–")

    def __enter__(self) -> _ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, events: list) -> None:
        from tuilab.training.events import Checkpoint, Metrics, RunWarning

        for event in events:
            if isinstance(event, Metrics):
                fields: dict[str, Any] = {}
                values = event.values
                if "train/loss" in values:
                    fields["loss"] = f"{values['train/loss']:.4f}"
                if "train/accuracy" in values:
                    fields["acc"] = f"{values['train/accuracy']:.2f}"
                if "eval/accuracy" in values:
                    fields["eval"] = f"{values['eval/accuracy']:.2f}"
                self.progress.update(self.task, total=event.total_steps, completed=event.step, **fields)
            elif isinstance(event, RunWarning):
                self.progress.console.print(f"[yellow]warning[/]: {event.message}")
            elif isinstance(event, Checkpoint):
                self.progress.console.print(f"checkpoint at step {event.step}: {event.path}", style="dim")


def _quiet_libraries() -> None:
    """Hugging Face's own "Loading weights" bars would tear through ours."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def run(args: argparse.Namespace) -> int:
    from tuilab.cli import CLIError, paths_from

    cfg = build_config(RewardConfig, args)
    validate("rm", cfg, args)
    from tuilab.jobs.rm_job import reward_job
    from tuilab.jobs.runner import run_job

    paths = paths_from(args)
    job = reward_job(cfg)
    _quiet_libraries()
    with _ProgressView(args.quiet) as view:
        view.console.print(f"run {job.run_id}: base model {cfg.base_model}, output {paths.runs / job.run_id}",
                           style="dim")
        outcome = run_job(job, paths=paths, forward=view)
    if outcome.status == "completed":
        metrics = dict(outcome.metrics)
        metrics.setdefault("run_id", outcome.run_id)
        print(json.dumps(json_safe(metrics)), flush=True)
        return 0
    if outcome.status == "cancelled":
        print(f"tuilab: run {outcome.run_id} cancelled at step {outcome.step or 0}", file=sys.stderr)
        return 130
    step = f" at step {outcome.step}" if outcome.step is not None else ""
    raise CLIError(f"reward-model run {outcome.run_id} failed{step}: {outcome.error_summary}")
