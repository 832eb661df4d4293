"""`tuilab train rm|ppo|dpo …`: the jobs the UI runs, headless, with a progress bar.

Progress, warnings and checkpoints go to stderr; stdout gets exactly one JSON
line (the final metrics), so scripts can read it. `--resume RUN_ID` continues
a PPO or DPO run (after a crash, `kill -9`, or a cancel) from its newest
checkpoint, in the same run row.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from tuilab.cli.job_args import (
    add_config_arguments,
    build_config,
    resume,
    resume_override,
    run_with_progress,
    validate,
)
from tuilab.cli.progress import Column
from tuilab.config import DPOConfig, PPOConfig, RewardConfig

OUTPUT = " Prints progress on stderr and the final metrics as one JSON line on stdout."

RM_COLUMNS = [Column("loss", "train/loss", ".4f"), Column("acc", "train/accuracy", ".2f"),
              Column("eval", "eval/accuracy", ".2f")]
PPO_COLUMNS = [Column("score", "objective/scores", "+.3f"), Column("kl", "objective/kl", ".2f"),
               Column("len", "response/length_mean", ".0f"), Column("eos", "response/eos_rate", ".0%"),
               Column("ev", "val/explained_variance", "+.2f"), Column("akl", "policy/approxkl_avg", ".0e"),
               Column("clip", "policy/clipfrac_avg", ".0%"), Column("", "time/step_s", ".1f", "s/step")]
DPO_COLUMNS = [Column("loss", "loss", ".3f"), Column("acc", "rewards/accuracies", ".0%"),
               Column("held-out", "eval/accuracy", ".0%"), Column("len", "response/length_mean", ".0f"),
               Column("kl", "objective/kl", ".2f"), Column("", "time/step_s", ".1f", "s/step")]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train a reward model, or a policy with PPO or DPO, headless")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    _verb(kinds, "rm", RewardConfig, run_rm, "--set epochs=3 --set lora.r=16",
          help="train a reward model (Bradley–Terry, LoRA) on the labelled pairs",
          description="Train a reward model on every usable pair in the lab's database.")
    _verb(kinds, "ppo", PPOConfig, run_ppo, "--set reward_run=rm-… --set kl_coef=0.1", resume_key="total_updates",
          help="run PPO against a reward model",
          description="Run PPO (LoRA policy, reference = adapters off) against a trained reward model, on the "
          "lab's train prompts.")
    _verb(kinds, "dpo", DPOConfig, run_dpo, "--set loss=rdpo --set beta=0.1", resume_key="epochs",
          help="train a policy with DPO on the preference pairs",
          description="Direct preference optimisation (LoRA policy, reference = adapters off) on the lab's "
          "preference pairs.")


def _verb(kinds: argparse._SubParsersAction, kind: str, cls: type, func: Callable, example: str, *,
          help: str, description: str, resume_key: str = "") -> None:
    parser = kinds.add_parser(kind, help=help, description=description + OUTPUT)
    add_config_arguments(parser, cls, example)
    if resume_key:
        parser.add_argument("--resume", metavar="RUN_ID", help=f"continue this {kind.upper()} run from its "
                            f"newest checkpoint (only {resume_key} may be --set)")
    parser.set_defaults(func=func)


def _quiet_libraries() -> None:
    """Hugging Face's own "Loading weights" bars would tear through ours."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def run_rm(args: argparse.Namespace) -> int:
    from tuilab.jobs.rm_job import reward_job

    cfg = build_config(RewardConfig, args)
    validate("rm", cfg, args)
    job = reward_job(cfg)
    _quiet_libraries()
    return run_with_progress(job, args, title="reward model", columns=RM_COLUMNS, what="reward-model",
                             resumable=False, eta=True, about=f"base model {cfg.base_model}")


def run_ppo(args: argparse.Namespace) -> int:
    from tuilab.jobs.ppo_job import ppo_job, resume_ppo_job

    job = _policy_job(args, "ppo", PPOConfig, ppo_job, resume_ppo_job, "total_updates")
    cfg = job.config
    return run_with_progress(job, args, title="ppo", columns=PPO_COLUMNS, what="PPO", resumable=True,
                             about=f"base model {cfg.base_model}, reward {cfg.reward_run or '–'}")


def run_dpo(args: argparse.Namespace) -> int:
    from tuilab.jobs.dpo_job import dpo_job, resume_dpo_job

    job = _policy_job(args, "dpo", DPOConfig, dpo_job, resume_dpo_job, "epochs")
    cfg = job.config
    return run_with_progress(job, args, title="dpo", columns=DPO_COLUMNS, what="DPO", resumable=True,
                             about=f"base model {cfg.base_model}, loss {cfg.loss}, β {cfg.beta}")


def _policy_job(args: argparse.Namespace, kind: str, cls: type, new_job: Callable, resume_job: Callable,
                resume_key: str):
    """A new run from the flags, or with --resume the run to continue (only `resume_key` may change)."""
    from tuilab.cli import CLIError
    from tuilab.jobs.resume import JobRefused

    if args.resume:
        job = resume(args, resume_job, **{resume_key: resume_override(args, resume_key)})
        validate(kind, job.config, args)
        return job
    cfg = build_config(cls, args)
    validate(kind, cfg, args)
    try:
        return new_job(cfg)
    except JobRefused as exc:
        raise CLIError(str(exc)) from None
