"""Reward models as PEFT adapters plus scalar heads on one shared base model.

A trained reward model (or ensemble) is a folder:

    <run_dir>/reward.json            base model path, hidden size, members, normalisation stats
    <run_dir>/reward-0/adapter_config.json, adapter_model.safetensors   (standard PEFT layout)
    <run_dir>/reward-0/head.safetensors
    <run_dir>/reward-1/...           (ensembles)

`RewardModel.load` puts every member onto one base: a fresh one, a `LoadedModel`,
or a PeftModel that already carries other adapters (PPO's "policy"), so the
policy and its reward model share one copy of the base weights. Scoring reads
the reward at the last real token of prompt + response + EOS, exactly what the
trainer optimised (`chat.scored_ids`).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tuilab.modeling.chat import as_messages, scored_ids
from tuilab.modeling.heads import ScalarHead
from tuilab.modeling.loading import LoadedModel, load_model
from tuilab.modeling.lora import adapter_active
from tuilab.modeling.trunk import (
    backbone_of,
    hidden_size_of,
    last_token_hidden,
    length_batches,
    pad_right,
    shared_start,
)

MANIFEST = "reward.json"
FORMAT = "tuilab-reward/1"


@dataclass
class RewardScores:
    """Per-response ensemble mean and std, and each member's reward (`members[k][i]`)."""

    mean: list[float]
    std: list[float]
    members: list[list[float]]


# ------------------------------------------------------------------ the model


