"""`tuilab export`: a run or the preferences, as folders the rest of the field loads.

- reward run → merged `AutoModelForSequenceClassification` folder (one per
  member of an ensemble), with a model card saying how to read its scores;
- PPO / DPO run → merged causal-LM folder;
- preferences → `train.jsonl` / `test.jsonl` in TRL's conversational
  preference format plus a README whose front matter names the splits, which
  is what `datasets.load_dataset(folder)` reads (and
  `load_dataset("json", data_files=…)` reads the files directly).

The run folder itself gets the same model card (in place of PEFT's empty
template), so a run folder describes itself even if it is never exported.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from tuilab.config import LabPaths
from tuilab.jobs.model_card import CARD, model_card, write_model_card
from tuilab.records import Run
from tuilab.store import runs as runs_store
from tuilab.store.formats import render_trl
from tuilab.store.pairs import preference_pairs

POLICY_MANIFESTS = {"ppo": "ppo.json", "dpo": "dpo.json"}
REWARD_MANIFEST = "reward.json"


class ExportError(ValueError):
    """One sentence naming the run, folder or key that cannot be exported."""


@dataclass
class ExportResult:
    kind: str
    folders: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        if self.kind == "preferences":
            counts = ", ".join(f"{n} {split}" for split, n in self.rows.items())
            return f"Wrote preference pairs ({counts}) to {self.folders[0]}"
        return "Wrote " + ", ".join(str(f) for f in self.folders)


def run_folder(run: Run, paths: LabPaths) -> Path:
    """The run's folder in this lab (the recorded path only if the lab was not moved)."""
    here = paths.runs / run.id
    if here.exists():
        return here
    if run.output_dir and Path(run.output_dir).exists():
        return Path(run.output_dir)
    raise ExportError(f"run {run.id}: its folder {here} is missing")


def _manifest(run: Run, folder: Path) -> tuple[str, dict]:
    name = REWARD_MANIFEST if run.kind == "rm" else POLICY_MANIFESTS.get(run.kind)
    if name is None:
        raise ExportError(f"run {run.id} is a {run.kind!r} run; only rm, ppo and dpo runs hold a model to export")
    path = folder / name
    if run.status != "completed" or not path.exists():
        raise ExportError(f"run {run.id} ({run.status}) has no finished model in {folder}; "
                          "export a completed run")
    return name, json.loads(path.read_text())


def _usage(kind: str, member: str = "", offset: float = 0.0, mean: float = 0.0, std: float = 1.0) -> str:
    if kind == "policy":
        return ("## Using this export\n\nA merged causal LM (LoRA folded into the base weights): "
                "`AutoModelForCausalLM.from_pretrained(folder)`; the tokenizer carries the chat template.\n")
    return (
        "## Using this export\n\n"
        f"Reward member `{member}`, merged into one `AutoModelForSequenceClassification` (num_labels = 1). "
        "Score the chat template with the generation prompt + answer + `<|im_end|>` (no trailing newline), "
        "right-padded: exactly what tuilab trained on.\n\n"
        "```python\n"
        "tok = AutoTokenizer.from_pretrained(folder)\n"
        "rm = AutoModelForSequenceClassification.from_pretrained(folder)\n"
        "text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + answer + tok.eos_token\n"
        "normalised = rm(**tok([text], return_tensors='pt', add_special_tokens=False)).logits[:, 0] + rm.config.tuilab_reward_offset\n"
        "```\n\n"
        f"The score layer is tuilab's head divided by the member's training std ({std:.6g}); Llama's score "
        f"layer has no bias, so the constant `tuilab_reward_offset` = (head bias − training mean) / std = "
        f"{offset:.6g} is kept in `config.json`. GRPO/RLOO (group-relative advantages) do not need it. "
        f"Raw tuilab reward = normalised × {std:.6g} + {mean:.6g}.\n"
    )


def export_run(db: sqlite_utils.Database, paths: LabPaths, run_id: str, out: str | Path, *,
               member: str | None = None, dtype: str = "float32") -> ExportResult:
    """Write run `run_id` under `out` (see module docstring); returns the folders written."""
    from tuilab.modeling import export as mx

    try:
        run = runs_store.get_run(db, run_id)
    except KeyError:
        raise ExportError(f"no run {run_id!r} in {paths.db} (see `tuilab runs list`)") from None
    folder = run_folder(run, paths)
    _, manifest = _manifest(run, folder)
    out = Path(out)
    try:
        base_ref = mx.portable_base(mx.resolve_base(manifest["base_model"], folder), folder)
    except FileNotFoundError as exc:
        raise ExportError(str(exc)) from None
    write_model_card(db, run.id, folder, base_model=base_ref)
    result = ExportResult(kind=run.kind)
    if run.kind == "rm":
        members = list(manifest.get("members", []))
        if member is not None and member not in members:
            raise ExportError(f"run {run.id} has no member {member!r}; it has {', '.join(members)}")
        chosen = [member] if member else members
        for m in chosen:
            target = out if len(chosen) == 1 else out / m
            e = mx.export_reward_member(folder, m, target, dtype=dtype)
            card = model_card(db, run, base_model=base_ref, extra=_usage("reward", m, e.offset, e.mean, e.std))
            (target / CARD).write_text(card)
            result.folders.append(target)
    else:
        if member is not None:
            raise ExportError(f"--member applies to reward runs; {run.id} is a {run.kind} run")
        mx.export_policy(folder, POLICY_MANIFESTS[run.kind], "policy", out, dtype=dtype)
        (out / CARD).write_text(model_card(db, run, base_model=base_ref, extra=_usage("policy")))
        result.folders.append(out)
    return result


def export_preferences(db: sqlite_utils.Database, out: str | Path) -> ExportResult:
    """The lab's preference pairs as a `datasets`-loadable folder (train/test split by prompt)."""
    out = Path(out)
    splits: dict[str, list[dict]] = {}
    for pair in preference_pairs(db, ties="skip"):
        row = render_trl(pair.messages, pair.chosen, pair.rejected, pair.margin)
        row.setdefault("margin", None)  # one schema for every row
        splits.setdefault(pair.split or "train", []).append(row)
    if not splits:
        raise ExportError("the database holds no decided preference pairs to export (label some first)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    names = sorted(splits, key=lambda s: (s != "train", s))
    for split in names:
        with open(tmp / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for row in splits[split]:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    files = "\n".join(f"  - split: {s}\n    path: {s}.jsonl" for s in names)
    counts = ", ".join(f"{len(splits[s])} {s}" for s in names)
    (tmp / CARD).write_text(
        f"---\nconfigs:\n- config_name: default\n  data_files:\n{files}\n---\n\n"
        "# Preference pairs exported from tuilab\n\n"
        f"{counts} pairs in TRL's conversational format with an explicit prompt: `prompt` (a list of "
        "messages), `chosen` and `rejected` (one assistant message each), `margin` (the labeler's strength "
        f"as a margin, or null). Ties, both-bad and skipped comparisons are left out. Splits follow "
        "the lab's prompt split.\n\n"
        "```python\nfrom datasets import load_dataset\nds = load_dataset(folder)  # or load_dataset('json', "
        "data_files={'train': f'{folder}/train.jsonl'})\n```\n"
    )
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return ExportResult(kind="preferences", folders=[out], rows={s: len(splits[s]) for s in names})
