"""Bradley–Terry reward-model training: LoRA adapters + scalar heads on one base model.

Each pair is rendered exactly as PPO will score it (`chat.scored_ids`: chat
template + response + EOS) and the reward is read at that last token. Loss per
pair: −[y·log σ(z) + (1 − y)·log σ(−z)], z = r_c − r_r − margin (y = 1 for a
preference, 0.5 for a kept tie), plus η·(r_c + r_r)² to keep rewards centred.

Fast on a CPU because nothing is computed twice or for nothing:
- chosen and rejected share their prompt: each pair is one packed row (prompt,
  chosen answer, rejected answer) whose attention mask keeps the two answers
  apart, so the prompt runs once per pair, not twice;
- the prompt prefix common to the whole batch (the chat template's system
  prompt, at least) runs once per batch; every row attends to its cached
  keys/values, gradients included;
- both are checked against the plain forward on the first batch and switched
  off (with a warning) for a model where they disagree;
- batches are grouped by length and padded only to their own longest row; the
  LM head is never computed; no gradient checkpointing unless asked; fused AdamW.
Losses stay on the device; they are read (one sync) about four times a second
to emit metrics and catch NaN.

The loop knows nothing of SQLite or Textual: it reports through `sink(event)`
and checks `control.check()` every step.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import random
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tuilab.config import RewardConfig, to_dict
from tuilab.diagnostics.calibration import length_bias_message
from tuilab.modeling.chat import as_messages, prompt_ids
from tuilab.modeling.heads import ScalarHead
from tuilab.modeling.loading import LoadedModel, load_model
from tuilab.modeling.reward_model import (
    RewardModel,
    backbone_of,
    hidden_size_of,
    last_token_hidden,
    lora_settings_config,
    pad_right,
    save_member,
    write_manifest,
)
from tuilab.store.records import PreferencePair
from tuilab.training.events import CancelledRun, Checkpoint, Metrics, RunControl, Sink
from tuilab.training.events import Warning as RunWarning
from tuilab.training.metrics import EncodedPair, evaluate_reward_model

FLUSH_SECONDS = 0.25

# Why pairs were left out, in words (keys are counted by the job and by this module).
LEFT_OUT_WORDS = {
    "ties": "ties (ties = \"skip\"; set ties = \"half\" to train on them)",
    "both_bad": "marked both bad",
    "skip": "skipped",
    "too_long": "longer than max_length tokens",
    "identical": "with identical chosen and rejected text",
}


class NotEnoughPairs(ValueError):
    """Too few usable pairs to train on; the message says how many, how many are needed, and why."""

    def __init__(self, have: int, need: int, left_out: dict[str, int] | None = None) -> None:
        self.have, self.need, self.left_out = have, need, dict(left_out or {})
        reasons = [f"{n} {LEFT_OUT_WORDS.get(k, k)}" for k, n in self.left_out.items() if n]
        why = f" Left out: {', '.join(reasons)}." if reasons else ""
        super().__init__(
            f"Not enough preference pairs to train a reward model: {have} usable, {need} needed "
            f"(min_pairs).{why} Label more pairs, or lower min_pairs."
        )


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the run stops as failed at `step`."""

    def __init__(self, step: int, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"training diverged at step {step}: {reason}")


# ------------------------------------------------------------------ data


def usable_pairs(cfg: RewardConfig, pairs: Sequence[PreferencePair]) -> tuple[list[PreferencePair], Counter]:
    """Pairs this config trains on, and a count of the rest by reason."""
    if cfg.ties not in ("skip", "half"):
        raise ValueError(f'ties must be "skip" or "half", got {cfg.ties!r}')
    kept: list[PreferencePair] = []
    left_out: Counter = Counter()
    for p in pairs:
        if p.label != 1.0 and cfg.ties == "skip":
            left_out["ties"] += 1
        elif p.chosen == p.rejected:
            left_out["identical"] += 1
        else:
            kept.append(p)
    return kept, left_out


