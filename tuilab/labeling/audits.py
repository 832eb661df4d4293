"""Gold audits: the researcher judges the policy at each checkpoint against the reference, blind.

`queue_audits` reads a PPO run's checkpoints (each holds the policy adapter in
the standard PEFT layout), and for every checkpoint not audited yet samples
`pairs` held-out prompts (the test split, the same prompts at every step so
the steps are comparable), answers each with the policy adapter and with the
reference (the same base, adapter off), and stores both as an audit pair. The
pair queue serves pending audit pairs before fresh ones, sides at random;
which side was the policy is shown only after the decision.

`win_rate_curve` turns the verdicts into the human win rate of the policy per
audited step, with a Wilson interval over strict decisions, beside the run's
proxy score, gold score and √KL at that step; `best_checkpoint` names the
checkpoint to keep: where the human curve peaks (the highest win rate; on a
tie, the higher lower bound, then the earlier step).

Two ways in, one path (`store.audits.queue_audit_step`): `queue_audits`
audits a run's checkpoints after (or beside) training, reading each
checkpoint's adapter; a PPO run with `audit_pairs` set audits itself at its
checkpoints while it trains (jobs/ppo_job.py, with the model it already has in
memory). Either way a step is audited once, on the same prompts with the same
seeds.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuilab.diagnostics.intervals import Interval, wilson
from tuilab.store.audits import (
    AuditSettings,
    audit_verdicts,
    audited_steps,
    plan_audits,
    queue_audit_step,
)
from tuilab.store.runs import get_run, list_checkpoints, read_metrics

POLICY_DIR = "policy"  # where a PPO checkpoint keeps its adapter


def adapter_folder(checkpoint: str | Path) -> Path:
    """The PEFT adapter folder inside a PPO checkpoint (or the folder itself when it is one)."""
    folder = Path(checkpoint)
    sub = folder / POLICY_DIR
    if (sub / "adapter_config.json").exists():
        return sub
    if (folder / "adapter_config.json").exists():
        return folder
    raise FileNotFoundError(f"{folder}: no policy adapter (adapter_config.json) in this checkpoint")


def queue_audits(db: Any, host: Any, run_id: str, settings: AuditSettings | None = None, *,
                 progress: Callable[[str], Any] | None = None) -> int:
    """Audit pairs for every checkpoint of `run_id` not audited yet; returns how many pairs were queued."""
    from tuilab.modeling.generation import generate

    settings = settings or AuditSettings()
    settings.check()
    run = get_run(db, run_id)
    if run.kind != "ppo":
        raise ValueError(f"run {run_id} is a {run.kind} run; audits compare a PPO policy with its reference")
    done = audited_steps(db, run_id)
    todo = [(step, path) for step, path, _ in list_checkpoints(db, run_id) if step not in done]
    if not todo:
        return 0
    plan = plan_audits(db, run_id, run.config, settings)
    queued = 0
    for step, path in todo:
        adapter = str(adapter_folder(path))

        def answer(role, sampling, messages, adapter=adapter):
            with host.lock, host.adapter(adapter if role == "policy" else "", progress) as lm, host.cpu_threads():
                return generate(lm.model, lm.tokenizer, messages, sampling)

        queued += queue_audit_step(db, plan, step, answer, model=host.name, policy_adapter=adapter,
                                   progress=progress)
    return queued


@dataclass(frozen=True)
class AuditPoint:
    """The human verdicts at one audited step, with the run's own numbers there."""

    step: int
    wins: int
    losses: int
    ties: int
    both_bad: int
    win_rate: Interval | None  # wins / (wins + losses), Wilson interval
    proxy: float | None = None  # objective/scores (the reward model's)
    gold: float | None = None  # objective/gold, when the run had a gold scorer
    sqrt_kl: float | None = None  # √ objective/kl


def _at(series: list[tuple[int, float]], step: int) -> float | None:
    """The metric at `step`, else the last one before it."""
    best = None
    for s, v in series:
        if s <= step:
            best = v
        else:
            break
    return best


def win_rate_curve(db: Any, run_id: str) -> list[AuditPoint]:
    verdicts = audit_verdicts(db, run_id)
    metrics = read_metrics(db, run_id, ["objective/scores", "objective/gold", "objective/kl"])
    out = []
    for step in sorted({s for s, _ in verdicts}):
        got = [v for s, v in verdicts if s == step]
        wins, losses = got.count("policy"), got.count("reference")
        kl = _at(metrics.get("objective/kl", []), step)
        out.append(AuditPoint(step, wins, losses, got.count("tie"), got.count("both_bad"), wilson(wins, wins + losses),
                              _at(metrics.get("objective/scores", []), step), _at(metrics.get("objective/gold", []), step),
                              math.sqrt(kl) if kl is not None and kl >= 0 else None))
    return out


def best_step(points: list[AuditPoint]) -> AuditPoint | None:
    """Where the human win rate peaks (ties: the higher lower bound, then the earlier step)."""
    rated = [p for p in points if p.win_rate is not None]
    if not rated:
        return None
    return max(rated, key=lambda p: (p.win_rate.estimate, p.win_rate.low, -p.step))


def peak_message(points: list[AuditPoint]) -> str:
    """One sentence: where the human curve peaks, and whether it has turned down since."""
    best = best_step(points)
    if best is None:
        return "no audit pairs decided yet"
    later = [p for p in points if p.step > best.step and p.win_rate is not None]
    text = (f"human win rate peaks at step {best.step}: {best.win_rate.format()} against the reference")
    if later and later[-1].win_rate.estimate < best.win_rate.estimate:
        text += f"; it has turned down since (step {later[-1].step}: {later[-1].win_rate.format()}) — keep step {best.step}"
    else:
        text += f" — keep step {best.step}"
    return text


def best_checkpoint(db: Any, run_id: str) -> tuple[int, Path] | None:
    """(step, adapter folder) of the checkpoint at the human curve's peak (the newest one at or before it)."""
    best = best_step(win_rate_curve(db, run_id))
    if best is None:
        return None
    ckpts = [(s, p) for s, p, _ in list_checkpoints(db, run_id) if s <= best.step]
    if not ckpts:
        return None
    step, path = ckpts[-1]
    return step, adapter_folder(path)


def export_adapter(folder: Path, dest: str | Path) -> Path:
    """Copy a checkpoint's PEFT adapter to `dest` (a new folder): `PeftModel.from_pretrained(base, dest)` loads it."""
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} exists; choose a new folder")
    shutil.copytree(folder, dest)
    return dest


def export_best(db: Any, run_id: str, dest: str | Path) -> tuple[int, Path]:
    """Copy the adapter of the checkpoint the human audits name best to `dest` (a new folder): (its step, dest).

    ValueError while no audit pair of the run is decided (nothing to pick yet).
    """
    best = best_checkpoint(db, run_id)
    if best is None:
        raise ValueError(f"no decided audit pairs for {run_id} yet: nothing to pick (label them first)")
    return best[0], export_adapter(best[1], dest)
