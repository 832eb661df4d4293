"""A model card for a run folder, written from the lab's own records.

PEFT's `save_pretrained` leaves a README.md template with every field empty.
A reader of a run folder (or of an exported model) wants what the lab knows:
which data, which config, how it scored on held-out pairs, how much the score
follows length, and which reward-hacking flags its samples raised.
`write_model_card` puts that card in the run folder and over every PEFT
template inside it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlite_utils

from tuilab.diagnostics.flags import FLAG_HELP
from tuilab.diagnostics.stats import pearson
from tuilab.records import Run
from tuilab.store import runs as runs_store
from tuilab.store.samples import list_samples

CARD = "README.md"
_PEFT_TEMPLATE_MARK = "<!-- Provide a quick summary of what the model is/does. -->"
_KIND = {"rm": "reward model", "ppo": "PPO policy", "dpo": "DPO policy"}
_HEADLINE = {
    "rm": ("eval/accuracy", "eval/margin", "eval/ece", "eval/loss", "eval/length_corr", "eval/pairs",
           "train/pairs", "train/accuracy", "steps"),
    "ppo": ("objective/scores", "objective/gold", "objective/kl", "objective/rlhf_reward", "response/length_mean",
            "response/eos_rate", "steps"),
    "dpo": ("eval/rewards/accuracies", "eval/rewards/margins", "eval/loss", "rewards/accuracies", "loss", "steps"),
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(rows: Iterable[tuple[str, Any]]) -> list[str]:
    rows = list(rows)
    if not rows:
        return ["(none recorded)"]
    return ["| key | value |", "|---|---|", *(f"| `{k}` | {_fmt(v)} |" for k, v in rows)]


def _sample_summary(db: sqlite_utils.Database, run_id: str) -> tuple[int, Counter, float | None, int]:
    """(samples, flag counts, Pearson(score, length), samples marked hacked)."""
    samples = list_samples(db, run_id, order_by="id", descending=False, limit=10_000_000)
    flags = Counter(f for s in samples for f in s.flags)
    pairs = [(s.score, s.length) for s in samples if s.score is not None and s.length is not None]
    corr = pearson([p[0] for p in pairs], [p[1] for p in pairs]) if len(pairs) > 2 else None
    return len(samples), flags, corr, sum(1 for s in samples if s.hacked)


def model_card(db: sqlite_utils.Database, run: Run, *, base_model: str, extra: str = "") -> str:
    """Markdown: front matter (library, base model, tags), then data, config, evaluation, length, flags."""
    kind = _KIND.get(run.kind, run.kind)
    final = run.final_metrics or {}
    lines = [
        "---",
        "library_name: transformers",
        f"base_model: {base_model}",
        "tags: [tuilab, rlhf, " + {"rm": "reward-model", "ppo": "ppo", "dpo": "dpo"}.get(run.kind, run.kind) + "]",
        "---",
        "",
        f"# {run.name or run.id} — {kind} trained in tuilab",
        "",
        f"Run `{run.id}` ({run.status}), started {run.started_at or run.created_at}, "
        f"finished {run.finished_at or '–'}. Base model: `{base_model}` (relative paths are relative to the lab "
        "folder, so the lab can be moved).",
    ]
    if run.parents:
        lines.append(f"Built on run(s): {', '.join(f'`{p}`' for p in run.parents)}.")
    lines += ["", "## Data", ""]
    if run.kind in ("rm", "dpo"):
        train = final.get("train/pairs") or final.get("train_pairs")
        held = final.get("eval/pairs") or final.get("eval_pairs")
        lines.append(f"Preference pairs from the lab's database: {_fmt(train or '?')} for training, "
                     f"{_fmt(held or 0)} held out. Ties: `{run.config.get('ties', 'skip')}`.")
        left_out = final.get("left_out") or {}
        if left_out:
            lines.append("Left out: " + ", ".join(f"{n} {why}" for why, n in left_out.items()) + ".")
    else:
        lines.append(f"Prompts from the lab's database; reward model run `{run.config.get('reward_run') or '–'}`.")
    lines += ["", "## Config", "", "```json", json.dumps(run.config, indent=2, sort_keys=True, default=str), "```"]
    lines += ["", "## Evaluation (final metrics, measured by tuilab)", ""]
    lines += _table((k, final[k]) for k in _HEADLINE.get(run.kind, ()) if final.get(k) is not None)

    n, flags, corr, hacked = _sample_summary(db, run.id)
    lines += ["", "## Length", ""]
    if run.kind == "rm" and final.get("eval/length_corr") is not None:
        corr_rm = final["eval/length_corr"]
        verdict = ("the reward follows length: check it for a length bias before optimising against it"
                   if abs(corr_rm) >= 0.3 else "small: the model does not simply prefer longer answers")
        lines.append(f"Correlation between the reward margin and the length difference on held-out pairs: "
                     f"{corr_rm:.3f} ({verdict}).")
    elif corr is not None:
        lines.append(f"Pearson correlation of reward score and response length over {n} samples: {corr:.3f}.")
    else:
        lines.append("No length measurement recorded for this run.")
    last = runs_store.read_metrics(db, run.id, ("response/length_mean", "samples/length_mean"))
    for name in ("response/length_mean", "samples/length_mean"):
        if last.get(name):
            series = last[name]
            lines.append(f"`{name}`: {series[0][1]:.1f} at step {series[0][0]} → {series[-1][1]:.1f} "
                         f"at step {series[-1][0]}.")
    lines += ["", "## Reward-hacking flags seen", ""]
    if n == 0:
        lines.append("This run recorded no samples.")
    elif not flags:
        lines.append(f"None among {n} samples.")
    else:
        lines.append(f"Among {n} samples ({hacked} marked hacked by hand):")
        lines.append("")
        lines += [f"- `{flag}` × {count}: {FLAG_HELP.get(flag, '')}" for flag, count in flags.most_common()]
    if extra:
        lines += ["", extra.rstrip()]
    return "\n".join(lines) + "\n"


def write_model_card(db: sqlite_utils.Database, run_id: str, run_dir: str | Path, *, base_model: str,
                     extra: str = "") -> Path:
    """Write README.md into `run_dir` and replace PEFT's empty templates in its adapter folders."""
    run_dir = Path(run_dir)
    card = model_card(db, runs_store.get_run(db, run_id), base_model=base_model, extra=extra)
    path = run_dir / CARD
    path.write_text(card)
    for template in run_dir.glob(f"*/{CARD}"):
        if _PEFT_TEMPLATE_MARK in template.read_text(errors="replace"):
            template.write_text(card)
    return path