class RewardModel:
    """One or more reward members (adapter + head) on one base model."""

    def __init__(
        self,
        peft_model: Any,
        tokenizer: Any,
        heads: dict[str, ScalarHead],
        *,
        adapters: dict[str, str] | None = None,
        norm: dict[str, dict[str, float]] | None = None,
        manifest: dict[str, Any] | None = None,
        batch_size: int = 16,
    ) -> None:
        self.model = peft_model
        self.tokenizer = tokenizer
        self.heads = heads
        self.members = list(heads)
        # member name in the manifest → adapter name on the PeftModel (differs on a name clash)
        self.adapters = adapters or {m: m for m in self.members}
        self.norm = norm or {}
        self.manifest = manifest or {}
        self.batch_size = batch_size
        self.body = backbone_of(peft_model)
        # Run a batch's common prefix once (None: not yet checked against the plain forward on this model).
        self.share_prefix: bool | None = None

    # -------------------------------------------------------------- loading

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        base: LoadedModel | Any | None = None,
        four_bit: bool = False,
        *,
        tokenizer: Any = None,
        device: str | None = None,
        batch_size: int = 16,
    ) -> RewardModel:
        """Load every member under `run_dir` (a finished run or one of its checkpoints).

        `base` may be None (the base named in reward.json is loaded), a
        `LoadedModel`, or a PeftModel that already holds other adapters (PPO's
        policy): the reward adapters are added beside them, frozen.
        """
        from peft import PeftModel

        run_dir = Path(run_dir)
        manifest_path = run_dir / MANIFEST
        if not manifest_path.exists():
            raise FileNotFoundError(
                f"{run_dir}: not a reward model folder (no {MANIFEST}); pass a run's output folder "
                "or one of its checkpoints"
            )
        manifest = json.loads(manifest_path.read_text())
        members: list[str] = list(manifest["members"])
        if not members:
            raise ValueError(f"{manifest_path}: lists no trained members")
        from tuilab.modeling.export import resolve_base

        if base is None:
            base_path = resolve_base(manifest["base_model"], run_dir)  # `models/<name>`: inside a (moved) lab
            if not base_path.exists():
                raise FileNotFoundError(
                    f"{run_dir}: its base model {base_path} is gone; load that model and pass it as base="
                )
            base = load_model(base_path, four_bit=four_bit, device=device)
        if isinstance(base, LoadedModel):
            model, tokenizer = base.model, tokenizer or base.tokenizer
        else:
            model = base
        if tokenizer is None:
            from transformers import AutoTokenizer

            from tuilab.modeling.loading import prepare_tokenizer

            tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(str(resolve_base(manifest["base_model"],
                                                                                         run_dir))))
        expected = int(manifest.get("hidden_size", 0))
        if expected and hidden_size_of(model) != expected:
            raise ValueError(
                f"{run_dir} was trained on a base with hidden size {expected}, "
                f"but the given base has {hidden_size_of(model)}"
            )
        if manifest.get("base_fingerprint"):
            why = fingerprint_mismatch(manifest["base_fingerprint"], base_fingerprint(model))
            if why:
                raise ValueError(f"{run_dir} was trained on another base model ({manifest['base_model']}): {why}; "
                                 "its adapters would score nonsense on this one")
        adapters: dict[str, str] = {}
        peft_model = model if isinstance(model, PeftModel) else None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
            peft_model = cls._attach(peft_model, model, run_dir, members, adapters)
        dev = next(backbone_of(peft_model).parameters()).device
        heads = {m: ScalarHead.load(run_dir / m, device=dev) for m in members}
        for head in heads.values():
            head.requires_grad_(False)
        return cls(
            peft_model,
            tokenizer,
            heads,
            adapters=adapters,
            norm=manifest.get("norm", {}),
            manifest=manifest,
            batch_size=batch_size,
        )

    @staticmethod
    def _attach(peft_model: Any, model: Any, run_dir: Path, members: list[str], adapters: dict[str, str]) -> Any:
        """Add each member's adapter (frozen) to `peft_model`, wrapping `model` first if there is none."""
        from peft import PeftModel

        for member in members:
            folder = run_dir / member
            if peft_model is None:
                peft_model = PeftModel.from_pretrained(model, str(folder), adapter_name=member, is_trainable=False)
                adapters[member] = member
                continue
            name = member
            n = 1
            while name in peft_model.peft_config:
                name = f"{member}-{n}"
                n += 1
            # load_adapter may touch other adapters' flags and modes; put them back as they were.
            flags = [(p, p.requires_grad) for p in peft_model.parameters()]
            modes = [(m, m.training) for m in peft_model.modules()]
            peft_model.load_adapter(str(folder), adapter_name=name, is_trainable=False)
            for p, flag in flags:
                p.requires_grad_(flag)
            for m, mode in modes:
                m.training = mode
            adapters[member] = name
        return peft_model

    # -------------------------------------------------------------- scoring

    def _device(self) -> torch.device:
        return next(self.body.parameters()).device

    def member_rewards(self, member: str, input_ids: torch.Tensor, lengths: torch.Tensor,
                       prefix: int = 0) -> torch.Tensor:
        """Rewards [B] of one member for a right-padded batch (active adapter must be set by the caller);
        the first `prefix` tokens, common to every row, run once (`trunk.last_token_hidden`)."""
        if prefix and self.share_prefix is None:
            self.share_prefix = self._prefix_agrees(member, input_ids, lengths, prefix)
        hidden = last_token_hidden(self.body, input_ids, lengths, prefix if self.share_prefix else 0)
        return self.heads[member](hidden)

    def _prefix_agrees(self, member: str, input_ids: torch.Tensor, lengths: torch.Tensor, prefix: int) -> bool:
        """Running the prefix once must score as the plain forward does on this model; where not (or where
        the model cannot continue a batch from a shared cache), every row runs whole, and a warning says so."""
        plain = self.heads[member](last_token_hidden(self.body, input_ids, lengths))
        try:
            shared = self.heads[member](last_token_hidden(self.body, input_ids, lengths, prefix))
            diff = float((shared - plain).abs().max())
        except (RuntimeError, TypeError, ValueError, AttributeError) as exc:
            diff, why = math.inf, f"{type(exc).__name__}: {exc}"
        else:
            why = f"differs by {diff:.3g}"
        exact = next(self.body.parameters()).dtype == torch.float32
        if diff <= (1e-3 if exact else 5e-2) * (1.0 + float(plain.abs().max())):
            return True
        warnings.warn(f"reward scoring: running the prompts' common prefix once {why} on this model, so every "
                      "answer is scored with its whole prompt (slower, same result)", stacklevel=3)
        return False

    def score_ids(
        self, id_lists: Sequence[Sequence[int]], *, normalize: bool = False, batch_size: int | None = None
    ) -> torch.Tensor:
        """Rewards [k, n] (float32, on the model's device) for token id lists that end in EOS.

        Batched by similar length with right padding; each member runs under its own adapter.
        `normalize` subtracts each member's training mean and divides by its std.
        """
        n = len(id_lists)
        device = self._device()
        out = torch.zeros(len(self.members), n, dtype=torch.float32, device=device)
        if n == 0:
            return out
        if any(len(s) == 0 for s in id_lists):
            raise ValueError("score_ids: an empty token list has no last token to score")
        batches = length_batches([len(s) for s in id_lists], batch_size or self.batch_size)
        pad_id = self.tokenizer.pad_token_id
        padded = []
        for idx in batches:
            rows = [id_lists[i] for i in idx]
            ids, lengths = pad_right(rows, pad_id, device)
            padded.append((torch.as_tensor(idx, device=device), ids, lengths, shared_start(rows)))
        with torch.inference_mode():
            for k, member in enumerate(self.members):
                with adapter_active(self.model, self.adapters[member]):
                    for idx, ids, lengths, prefix in padded:
                        out[k, idx] = self.member_rewards(member, ids, lengths, prefix)
                if normalize and member in self.norm:
                    stats = self.norm[member]
                    out[k] = (out[k] - stats.get("mean", 0.0)) / max(stats.get("std", 1.0), 1e-6)
        return out

    def encode(self, messages_list: Sequence[Any], responses: Sequence[str | Sequence[int]]) -> list[list[int]]:
        if len(messages_list) != len(responses):
            raise ValueError(f"score: {len(messages_list)} prompts but {len(responses)} responses")
        return [scored_ids(self.tokenizer, as_messages(m), r) for m, r in zip(messages_list, responses, strict=True)]

    def score(
        self, messages_list: Sequence[Any], responses: Sequence[str | Sequence[int]], *, normalize: bool = False
    ) -> RewardScores:
        """Score responses to prompts (strings or message lists): ensemble mean, std and members."""
        rewards = self.score_ids(self.encode(messages_list, responses), normalize=normalize).float().cpu()
        k = rewards.shape[0]
        std = rewards.std(dim=0, unbiased=False) if k > 1 else torch.zeros(rewards.shape[1])
        return RewardScores(
            mean=rewards.mean(dim=0).tolist(),
            std=std.tolist(),
            members=rewards.tolist(),
        )

    def __repr__(self) -> str:
        return f"RewardModel(members={self.members}, base={self.manifest.get('base_model', '?')})"


