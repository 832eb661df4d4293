"""`tuilab train ppo`: the PPO job the UI runs, headless, with a progress bar.

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
from tuilab.config import PPOConfig


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "ppo",
        help="run PPO against a reward model",
        description="Run PPO (LoRA policy, reference = adapters off) against a trained reward model, on the "
        "lab's train prompts. Prints progress on stderr and the final metrics as one JSON line on stdout.",
    )
    add_config_arguments(parser, PPOConfig, "--set reward_run=rm-… --set kl_coef=0.1")
    parser.add_argument("--resume", metavar="RUN_ID",
                        help="continue this PPO run from its newest checkpoint (only total_updates may be --set)")
    parser.set_defaults(func=run)


def _resume_job(args: argparse.Namespace, total: int | None):
    from tuilab.cli import CLIError, open_lab, paths_from
    from tuilab.jobs.ppo_job import PPOJobError, resume_ppo_job
    from tuilab.store.runs import RunNotFound, get_run

    if not paths_from(args).db.exists():
        raise CLIError(f"no run {args.resume!r}: there is no lab database at {paths_from(args).db} yet")
    db = open_lab(args)
    try:
        try:
            get_run(db, args.resume)
        except RunNotFound:
            raise CLIError(f"no run {args.resume!r} in this lab; `tuilab runs list --kind ppo` shows the "
                           "PPO runs") from None
        return resume_ppo_job(db, args.resume, total_updates=total)
    except PPOJobError as exc:
        raise CLIError(str(exc)) from None
    finally:
        db.conn.close()


def run(args: argparse.Namespace) -> int:
    from tuilab.cli import CLIError, paths_from
    from tuilab.jobs.ppo_job import ppo_job
    from tuilab.jobs.runner import run_job

    paths = paths_from(args)
    if args.resume:
        total = resume_override(args, "total_updates")
        job = _resume_job(args, total)
        validate("ppo", job.config, args)
    else:
        cfg = build_config(PPOConfig, args)
        validate("ppo", cfg, args)
        job = ppo_job(cfg)
    cfg = job.config
    columns = [Column("score", "objective/scores", "+.3f"), Column("kl", "objective/kl", ".2f"),
               Column("len", "response/length_mean", ".0f"), Column("eos", "response/eos_rate", ".0%"),
               Column("ev", "val/explained_variance", "+.2f"), Column("akl", "policy/approxkl_avg", ".0e"),
               Column("clip", "policy/clipfrac_avg", ".0%"), Column("", "time/step_s", ".1f", "s/step")]
    with ProgressView("ppo", columns, quiet=args.quiet) as view:
        verb = "resuming" if args.resume else "run"
        view.console.print(f"{verb} {job.run_id}: base model {cfg.base_model}, reward {cfg.reward_run or '–'}, "
                           f"output {paths.runs / job.run_id}", style="dim")
        outcome = run_job(job, paths=paths, forward=view)
    if outcome.status == "completed":
        metrics = dict(outcome.metrics)
        metrics.setdefault("run_id", outcome.run_id)
        print(json.dumps(json_safe(metrics)), flush=True)
        return 0
    if outcome.status == "cancelled":
        print(f"tuilab: run {outcome.run_id} cancelled at step {outcome.step or 0}; "
              f"continue with `tuilab train ppo --resume {outcome.run_id}`", file=sys.stderr)
        return 130
    step = f" at step {outcome.step}" if outcome.step is not None else ""
    raise CLIError(f"PPO run {outcome.run_id} failed{step}: {outcome.error_summary}")
