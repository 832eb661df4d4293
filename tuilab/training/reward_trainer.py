"""The reward-model trainer: Bradley–Terry loss on LoRA adapters + scalar heads, one member at a time.

Loss per pair: −[y·log σ(z) + (1 − y)·log σ(−z)], z = r_c − r_r − margin
(y = 1 for a preference, 0.5 for a kept tie), plus η·(r_c + r_r)² to keep
rewards centred. Pairs run packed (`training.packing`: the prompt once per
pair, the batch prefix once per batch), checked against the plain forward on
the first batch and switched off, with a warning, on a model where they
disagree. Batches are grouped by length and padded only to their own longest
row; the LM head is never computed; no gradient checkpointing unless asked;
fused AdamW. Losses stay on the device and are read (one sync) every
`FLUSH_SECONDS` to emit metrics and catch NaN.

Across several processes (`training.distributed`) every rank builds the same
global batches and scores its contiguous share of each; the loss is weighted
by that share so DDP's averaged gradient equals the whole batch's, the step's
statistics are summed over the ranks, and only the main process writes.
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tuilab.config import RewardConfig, to_dict
from tuilab.modeling.export import portable_base
from tuilab.modeling.heads import ScalarHead
from tuilab.modeling.loading import LoadedModel
from tuilab.modeling.lora import add_adapter
from tuilab.modeling.reward_model import RewardModel, base_fingerprint, save_member, write_manifest
from tuilab.modeling.trunk import (
    backbone_of,
    hidden_size_of,
    last_token_hidden,
    packed_mask_dtype,
    pad_right,
)
from tuilab.training.distributed import SINGLE, Dist
from tuilab.training.events import (
    FLUSH_SECONDS,
    CancelledRun,
    Checkpoint,
    Metrics,
    RunControl,
    RunWarning,
    Sink,
    TrainingDiverged,
)
from tuilab.training.metrics import EncodedPair, evaluate_reward_model
from tuilab.training.optim import adamw, linear_schedule
from tuilab.training.packing import (
    PackedPairs,
    batch_prefix,
    grouped_batches,
    pack_pairs,
    packed_rewards,
    sliding_window,
)

# Train pairs (both answers scored) over which the normalisation stats of a saved model are measured:
# 128 rewards from one no-grad pass over 64 pairs, a small fraction of what an epoch of training costs.
NORM_PAIRS = 64


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


@dataclass
class _State:
    """Counters and the losses not yet read back from the device."""

    step: int = 0
    total_steps: int = 0
    pending: list[tuple[int, torch.Tensor, float, float]] = field(default_factory=list)
    last_flush: float = 0.0
    last_values: dict[str, float] = field(default_factory=dict)
    last_checkpoint: Path | None = None
    last_checkpoint_step: int = -1
    train_seconds: float = 0.0
    pairs_seen: int = 0


class _PairScorer(torch.nn.Module):
    """(r_chosen, r_rejected) of a batch of pairs: the trainable forward, the module DDP wraps."""

    def __init__(self, trainer: RewardTrainer, head: ScalarHead) -> None:
        super().__init__()
        self.body, self.head = trainer.body, head
        object.__setattr__(self, "trainer", trainer)  # not a submodule

    def forward(self, rows: Sequence[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.trainer
        if t.share:
            return packed_rewards(self.body, self.head, t.pack(rows))
        ids, lens = pad_right([r.chosen for r in rows] + [r.rejected for r in rows], t.tokenizer.pad_token_id,
                              t.device)
        rewards = self.head(last_token_hidden(self.body, ids, lens))
        return rewards[: len(rows)], rewards[len(rows) :]


class RewardTrainer:
    """Trains the members of one reward model in turn; `train_reward_model` drives it."""

    def __init__(self, cfg: RewardConfig, base: LoadedModel, output_dir: Path, sink: Sink, control: RunControl,
                 dist: Dist = SINGLE):
        self.cfg, self.base, self.output_dir, self.sink, self.control = cfg, base, output_dir, sink, control
        self.dist = dist
        self.tokenizer = base.tokenizer
        self.state = _State()
        self.members = [f"reward-{i}" for i in range(cfg.ensemble)]
        self.heads: dict[str, ScalarHead] = {}
        self.norm: dict[str, dict[str, float]] = {}
        self.done: list[str] = []
        self.peft = None

    # ---------------------------------------------------------- model

    def build(self) -> None:
        """One LoRA adapter and one scalar head per member, all on the one base model.

        Adapters go through `modeling.lora.add_adapter`: the rank check, and on a
        4-bit base the k-bit preparation that keeps its layers differentiable.
        """
        model = self.base.model
        self.hidden = hidden_size_of(model)
        device = next(backbone_of(model).parameters()).device
        for i, name in enumerate(self.members):
            torch.manual_seed(self.cfg.seed * 1000 + i)
            self.peft = add_adapter(self.peft if self.peft is not None else model, name, self.cfg.lora)
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
        self.additive = packed_mask_dtype(self.body)

    def check_sharing(self, rows: Sequence[EncodedPair], longest: int = 0) -> None:
        """Packed forwards must agree with plain ones on this model; where not, train the plain way and say so.

        Checks the pair packing on `rows` and, separately, the batch prefix on
        one pair run twice (so the shared keys/values serve two rows).
        """
        if not self.share or not rows:
            return
        window = sliding_window(self.peft)
        longest = max([longest] + [r.packed_length for r in rows])
        if window is not None and window < longest:
            self.share = self.batch_prefix = False
            self.sink(RunWarning(step=0, code="share_prefix_off", message=f"This model attends within a sliding "
                                 f"window of {window} tokens, shorter than a packed pair ({longest}), so chosen "
                                 "and rejected are run as separate rows (slower, same result)."))
            return
        head = self.heads[self.members[0]]
        pad_id = self.tokenizer.pad_token_id
        exact = next(self.body.parameters()).dtype == torch.float32 and not self.base.four_bit
        scale = 1e-3 if exact else 5e-2

        def plain(batch: Sequence[EncodedPair]) -> torch.Tensor:
            ids, lens = pad_right([r.chosen for r in batch] + [r.rejected for r in batch], pad_id, self.device)
            return head(last_token_hidden(self.body, ids, lens))

        def gap(batch: Sequence[EncodedPair], prefix: int) -> tuple[float, float]:
            want = plain(batch)
            try:
                packed = pack_pairs(batch, pad_id, self.device, additive=self.additive, prefix=prefix)
                rc, rr = packed_rewards(self.body, head, packed)
            except (RuntimeError, ValueError, IndexError):  # e.g. a cache that keeps only a window
                return math.inf, 0.0
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
            "base_fingerprint": base_fingerprint(self.base.model),
        }
        extra.update(more)
        return extra

    def measure_norm(self, member: str, train: Sequence[EncodedPair]) -> dict[str, float]:
        """Normalisation stats of `member` as it is now, over both answers of up to NORM_PAIRS train pairs.

        Measured on the weights being saved: stats summed while an epoch trains
        describe a model that no longer exists by the end of it, and a checkpoint
        written before them had none at all.
        """
        step = max(1, len(train) // NORM_PAIRS)
        rows = list(train[::step][:NORM_PAIRS])
        head = self.heads[member]
        dropouts = [m for n, m in self.peft.named_modules() if n.endswith(f"lora_dropout.{member}")]
        modes = [m.training for m in dropouts]
        for m in dropouts:
            m.eval()
        out = []
        try:
            with torch.no_grad():
                for i in range(0, len(rows), self.cfg.batch_size):
                    batch = rows[i : i + self.cfg.batch_size]
                    if self.share:
                        rc, rr = packed_rewards(self.body, head, self.pack(batch))
                    else:
                        ids, lens = pad_right([r.chosen for r in batch] + [r.rejected for r in batch],
                                              self.tokenizer.pad_token_id, self.device)
                        rc = head(last_token_hidden(self.body, ids, lens))
                        rr = rc[:0]
                    out += [rc.float(), rr.float()]
        finally:
            for m, mode in zip(dropouts, modes, strict=True):
                m.train(mode)
        return norm_stats(torch.cat(out) if out else torch.zeros(0))

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
        if st.step <= 0 or st.step == st.last_checkpoint_step or not self.dist.is_main:
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
            base_model=portable_base(self.base.path, folder),
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
        optimizer = adamw(params, cfg.learning_rate, cfg.weight_decay)
        warmup = int(round(cfg.warmup_ratio * member_steps))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(warmup, member_steps))
        dev = self.device
        d = self.dist
        scorer = _PairScorer(self, head)
        forward = d.prepare(scorer)  # the scorer itself with one process
        dropouts = [m for n, m in self.peft.named_modules() if n.endswith(f"lora_dropout.{name}")]
        epoch = 0.0
        try:
            for ep in range(cfg.epochs):
                for m in dropouts:
                    m.train()
                batches = grouped_batches(indices, lengths, cfg.batch_size, rng)
                for b, batch in enumerate(batches):
                    d.check(self.control)
                    t0 = time.perf_counter()
                    rows = [train[i] for i in batch]
                    n = len(rows)
                    weight = 1.0
                    if d.enabled:  # this rank's share of the global batch
                        rows, weight = d.split(rows)
                    labels = torch.tensor([r.label for r in rows], device=dev)
                    margins = torch.tensor([r.margin for r in rows], device=dev)
                    rc, rr = forward(rows)
                    loss = bt_loss(rc, rr, labels, margins, cfg.center_coef)
                    if d.enabled:  # DDP averages over ranks: weight by this rank's share of the batch
                        (loss * (weight * len(rows) / n * d.size)).backward()
                    else:
                        loss.backward()
                    gnorm = d.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    lr = scheduler.get_last_lr()[0]
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    with torch.no_grad():
                        delta = rc - rr
                        strict = (labels >= 1.0).float()
                        if d.enabled:
                            summary = _global_summary(d, loss, delta, strict, weight, n, gnorm)
                        else:
                            acc = ((delta > 0).float() * strict).sum() / strict.sum().clamp(min=1)
                            summary = torch.stack([loss.detach(), acc, delta.mean(), gnorm.detach().float()])
                    st.step += 1
                    st.pairs_seen += n
                    epoch = ep + (b + 1) / len(batches)
                    st.pending.append((st.step, summary, lr, epoch))
                    st.train_seconds += time.perf_counter() - t0
                    self.flush()
                    if cfg.checkpoint_every > 0 and st.step % cfg.checkpoint_every == 0:
                        self.norm[name] = self.measure_norm(name, train)
                        self.checkpoint(name, optimizer, scheduler, epoch)
                self.flush(force=True)
                if eval_set and (cfg.eval_every_epoch or ep == cfg.epochs - 1):
                    ev, _ = evaluate_reward_model(self.rm([name]), eval_set, dist=d)
                    values = ev.as_metrics()
                    values["train/member"] = float(k)
                    self.sink(Metrics(step=st.step, values=values, total_steps=st.total_steps))
        except (CancelledRun, KeyboardInterrupt):
            # Keep what was learnt: a cancelled run's newest checkpoint is loadable.
            self.flush(force=True)
            self.norm[name] = self.measure_norm(name, train)
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
        self.norm[name] = self.measure_norm(name, train)  # the final weights, not the epoch's moving ones
        if d.is_main:
            save_member(self.peft, head, self.output_dir, name)
        self.done.append(name)


def _global_summary(d: Dist, loss: torch.Tensor, delta: torch.Tensor, strict: torch.Tensor, weight: float,
                    n: int, gnorm: torch.Tensor) -> torch.Tensor:
    """[loss, accuracy, mean margin, grad norm] of the whole batch from every rank's sums (one all-reduce)."""
    sums = d.sum(torch.stack([
        loss.detach() * len(delta) * weight,
        ((delta > 0).float() * strict).sum() * weight,
        strict.sum() * weight,
        delta.sum() * weight,
    ]).float())
    return torch.stack([sums[0] / n, sums[1] / sums[2].clamp(min=1), sums[3] / n, gnorm.detach().float()])


def norm_stats(rewards: torch.Tensor) -> dict[str, float]:
    """Mean and (population) std of rewards: what `normalize=True` scores subtract and divide by."""
    if rewards.numel() == 0:
        return {"mean": 0.0, "std": 1.0}
    std = float(rewards.float().std(unbiased=False))
    return {"mean": float(rewards.float().mean()), "std": std if std > 1e-12 else 1.0}