# ------------------------------------------------------------------ saving


def base_fingerprint(model: Any) -> dict[str, Any]:
    """What tells two bases of the same width apart: depth, vocabulary, and a probe of 64 weights.

    The probe is the input embeddings of the first four tokens (special tokens in
    a chat model, which fine-tuning moves), never quantized by 4-bit loading and
    untouched by LoRA adapters.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = inner.config.get_text_config() if hasattr(inner.config, "get_text_config") else inner.config
    emb = inner.get_input_embeddings().weight
    with torch.no_grad():
        probe = emb[:4, :16].detach().float().flatten().cpu().tolist()
    return {"layers": int(getattr(config, "num_hidden_layers", 0) or 0), "vocab": int(emb.shape[0]),
            "probe": [round(v, 6) for v in probe]}


# Probe weights may differ by dtype rounding (bf16: 2⁻⁸ relative) between two loads of one base.
FINGERPRINT_RTOL = 1e-2


def fingerprint_mismatch(saved: dict[str, Any], now: dict[str, Any]) -> str | None:
    """A sentence saying how two fingerprints differ, or None when they match."""
    for key, words in (("layers", "layers"), ("vocab", "vocabulary size")):
        if saved.get(key) and now.get(key) and int(saved[key]) != int(now[key]):
            return f"{words} {saved[key]} there, {now[key]} here"
    a, b = saved.get("probe") or [], now.get("probe") or []
    if a and b:
        if len(a) != len(b):
            return "its weight probe has another shape"
        scale = max(1e-6, max(abs(x) for x in a))
        worst = max(abs(x - y) for x, y in zip(a, b, strict=True))
        if worst > FINGERPRINT_RTOL * scale:
            return f"its embedding weights differ (by up to {worst:.3g}, scale {scale:.3g})"
    return None


def write_manifest(
    run_dir: str | Path,
    *,
    base_model: str | Path,
    hidden_size: int,
    members: list[str],
    norm: dict[str, dict[str, float]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "format": FORMAT,
        "base_model": str(base_model),
        "hidden_size": hidden_size,
        "members": members,
        "norm": {m: {k: (v if math.isfinite(v) else 0.0) for k, v in s.items()} for m, s in (norm or {}).items()},
    }
    data.update(extra or {})
    path = run_dir / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


def save_member(peft_model: Any, head: ScalarHead, run_dir: str | Path, member: str) -> Path:
    """Write one member: PEFT adapter files (standard layout) and head.safetensors under `run_dir/member/`.

    The adapter on `peft_model` must be named `member`; PEFT writes non-default
    adapters to a subfolder of that name.
    """
    run_dir = Path(run_dir)
    peft_model.save_pretrained(str(run_dir), selected_adapters=[member])
    folder = run_dir / member
    head.save(folder)
    return folder
