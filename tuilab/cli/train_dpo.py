"""`tuilab train dpo`: the DPO job the UI runs, headless, with a progress bar.

Progress, warnings and checkpoints go to stderr; stdout gets exactly one JSON
line (the final metrics). `--resume RUN_ID` continues a run (after a crash,
`kill -9`, or a cancel) from its newest checkpoint, in the same run row.
"""

from __future__ import annotations

import argparse
import json
import sys

from tuilab.cli.job_args import (
    add_config_arguments,
    build_config,
    json_safe,
    resume_override,
    validate,
)
from tuilab.cli.progress import Column, ProgressView
from tuilab.config import DPOConfig


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "dpo",
        help="train a policy with DPO on the preference pairs",
        description="Direct preference optimisation (LoRA policy, reference = adapters off) on the lab's "
        "preference pairs. Prints progress on stderr and the final metrics as one JSON line on stdout.",
    )
    add_config_arguments(parser, DPOConfig, "--set loss=rdpo --set beta=0.1")
    parser.add_argument("--resume", metavar="RUN_ID",
                        help="continue this DPO run from its newest checkpoint (only epochs may be --set)")
    parser.set_defaults(func=run)


def _resume_job(args: argparse.Namespace, epochs: int | None):
    from tuilab.cli import CLIError, open_lab, paths_from
    from tuilab.jobs.dpo_job import DPOJobError, resume_dpo_job

    if not paths_from(args).db.exists():
        raise CLIError(f"no run {args.resume!r}: there is no lab database at {paths_from(args).db} yet")
    db = open_lab(args)
    try:
        return resume_dpo_job(db, args.resume, epochs=epochs)
    except DPOJobError as exc:
        raise CLIError(str(exc)) from None
    finally:
        db.conn.close()


COLUMNS = [Column("loss", "loss", ".3f"), Column("acc", "rewards/accuracies", ".0%"),
           Column("held-out", "eval/accuracy", ".0%"), Column("len", "response/length_mean", ".0f"),
           Column("kl", "objective/kl", ".2f"), Column("", "time/step_s", ".1f", "s/step")]


def run(args: argparse.Namespace) -> int:
    from tuilab.cli import CLIError, paths_from
    from tuilab.jobs.dpo_job import DPOJobError, dpo_job
    from tuilab.jobs.runner import run_job

    paths = paths_from(args)
    if args.resume:
        job = _resume_job(args, resume_override(args, "epochs"))
        validate("dpo", job.config, args)
    else:
        cfg = build_config(DPOConfig, args)
        validate("dpo", cfg, args)
        try:
            job = dpo_job(cfg)
        except DPOJobError as exc:
            raise CLIError(str(exc)) from None
    cfg = job.config
    with ProgressView("dpo", COLUMNS, quiet=args.quiet) as view:
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
