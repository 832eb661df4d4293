"""`tuilab train rm`: the reward-model job the UI runs, headless, with a progress bar.

Progress and warnings go to stderr; stdout gets exactly one JSON line (the
final metrics) so scripts can read it.
"""

from __future__ import annotations

import argparse
import json
import sys

from tuilab.cli.job_args import add_config_arguments, build_config, json_safe, validate
from tuilab.cli.progress import Column, ProgressView
from tuilab.config import RewardConfig


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "rm",
        help="train a reward model (Bradley–Terry, LoRA) on the labelled pairs",
        description="Train a reward model on every usable pair in the lab's database. "
        "Prints progress on stderr and the final metrics as one JSON line on stdout.",
    )
    add_config_arguments(parser, RewardConfig, "--set epochs=3 --set lora.r=16")
    parser.set_defaults(func=run)


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
    columns = [Column("loss", "train/loss", ".4f"), Column("acc", "train/accuracy", ".2f"),
               Column("eval", "eval/accuracy", ".2f")]
    with ProgressView("reward model", columns, quiet=args.quiet, eta=True) as view:
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