def encode_pairs(tokenizer: Any, pairs: Sequence[PreferencePair], max_length: int) -> tuple[list[EncodedPair], int]:
    """Token ids of both sides (prompt rendered once per pair); pairs longer than `max_length` are dropped."""
    out: list[EncodedPair] = []
    too_long = 0
    eos = tokenizer.eos_token_id
    prompts: dict[str, list[int]] = {}
    for p in pairs:
        messages = as_messages(p.messages)
        key = repr(messages)
        if key not in prompts:
            prompts[key] = prompt_ids(tokenizer, messages)
        prefix = prompts[key]
        c = tokenizer.encode(p.chosen, add_special_tokens=False)
        r = tokenizer.encode(p.rejected, add_special_tokens=False)
        chosen = prefix + c + [eos]
        rejected = prefix + r + [eos]
        if max(len(chosen), len(rejected)) > max_length:
            too_long += 1
            continue
        out.append(
            EncodedPair(
                shared=common_prefix(chosen, rejected),
                chosen=chosen,
                rejected=rejected,
                label=float(p.label),
                margin=float(p.margin or 0.0) if p.label == 1.0 else 0.0,
                chosen_tokens=len(c),
                rejected_tokens=len(r),
                prompt_id=p.prompt_id,
                comparison_id=p.comparison_id,
                split=p.split,
            )
        )
    return out, too_long


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the shared start of two sequences, leaving each at least its last token."""
    limit = min(len(a), len(b)) - 1
    n = 0
    while n < limit and a[n] == b[n]:
        n += 1
    return n


MIN_BATCH_PREFIX = 8  # tokens every row must share before running them once for the batch pays off


def batch_prefix(rows: Sequence[EncodedPair]) -> int:
    """Tokens that every sequence in the batch starts with (the chat template's system prompt, at least).

    Capped so each pair keeps its own shared region intact: P ≤ min(shared).
    """
    if len(rows) < 2:
        return 0
    first = rows[0].chosen
    limit = min(r.shared for r in rows)
    n = 0
    while n < limit and all(r.chosen[n] == first[n] for r in rows):
        n += 1
    return n if n >= MIN_BATCH_PREFIX else 0


@dataclass
class PackedPairs:
    """A batch of pairs as one row each: (batch prefix,) shared prefix, chosen suffix, rejected suffix, pads.

    The mask lets each suffix see the prefixes and itself, never the other
    suffix, and the position ids restart the rejected suffix where the shared
    prefix ends: every token computes exactly what it would in its own
    sequence. A prefix common to the whole batch (`prefix_ids`) runs once, as
    one row, and every row attends to its keys and values.
    """

    input_ids: torch.Tensor  # [B, T]
    position_ids: torch.Tensor  # [B, T]
    mask: torch.Tensor  # [B, 1, T, P + T], bool (True = may attend) or additive float
    chosen_at: torch.Tensor  # [B] index of the chosen side's last token (EOS)
    rejected_at: torch.Tensor  # [B]
    prefix_ids: torch.Tensor | None = None  # [1, P] run once for the batch


def pack_pairs(
    rows: Sequence[EncodedPair],
    pad_id: int,
    device: torch.device,
    *,
    additive: torch.dtype | None = None,
    prefix: int = 0,
) -> PackedPairs:
    """Pack pairs; the first `prefix` tokens (common to every row, see `batch_prefix`) are left out of the rows."""
    width = max(r.packed_length for r in rows) - prefix
    n = len(rows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    pos = torch.zeros((n, width), dtype=torch.long)
    seg = torch.full((n, width), 3, dtype=torch.int8)  # 0 shared, 1 chosen, 2 rejected, 3 pad
    chosen_at = torch.empty(n, dtype=torch.long)
    rejected_at = torch.empty(n, dtype=torch.long)
    for i, r in enumerate(rows):
        shared, nc, nr = r.shared - prefix, len(r.chosen) - prefix, len(r.rejected) - prefix
        end = nc + nr - shared
        ids[i, :nc] = torch.as_tensor(r.chosen[prefix:])
        ids[i, nc:end] = torch.as_tensor(r.rejected[prefix + shared :])
        pos[i, :nc] = torch.arange(prefix, prefix + nc)
        pos[i, nc:end] = torch.arange(prefix + shared, prefix + nr)
        seg[i, :shared] = 0
        seg[i, shared:nc] = 1
        seg[i, nc:end] = 2
        chosen_at[i] = nc - 1
        rejected_at[i] = end - 1
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    key = seg[:, None, :]
    mask = causal[None] & ((key == 0) | (key == seg[:, :, None]))
    if prefix:
        mask = torch.cat([torch.ones(n, width, prefix, dtype=torch.bool), mask], dim=2)
    mask = mask[:, None]
    if additive is not None:
        mask = torch.zeros(mask.shape, dtype=additive).masked_fill_(~mask, torch.finfo(additive).min)
    prefix_ids = torch.as_tensor(rows[0].chosen[:prefix], dtype=torch.long)[None].to(device) if prefix else None
    return PackedPairs(
        ids.to(device), pos.to(device), mask.to(device), chosen_at.to(device), rejected_at.to(device), prefix_ids
    )


def _cache_kwarg(body: torch.nn.Module) -> str:
    """transformers renamed `past_key_values` to `cache` (5.2x); use whichever this model takes."""
    import inspect

    params = inspect.signature(body.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def packed_rewards(body: torch.nn.Module, head: ScalarHead, packed: PackedPairs) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen rewards [B], rejected rewards [B]) from one forward over packed pairs."""
    n = packed.input_ids.shape[0]
    extra: dict[str, Any] = {"use_cache": False}
    if packed.prefix_ids is not None:
        # The batch prefix once; its keys/values (with their autograd history) serve every row.
        kw = _cache_kwarg(body)
        pre = body(input_ids=packed.prefix_ids, use_cache=True)
        cache = getattr(pre, "cache", None) or getattr(pre, "past_key_values", None)
        cache.batch_repeat_interleave(n)
        extra = {"use_cache": True, kw: cache}
    out = body(input_ids=packed.input_ids, attention_mask=packed.mask, position_ids=packed.position_ids, **extra)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    rows = torch.arange(n, device=hidden.device)
    picked = torch.cat([hidden[rows, packed.chosen_at], hidden[rows, packed.rejected_at]])
    rewards = head(picked)
    return rewards[:n], rewards[n:]


def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / float(1 << 48)


def split_eval(pairs: Sequence[EncodedPair], eval_fraction: float) -> tuple[list[EncodedPair], list[EncodedPair]]:
    """(train, eval). Pairs on held-out ("test") prompts are the eval set; when there are none,
    `eval_fraction` of the pairs is held out, whole prompts at a time, chosen by a hash (deterministic)."""
    test = [p for p in pairs if p.split == "test"]
    if test:
        return [p for p in pairs if p.split != "test"], test
    if eval_fraction <= 0 or len(pairs) < 2:
        return list(pairs), []
    want = max(1, round(eval_fraction * len(pairs)))
    by_prompt: dict[int, list[EncodedPair]] = {}
    for p in pairs:
        by_prompt.setdefault(p.prompt_id, []).append(p)
    held: set[int] = set()
    if len(by_prompt) > 1:
        count = 0
        for pid in sorted(by_prompt, key=lambda i: _unit_hash(f"prompt:{i}")):
            if count >= want or count + len(by_prompt[pid]) >= len(pairs):
                break
            held.add(id(by_prompt[pid]))
            count += len(by_prompt[pid])
        if count >= 1:
            eval_set = [p for grp in by_prompt.values() if id(grp) in held for p in grp]
            train = [p for grp in by_prompt.values() if id(grp) not in held for p in grp]
            return train, eval_set
    order = sorted(range(len(pairs)), key=lambda i: _unit_hash(f"pair:{pairs[i].comparison_id}:{i}"))
    eval_idx = set(order[:want])
    return [p for i, p in enumerate(pairs) if i not in eval_idx], [p for i, p in enumerate(pairs) if i in eval_idx]


def grouped_batches(
    indices: Sequence[int], lengths: Sequence[int], batch_size: int, rng: random.Random, mega: int = 32
) -> list[list[int]]:
    """Shuffle, then sort by length inside mega-batches of `mega` batches, then shuffle the batches.

    Rows of similar length share a batch (little padding) while each epoch still
    sees a fresh order. The longest batch goes first so memory trouble shows at once.
    """
    idx = list(indices)
    rng.shuffle(idx)
    span = batch_size * mega
    batches: list[list[int]] = []
    for start in range(0, len(idx), span):
        chunk = sorted(idx[start : start + span], key=lambda i: -lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    if len(batches) > 1:
        longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b]))
        first = batches.pop(longest)
        rng.shuffle(batches)
        batches.insert(0, first)
    return batches


