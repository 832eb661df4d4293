"""Leaving the lab: a run folder → a plain Hugging Face folder any engine loads.

- A reward member (LoRA adapter + scalar head) becomes one merged
  `AutoModelForSequenceClassification` folder with `num_labels=1`: the adapter
  is merged into the base weights and the head becomes the `score` layer, so
  TRL's GRPO/RLOO trainers, verl or OpenRLHF load it with `from_pretrained`.
- A policy adapter (PPO, DPO) becomes a merged causal-LM folder.

Normalisation. tuilab's head is `w·h + b`, and the reward PPO sees is that
minus the member's training mean, over its training std. Llama's `score`
layer has no bias, so the export writes `score.weight = w / std` and keeps the
constant in `config.json` as `tuilab_reward_offset = (b − mean) / std`:

    tuilab normalised reward = logits[:, 0] + config.tuilab_reward_offset

A constant per model changes nothing for GRPO/RLOO (group-relative
advantages) and is absorbed by a critic's baseline in PPO; add it when the
absolute value matters. Raw tuilab rewards are `normalised · std + mean`
(both in `config.tuilab_reward`).

Scores are read where tuilab trains and scores: the last token of
chat template (generation prompt) + answer + `<|im_end|>`, with no trailing
newline; the folder's tokenizer pads on the right with a pad token distinct
from EOS, so `AutoModelForSequenceClassification` finds that token.

Base model references: run manifests name the base relative to the lab
(`models/<name>`) when it lives inside the lab, so a lab folder can be moved;
`resolve_base` finds it again from any run folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DTYPES = ("float32", "bfloat16", "float16")


# ------------------------------------------------------------------ base references (stdlib only)


def lab_home_of(run_dir: str | Path) -> Path | None:
    """The lab home holding `run_dir` (the folder whose `models/` contains it), or None."""
    run_dir = Path(run_dir).absolute()
    for ancestor in run_dir.parents:
        if ancestor.name == "models":
            return ancestor.parent
    return None


def portable_base(base: str | Path, run_dir: str | Path) -> str:
    """How a run manifest should name its base: `models/<name>` inside the run's lab, else absolute."""
    base = Path(base).resolve()
    home = lab_home_of(Path(run_dir).resolve())
    if home is not None and base.is_relative_to(home):
        return base.relative_to(home).as_posix()
    return str(base)


def resolve_base(recorded: str | Path, run_dir: str | Path) -> Path:
    """The base model folder a manifest names: absolute as is, or lab-relative, found from `run_dir` upward."""
    path = Path(recorded)
    if path.is_absolute():
        return path
    run_dir = Path(run_dir).absolute()
    for ancestor in (run_dir, *run_dir.parents):
        if (ancestor / path).exists():
            return ancestor / path
    raise FileNotFoundError(
        f"{run_dir}: its base model {recorded} is not under this lab (looked in every folder above the run)"
    )


# ------------------------------------------------------------------ exports


@dataclass
class Exported:
    """One folder written: what it holds, and for a reward member the constants a user needs."""

    path: Path
    kind: str  # "reward" | "policy"
    member: str = ""
    offset: float = 0.0
    mean: float = 0.0
    std: float = 1.0


def _torch_dtype(name: str):
    import torch

    if name not in DTYPES:
        raise ValueError(f"dtype {name!r}: choose from {', '.join(DTYPES)}")
    return getattr(torch, name)


