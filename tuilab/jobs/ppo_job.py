"""The PPO job: prompts from the database, base + reward model from the reward run's folder → `train_ppo`.

Resuming continues the same run row: the newest complete checkpoint (from the
database, or from disk when the process died between writing a checkpoint and
recording it), the same prompt list (saved in the run folder when it started),
so the data order, β and step count carry on where they stopped.

With `audit_pairs` set, the run audits itself: the job's sink sees each
Checkpoint event, and at an audited step K blind pairs (the policy as it is
now, against the same weights with the adapter off: the reference) are
generated with the model already in memory and stored through the same path
as `tuilab label audit RUN` (store.audits.queue_audit_step), so they join the
label queue while the run goes on. The loop itself knows nothing of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuilab.config import PPOConfig
from tuilab.jobs.resume import JobRefused, newest_checkpoint, resume_job, run_inputs
from tuilab.jobs.runner import Job, JobContext
from tuilab.records import Prompt
from tuilab.training.events import Checkpoint, Event, RunWarning

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
    audits = RunAudits(cfg, ctx, base) if cfg.audit_pairs > 0 else None
    result = train_ppo(cfg, prompts, base=base, reward=str(rm_dir), output_dir=ctx.output_dir,
                       sink=audits or ctx.sink, control=ctx.control, resume_from=resume_from)
    if audits is not None:  # in the final metrics (the headless run's JSON line): what waits to be labeled
        result = {**result, "audit/pairs_queued": float(audits.queued)}
    return result


class RunAudits:
    """The job's sink, plus gold audits at the audited checkpoints (`audit_pairs`, `audit_every`).

    Called on the loop's thread right after the checkpoint is written, so the
    model is the policy at that step. An audit that fails becomes a run warning
    (the run goes on; `tuilab label audit RUN` can fill the step in later); a
    cancel skips the audit and stops one under way. Sampling uses its own
    seeded generators, so the run trains exactly as it would without audits.
    """

    def __init__(self, cfg: PPOConfig, ctx: JobContext, base: Any) -> None:
        self.cfg, self.ctx, self.base = cfg, ctx, base
        self.plan: Any = None  # store.audits.AuditPlan, made at the first audit (the same prompts at every step)
        self.queued = 0  # audit pairs this process stored

    def __call__(self, event: Event) -> None:
        self.ctx.sink(event)
        if isinstance(event, Checkpoint) and self.due(event.step) and not self.ctx.control.cancelled:
            self.audit(event)

    def due(self, step: int) -> bool:
        every = self.cfg.audit_every
        return every <= 0 or step % every == 0 or step == self.cfg.total_updates

    def audit(self, event: Checkpoint) -> int:
        from tuilab.jobs.runner import error_summary
        from tuilab.store.audits import AuditSettings, AuditStopped, plan_audits, queue_audit_step
        from tuilab.store.runs import get_run
        from tuilab.training.ppo import POLICY

        db, run_id = self.ctx.db, self.ctx.run_id
        try:
            if self.plan is None:
                settings = AuditSettings(pairs=self.cfg.audit_pairs, seed=0)  # `label audit`'s default prompts
                self.plan = plan_audits(db, run_id, get_run(db, run_id).config, settings)
            n = queue_audit_step(db, self.plan, event.step, self._answer, model=self.base.name,
                                 policy_adapter=str(Path(event.path) / POLICY))
            self.queued += n
            return n
        except AuditStopped:
            return 0
        except Exception as exc:  # noqa: BLE001 — an audit never ends the run
            self.ctx.sink(RunWarning(event.step, "audit_failed",
                                     f"gold audit at step {event.step} failed ({error_summary(exc)}); training goes "
                                     f"on; `tuilab label audit {run_id}` queues the steps it missed"))
            return 0

    def _answer(self, role: str, sampling: Any, messages: list) -> list:
        """Both sides from the one model in memory: the policy adapter on, then off (the reference)."""
        from contextlib import nullcontext

        from tuilab.modeling.generation import generate
        from tuilab.modeling.lora import adapters_disabled

        model = self.base.model  # train_ppo wrapped it: the PeftModel with the policy adapter active
        control = self.ctx.control
        if control.cancelled:
            return []
        with adapters_disabled(model) if role == "reference" else nullcontext():
            results = generate(model, self.base.tokenizer, messages, sampling,
                               on_step=lambda rows, tokens: control.cancelled)
        return [] if control.cancelled else results  # answers cut by a cancel are not stored