def bt_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    labels: torch.Tensor,
    margins: torch.Tensor,
    center_coef: float = 0.0,
) -> torch.Tensor:
    """Bradley–Terry loss with margins and soft (tie) labels, plus the centring term."""
    z = r_chosen - r_rejected - margins
    loss = -(labels * F.logsigmoid(z) + (1.0 - labels) * F.logsigmoid(-z)).mean()
    if center_coef:
        loss = loss + center_coef * ((r_chosen + r_rejected) ** 2).mean()
    return loss


def linear_schedule(warmup: int, total: int):
    """LR multiplier: linear warm-up over `warmup` steps, then linear decay to 0 at `total`."""

    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


# ------------------------------------------------------------------ the loop


@dataclass
class _State:
    step: int = 0
    total_steps: int = 0
    pending: list[tuple[int, torch.Tensor, float, float]] = field(default_factory=list)
    last_flush: float = 0.0
    last_values: dict[str, float] = field(default_factory=dict)
    last_checkpoint: Path | None = None
    last_checkpoint_step: int = -1
    train_seconds: float = 0.0
    pairs_seen: int = 0


class _Trainer:
    def __init__(self, cfg: RewardConfig, base: LoadedModel, output_dir: Path, sink: Sink, control: RunControl):
        self.cfg, self.base, self.output_dir, self.sink, self.control = cfg, base, output_dir, sink, control
        self.tokenizer = base.tokenizer
        self.state = _State()
        self.members = [f"reward-{i}" for i in range(cfg.ensemble)]
        self.heads: dict[str, ScalarHead] = {}
        self.norm: dict[str, dict[str, float]] = {}
        self.done: list[str] = []
        self.peft = None

    # ---------------------------------------------------------- model

    def build(self) -> None:
        from peft import get_peft_model, prepare_model_for_kbit_training

        model = self.base.model
        if self.base.four_bit:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        lora = lora_settings_config(self.cfg.lora)
        self.hidden = hidden_size_of(model)
        device = next(backbone_of(model).parameters()).device
        for i, name in enumerate(self.members):
            torch.manual_seed(self.cfg.seed * 1000 + i)
            if self.peft is None:
                self.peft = get_peft_model(model, lora, adapter_name=name)
            else:
                self.peft.add_adapter(name, lora)
            gen = torch.Generator().manual_seed(self.cfg.seed * 1000 + i)
            self.heads[name] = ScalarHead(self.hidden, generator=gen).to(device)
        self.body = backbone_of(self.peft)
        self.device = device
        if self.cfg.gradient_checkpointing:
            inner = self.peft.get_base_model()
            if hasattr(inner, "activation_checkpointing_enable"):  # transformers ≥ 5.2x
                inner.activation_checkpointing_enable({"use_reentrant": False})
            else:
                inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            # Checkpointing only runs in train mode; keep every dropout off all the same.
            self.body.train()
            for module in self.body.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.eval()
        impl = getattr(getattr(self.body, "config", None), "_attn_implementation", "sdpa")
        self.share = bool(self.cfg.share_prefix) and impl in ("sdpa", "eager")
        # Checkpointed layers drop the cache the batch prefix travels in.
        self.batch_prefix = self.share and not self.cfg.gradient_checkpointing
        self.additive = next(self.body.parameters()).dtype if impl == "eager" else None
        if self.share and self.additive is not None and not self.additive.is_floating_point:
            self.additive = torch.float32

    def check_sharing(self, rows: Sequence[EncodedPair]) -> None:
        """Packed forwards must agree with plain ones on this model; where not, train the plain way and say so.

        Checks the pair packing on `rows` and, separately, the batch prefix on
        one pair run twice (so the shared keys/values serve two rows).
        """
        if not self.share or not rows:
            return
        head = self.heads[self.members[0]]
        pad_id = self.tokenizer.pad_token_id
        exact = next(self.body.parameters()).dtype == torch.float32 and not self.base.four_bit
        scale = 1e-3 if exact else 5e-2

        def plain(batch: Sequence[EncodedPair]) -> torch.Tensor:
            ids, lens = pad_right([r.chosen for r in batch] + [r.rejected for r in batch], pad_id, self.device)
            return head(last_token_hidden(self.body, ids, lens))

        def gap(batch: Sequence[EncodedPair], prefix: int) -> tuple[float, float]:
            packed = pack_pairs(batch, pad_id, self.device, additive=self.additive, prefix=prefix)
            rc, rr = packed_rewards(self.body, head, packed)
            want = plain(batch)
            return float((torch.cat([rc, rr]) - want).abs().max()), scale * (1.0 + float(want.abs().max()))

        with torch.no_grad():
            diff, tol = gap(rows, 0)
            if not diff <= tol:
                self.share = self.batch_prefix = False
                self._warn_sharing(diff, tol, "chosen and rejected are run as separate rows")
                return
            if self.batch_prefix and rows[0].shared > 0:
                diff, tol = gap([rows[0], rows[0]], rows[0].shared)
                if not diff <= tol:
                    self.batch_prefix = False
                    self._warn_sharing(diff, tol, "the prompt prefix common to a batch is run per row")

    def _warn_sharing(self, diff: float, tol: float, fallback: str) -> None:
        self.sink(
            RunWarning(
                step=0,
                code="share_prefix_off",
                message=f"On this model the packed forward differs from the plain one by {diff:.3g} "
                f"(> {tol:.3g}), so {fallback} (slower, same result).",
            )
        )

    def pack(self, rows: Sequence[EncodedPair]) -> PackedPairs:
        prefix = batch_prefix(rows) if self.batch_prefix else 0
        return pack_pairs(rows, self.tokenizer.pad_token_id, self.device, additive=self.additive, prefix=prefix)

    def rm(self, members: Sequence[str]) -> RewardModel:
        return RewardModel(
            self.peft, self.tokenizer, {m: self.heads[m] for m in members}, norm=self.norm,
            batch_size=max(2, self.cfg.batch_size * 2),
        )

    def manifest_extra(self, **more: Any) -> dict[str, Any]:
        extra = {
            "base_name": self.base.name,
            "four_bit": bool(self.base.four_bit),
            "max_length": self.cfg.max_length,
            "config": to_dict(self.cfg),
        }
        extra.update(more)
        return extra

    # ---------------------------------------------------------- events

    def flush(self, force: bool = False) -> None:
        """Read pending losses (one device sync), stop on NaN/inf, emit one Metrics per step."""
        st = self.state
        now = time.monotonic()
        if not st.pending or (not force and now - st.last_flush < FLUSH_SECONDS):
            return
        st.last_flush = now
        values = torch.stack([v for _, v, _, _ in st.pending]).tolist()
        pending, st.pending = st.pending, []
        for (step, _, lr, epoch), (loss, acc, margin, gnorm) in zip(pending, values, strict=True):
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    step,
                    f"loss became {loss} (learning rate {lr:.3g}); lower learning_rate "
                    "or check the pairs for extreme margins",
                )
            row = {
                "train/loss": loss,
                "train/accuracy": acc,
                "train/margin": margin,
                "train/grad_norm": gnorm if math.isfinite(gnorm) else float("nan"),
                "train/lr": lr,
                "train/epoch": epoch,
            }
            st.last_values = row
            self.sink(Metrics(step=step, values=row, total_steps=st.total_steps))

    def checkpoint(self, member: str, optimizer, scheduler, epoch: float) -> None:
        st = self.state
        self.flush(force=True)  # never checkpoint a model that already went NaN
        if st.step <= 0 or st.step == st.last_checkpoint_step:
            return
        folder = self.output_dir / "checkpoints" / f"step-{st.step:06d}"
        for done in self.done:
            shutil.copytree(self.output_dir / done, folder / done, dirs_exist_ok=True)
        save_member(self.peft, self.heads[member], folder, member)
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": st.step,
                "member": member,
                "epoch": epoch,
            },
            folder / member / "training_state.pt",
        )
        write_manifest(
            folder,
            base_model=self.base.path.resolve(),
            hidden_size=self.hidden,
            members=[*self.done, member],
            norm=self.norm,
            extra=self.manifest_extra(step=st.step, partial=member),
        )
        # Optimizer state is large and only the newest is worth resuming from.
        if st.last_checkpoint is not None:
            for old in st.last_checkpoint.glob("*/training_state.pt"):
                old.unlink(missing_ok=True)
        st.last_checkpoint, st.last_checkpoint_step = folder, st.step
        self.sink(Checkpoint(step=st.step, path=str(folder), metrics=dict(st.last_values)))

    # ---------------------------------------------------------- training

    def train_member(self, k: int, train: list[EncodedPair], eval_set: list[EncodedPair]) -> None:
        cfg, st = self.cfg, self.state
        name = self.members[k]
        head = self.heads[name]
        self.peft.set_adapter(name)  # trainable: this adapter only
        for other in self.heads.values():
            other.requires_grad_(other is head)
        rng = random.Random(cfg.seed * 1000 + k)
        if cfg.ensemble > 1:  # bootstrap resample: members see different data
            indices = [rng.randrange(len(train)) for _ in train]
        else:
            indices = list(range(len(train)))
        lengths = [p.packed_length if self.share else p.length for p in train]
        steps_per_epoch = math.ceil(len(indices) / cfg.batch_size)
        member_steps = steps_per_epoch * cfg.epochs
        params = [p for p in self.peft.parameters() if p.requires_grad] + list(head.parameters())
        optimizer = _adamw(params, cfg)
        warmup = int(round(cfg.warmup_ratio * member_steps))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(warmup, member_steps))
        pad_id = self.tokenizer.pad_token_id
        dev = self.device
        dropouts = [m for n, m in self.peft.named_modules() if n.endswith(f"lora_dropout.{name}")]
        epoch = 0.0
        try:
            for ep in range(cfg.epochs):
                for m in dropouts:
                    m.train()
                sum_r = torch.zeros((), device=dev)
                sum_r2 = torch.zeros((), device=dev)
                count = 0
                batches = grouped_batches(indices, lengths, cfg.batch_size, rng)
                for b, batch in enumerate(batches):
                    self.control.check()
                    t0 = time.perf_counter()
                    rows = [train[i] for i in batch]
                    n = len(rows)
                    labels = torch.tensor([r.label for r in rows], device=dev)
                    margins = torch.tensor([r.margin for r in rows], device=dev)
                    if self.share:
                        rc, rr = packed_rewards(self.body, head, self.pack(rows))
                        rewards = torch.cat([rc, rr])
                    else:
                        ids, lens = pad_right([r.chosen for r in rows] + [r.rejected for r in rows], pad_id, dev)
                        rewards = head(last_token_hidden(self.body, ids, lens))
                        rc, rr = rewards[:n], rewards[n:]
                    loss = bt_loss(rc, rr, labels, margins, cfg.center_coef)
                    loss.backward()
                    gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    lr = scheduler.get_last_lr()[0]
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    with torch.no_grad():
                        delta = rc - rr
                        strict = (labels >= 1.0).float()
                        acc = ((delta > 0).float() * strict).sum() / strict.sum().clamp(min=1)
                        summary = torch.stack([loss.detach(), acc, delta.mean(), gnorm.detach().float()])
                        if ep == cfg.epochs - 1:
                            sum_r += rewards.detach().sum()
                            sum_r2 += (rewards.detach() ** 2).sum()
                            count += rewards.numel()
                    st.step += 1
                    st.pairs_seen += n
                    epoch = ep + (b + 1) / len(batches)
                    st.pending.append((st.step, summary, lr, epoch))
                    st.train_seconds += time.perf_counter() - t0
                    self.flush()
                    if cfg.checkpoint_every > 0 and st.step % cfg.checkpoint_every == 0:
                        self.norm[name] = _norm_stats(sum_r, sum_r2, count)
                        self.checkpoint(name, optimizer, scheduler, epoch)
                self.flush(force=True)
                if count:
                    self.norm[name] = _norm_stats(sum_r, sum_r2, count)
                if eval_set and (cfg.eval_every_epoch or ep == cfg.epochs - 1):
                    ev, _ = evaluate_reward_model(self.rm([name]), eval_set)
                    values = ev.as_metrics()
                    values["train/member"] = float(k)
                    self.sink(Metrics(step=st.step, values=values, total_steps=st.total_steps))
        except (CancelledRun, KeyboardInterrupt):
            # Keep what was learnt: a cancelled run's newest checkpoint is loadable.
            self.flush(force=True)
            self.checkpoint(name, optimizer, scheduler, epoch)
            raise
        except TrainingDiverged:
            raise
        except Exception:
            with contextlib.suppress(Exception):
                self.flush(force=True)
            raise
        for m in dropouts:
            m.eval()
        save_member(self.peft, head, self.output_dir, name)
        self.done.append(name)