def _fresh_folder(out: Path) -> Path:
    """A temporary sibling to write into; renamed over `out` only when complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def _commit(tmp: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def _merged_adapter(base_path: Path, adapter_dir: Path):
    """The base in fp32 on the CPU with one LoRA adapter merged in (merging into 4-bit is lossy: never done)."""
    from peft import PeftModel

    from tuilab.modeling.loading import load_model

    loaded = load_model(base_path, device="cpu", dtype="float32")
    peft = PeftModel.from_pretrained(loaded.model, str(adapter_dir), is_trainable=False)
    return peft.merge_and_unload(), loaded.tokenizer


def export_reward_member(run_dir: str | Path, member: str, out: str | Path, *, dtype: str = "float32") -> Exported:
    """Write one reward member of `run_dir` as a merged sequence-classification folder at `out`."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from tuilab.modeling.heads import ScalarHead
    from tuilab.modeling.reward_model import MANIFEST
    from tuilab.modeling.trunk import backbone_of

    run_dir, out = Path(run_dir), Path(out)
    manifest = json.loads((run_dir / MANIFEST).read_text())
    if member not in manifest.get("members", []):
        raise ValueError(f"{run_dir}: no member {member!r}; it has {', '.join(manifest.get('members', []))}")
    base_path = resolve_base(manifest["base_model"], run_dir)
    merged, tokenizer = _merged_adapter(base_path, run_dir / member)
    head = ScalarHead.load(run_dir / member)
    stats = manifest.get("norm", {}).get(member, {})
    mean = float(stats.get("mean", 0.0))
    std = max(float(stats.get("std", 1.0)), 1e-6)  # the clamp RewardModel.score_ids applies
    bias = float(head.linear.bias.item())

    config = merged.config.__class__.from_dict(merged.config.to_dict())
    config.num_labels = 1
    config.architectures = None
    config.pad_token_id = tokenizer.pad_token_id
    config.tuilab_reward_offset = (bias - mean) / std
    config.tuilab_reward = {"member": member, "mean": mean, "std": std, "head_bias": bias,
                            "base_model": manifest["base_model"], "score": "normalised − offset"}
    target = _torch_dtype(dtype)
    config.dtype = target
    seq = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    trunk = getattr(seq, seq.base_model_prefix)
    missing, unexpected = trunk.load_state_dict(backbone_of(merged).state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(f"{base_path}: trunk weights do not fit {type(seq).__name__} "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    score = getattr(seq, "score", None)
    if not isinstance(score, torch.nn.Linear) or score.weight.shape != head.linear.weight.shape:
        raise ValueError(f"{type(seq).__name__} has no score layer of shape {tuple(head.linear.weight.shape)}: "
                         "this architecture cannot carry a tuilab reward head")
    with torch.no_grad():
        score.weight.copy_(head.linear.weight / std)
        if score.bias is not None:  # architectures whose score layer has a bias take the constant there
            score.bias.fill_(config.tuilab_reward_offset)
            config.tuilab_reward_offset = 0.0
    seq.to(target).eval()

    tmp = _fresh_folder(out)
    seq.save_pretrained(str(tmp))
    _set_padding_side(tokenizer, "right")
    tokenizer.save_pretrained(str(tmp))
    _commit(tmp, out)
    return Exported(out, "reward", member, config.tuilab_reward_offset, mean, std)


def _set_padding_side(tokenizer: Any, side: str) -> None:
    """Set it where `save_pretrained` writes it: transformers saves the init kwargs, not the attribute."""
    tokenizer.padding_side = side
    tokenizer.init_kwargs["padding_side"] = side


def export_policy(run_dir: str | Path, manifest_name: str, adapter: str, out: str | Path, *,
                  dtype: str = "float32") -> Exported:
    """Write a policy run (PPO, DPO) as a merged causal-LM folder at `out`."""
    run_dir, out = Path(run_dir), Path(out)
    manifest = json.loads((run_dir / manifest_name).read_text())
    base_path = resolve_base(manifest["base_model"], run_dir)
    merged, tokenizer = _merged_adapter(base_path, run_dir / manifest.get("adapter", adapter))
    merged.to(_torch_dtype(dtype))
    merged.config.dtype = _torch_dtype(dtype)
    tmp = _fresh_folder(out)
    merged.save_pretrained(str(tmp))
    _set_padding_side(tokenizer, "left")  # batched generation
    tokenizer.save_pretrained(str(tmp))
    _commit(tmp, out)
    return Exported(out, "policy")


def reward_members(run_dir: str | Path) -> list[str]:
    from tuilab.modeling.reward_model import MANIFEST

    return list(json.loads((Path(run_dir) / MANIFEST).read_text()).get("members", []))


def describe_reward_export(e: Exported) -> dict[str, Any]:
    """What the model card says about reading the scores."""
    return {"member": e.member, "offset": e.offset, "mean": e.mean, "std": e.std}