def _adamw(params: list[torch.nn.Parameter], cfg: RewardConfig) -> torch.optim.Optimizer:
    """AdamW, fused where this torch supports it (one kernel for ~400 LoRA tensors, not ~10 ops each)."""
    try:
        return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, foreach=True)


def _norm_stats(total: torch.Tensor, total_sq: torch.Tensor, count: int) -> dict[str, float]:
    if count == 0:
        return {"mean": 0.0, "std": 1.0}
    mean = float(total) / count
    var = max(float(total_sq) / count - mean * mean, 0.0)
    return {"mean": mean, "std": math.sqrt(var) if var > 0 else 1.0}


def train_reward_model(
    cfg: RewardConfig,
    pairs: Sequence[PreferencePair],
    *,
    base: LoadedModel | str | Path,
    output_dir: str | Path,
    sink: Sink,
    control: RunControl | None = None,
    left_out: dict[str, int] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Train `cfg.ensemble` reward members on `pairs`; save them under `output_dir`; return final metrics.

    `left_out` counts pairs the caller already dropped (ties, both-bad, skips)
    so a refusal can say why there are too few. Raises `NotEnoughPairs`
    before loading anything when fewer than `cfg.min_pairs` are usable,
    `TrainingDiverged` on a NaN/inf loss, `CancelledRun` when cancelled (after
    writing a loadable checkpoint).
    """
    _, metrics = fit_reward_model(
        cfg, pairs, base=base, output_dir=output_dir, sink=sink, control=control, left_out=left_out, device=device
    )
    return metrics


def fit_reward_model(
    cfg: RewardConfig,
    pairs: Sequence[PreferencePair],
    *,
    base: LoadedModel | str | Path,
    output_dir: str | Path,
    sink: Sink,
    control: RunControl | None = None,
    left_out: dict[str, int] | None = None,
    device: str | None = None,
) -> tuple[RewardModel, dict[str, Any]]:
    """`train_reward_model`, also returning the trained model in memory (ready to score)."""
    control = control or RunControl()
    _check_config(cfg)
    kept, dropped = usable_pairs(cfg, pairs)
    reasons: Counter = Counter(left_out or {})
    reasons.update(dropped)
    if len(kept) < cfg.min_pairs:
        raise NotEnoughPairs(len(kept), cfg.min_pairs, reasons)
    if not isinstance(base, LoadedModel):
        base = load_model(base, four_bit=cfg.four_bit, device=device)
    if cfg.four_bit and not base.four_bit:
        raise ValueError("four_bit = true but the given base model was loaded in full precision")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    encoded, too_long = encode_pairs(base.tokenizer, kept, cfg.max_length)
    if too_long:
        reasons["too_long"] += too_long
        sink(
            RunWarning(
                step=0,
                code="too_long",
                message=f"{too_long} pairs were longer than max_length = {cfg.max_length} tokens and were left out.",
            )
        )
    if len(encoded) < cfg.min_pairs:
        raise NotEnoughPairs(len(encoded), cfg.min_pairs, reasons)
    train, eval_set = split_eval(encoded, cfg.eval_fraction)
    if not train:
        raise NotEnoughPairs(0, cfg.min_pairs, reasons | {"held out for evaluation": len(eval_set)})

    trainer = _Trainer(cfg, base, output_dir, sink, control)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    trainer.state.total_steps = steps_per_epoch * cfg.epochs * cfg.ensemble
    trainer.state.last_flush = time.monotonic()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        trainer.build()
    trainer.check_sharing(train[: cfg.batch_size])
    for k in range(cfg.ensemble):
        trainer.train_member(k, train, eval_set)

    rm = trainer.rm(trainer.members)
    final: dict[str, Any] = {}
    if eval_set:
        ev, per_member = evaluate_reward_model(rm, eval_set)
        values = ev.as_metrics()
        if cfg.ensemble > 1:
            for name, m in zip(trainer.members, per_member, strict=True):
                values.update(m.as_metrics(prefix=f"eval/{name}/"))
        sink(Metrics(step=trainer.state.step, values=values, total_steps=trainer.state.total_steps))
        final.update(values)
        message = length_bias_message(ev.length_corr, 2 * ev.pairs)
        if message:
            sink(RunWarning(step=trainer.state.step, code="length_bias", message=message))
    write_manifest(
        output_dir,
        base_model=base.path.resolve(),
        hidden_size=trainer.hidden,
        members=trainer.members,
        norm=trainer.norm,
        extra=trainer.manifest_extra(step=trainer.state.step, eval=final),
    )
    st = trainer.state
    final.update(
        {
            "train/loss": st.last_values.get("train/loss"),
            "train/accuracy": st.last_values.get("train/accuracy"),
            "train/pairs": len(train),
            "eval/pairs": len(eval_set),
            "train/pairs_per_s": st.pairs_seen / st.train_seconds if st.train_seconds else None,
            "steps": st.step,
            "ensemble": cfg.ensemble,
            "seconds": round(time.monotonic() - started, 2),
            "left_out": {k: v for k, v in reasons.items() if v},
            "output_dir": str(output_dir),
        }
    )
    return rm, final


def _check_config(cfg: RewardConfig) -> None:
    problems = []
    if cfg.epochs < 1:
        problems.append(f"epochs must be ≥ 1 (got {cfg.epochs})")
    if cfg.batch_size < 1:
        problems.append(f"batch_size must be ≥ 1 (got {cfg.batch_size})")
    if cfg.ensemble < 1:
        problems.append(f"ensemble must be ≥ 1 (got {cfg.ensemble})")
    if not cfg.learning_rate > 0:
        problems.append(f"learning_rate must be > 0 (got {cfg.learning_rate})")
    if not 0 <= cfg.eval_fraction < 1:
        problems.append(f"eval_fraction must be in [0, 1) (got {cfg.eval_fraction})")
    if cfg.max_length < 2:
        problems.append(f"max_length must be ≥ 2 (got {cfg.max_length})")
    if problems:
        raise ValueError("reward config: " + "; ".join(problems))
