"""Direct preference optimisation of a LoRA policy on one shared base model (one file, top to bottom).

DPO (Rafailov et al. 2023, "Direct Preference Optimization: Your Language
Model is Secretly a Reward Model") trains the policy on the preference pairs
themselves: the implicit reward of an answer is r(x, y) = β·(log π(y|x) −
log π_ref(y|x)), and the loss is the Bradley–Terry loss on r_chosen −
r_rejected. No reward model, no sampling in the loop.

Models: the base is loaded once (4-bit when asked); `policy` is a LoRA adapter
added through `modeling/lora.add_adapter`; the reference policy is the same
model with adapters disabled. No second copy of the base.

Losses (`cfg.loss`), with h = (log π_c − log π_ref,c) − (log π_r − log π_ref,r),
y the label (1, or 0.5 for a kept tie) and m the pair's margin:
- sigmoid: −log σ(βh − m)                   DPO, Rafailov et al. 2023 (eq. 7)
- ipo:     (h̄ − 1/(2β))², h̄ per token       IPO, Azar et al. 2023 ("A General Theoretical Paradigm…")
- hinge:   max(0, 1 − (βh − m))             SLiC-HF, Zhao et al. 2023
- rdpo:    −log σ(βh + α(|y_c| − |y_r|) − m) R-DPO, Park et al. 2024 ("Disentangling Length from Quality in DPO")
Soft labels: a tie (y = 0.5) and label smoothing ε (conservative DPO, Mitchell
2023) mix the loss of z and of −z: y'·ℓ(z) + (1 − y')·ℓ(−z), y' = (1 − ε)y +
ε(1 − y). The margin m is an offset on the logit (ODPO, Amini et al. 2024,
"Direct Preference Optimization with an Offset"); IPO regresses h̄ to a fixed
gap and uses neither margins nor smoothing (a tie's target gap is 0).

Ties and both-bad comparisons are handled exactly as in reward training: the
same `preference_pairs` (both-bad and skip give no pair; edits add edited ≻
each side) and the same `usable_pairs` (ties left out unless ties = "half").

Cost (why it is fast on a CPU):
- chosen and rejected share their prompt: each pair is one packed row
  (`packing.pack_pairs`: prompt once, then both answers, masked apart), and a
  prefix common to the batch runs once with its keys/values shared by every
  row, gradients included; checked against the plain forward on the first
  batch, switched off with a warning where they disagree;
- the LM head runs only at the positions that predict answer tokens;
- reference log-probs are computed once per pair, without gradients, before
  the first step, and reused every epoch (and saved, so a resume reuses them).

Every `sample_every` steps the policy answers held-out prompts; those answers
get the implicit reward, the KL to the reference (sum of log π − log π_ref over
the sampled tokens, as PPO's `objective/kl`), the gold score, and the same
hacking flags and warnings as PPO (`HackingMonitor`), so the run screen and
the inspector read a DPO run as they read a PPO run. Samples at step s come
from the policy after s − 1 updates (step 1's from the reference itself).

Several processes (`training.distributed`): every rank builds the same global
batches and scores its contiguous share of each (its loss weighted by that
share; DDP averages the gradients), the step's statistics are summed over the
ranks, the reference pass, the held-out evaluation and the held-out answers
are split across the ranks and gathered; only the main process writes.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tuilab.config import DPOConfig, to_dict
from tuilab.diagnostics.monitor import HackingMonitor
from tuilab.diagnostics.stats import pearson
from tuilab.modeling.chat import as_messages, prompt_ids
from tuilab.modeling.generation import sample
from tuilab.modeling.loading import LoadedModel
from tuilab.records import PreferencePair, Prompt
from tuilab.records import Sample as SampleRow
from tuilab.training import checkpoints as ck
from tuilab.training import events
from tuilab.training.distributed import SINGLE, Dist, current
from tuilab.training.metrics import EncodedPair, eval_from_rewards
from tuilab.training.optim import adamw, linear_schedule
from tuilab.training.packing import (
    MIN_BATCH_PREFIX,
    batch_prefix,
    encode_pairs,
    grouped_batches,
    pack_pairs,
    packed_forward,
    sliding_window,
)
from tuilab.training.reward import NotEnoughPairs, split_eval, usable_pairs

POLICY = "policy"
STATE_FILE = ck.STATE_FILE
find_latest_checkpoint = ck.find_latest_checkpoint
REFERENCE_FILE = "reference_logps.pt"
MANIFEST = "dpo.json"
LOSSES = ("sigmoid", "ipo", "hinge", "rdpo")

# (prompts, response texts) → gold scores
GoldFn = Callable[[list[Prompt], list[str]], Sequence[float]]


# ======================================================================== the losses
@dataclass
class DPOLoss:
    loss: torch.Tensor  # scalar, mean over pairs
    chosen_rewards: torch.Tensor  # [B] β·(log π − log π_ref), summed over the answer
    rejected_rewards: torch.Tensor  # [B]


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    loss_type: str = "sigmoid",
    beta: float = 0.1,
    labels: torch.Tensor | None = None,
    margins: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
    alpha: float = 0.0,
) -> DPOLoss:
    """The preference loss from summed answer log-probs [B] (policy and reference); see the module doc.

    `chosen_lengths` / `rejected_lengths`: answer tokens (EOS included), used by IPO (per-token
    log-ratios) and R-DPO (the length term).
    """
    if loss_type not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss_type!r}")
    chosen_ratio = policy_chosen - ref_chosen
    rejected_ratio = policy_rejected - ref_rejected
    y = torch.ones_like(chosen_ratio) if labels is None else labels.to(chosen_ratio)
    m = torch.zeros_like(chosen_ratio) if margins is None else margins.to(chosen_ratio)
    if loss_type == "ipo":
        # IPO (Azar et al. 2023): squared distance of the per-token log-ratio gap from 1/(2β)
        # (per token as in TRL); a tie's target gap is 0.
        gap = chosen_ratio / chosen_lengths.to(chosen_ratio) - rejected_ratio / rejected_lengths.to(chosen_ratio)
        losses = (gap - (2 * y - 1) / (2 * beta)) ** 2
    else:
        z = beta * (chosen_ratio - rejected_ratio) - m  # the margin as an offset (ODPO, Amini et al. 2024)
        if loss_type == "rdpo":
            # R-DPO (Park et al. 2024): a length term α(|y_c| − |y_r|) in the logit, so the part of a
            # preference that length explains is not learnt as a log-ratio gap.
            z = z + alpha * (chosen_lengths.to(z) - rejected_lengths.to(z))
        # Conservative DPO (Mitchell 2023): each label is wrong with probability ε.
        y = (1 - label_smoothing) * y + label_smoothing * (1 - y)
        if loss_type == "hinge":
            # SLiC-HF (Zhao et al. 2023): a hinge on the calibrated logit.
            losses = y * torch.relu(1 - z) + (1 - y) * torch.relu(1 + z)
        else:
            # DPO (Rafailov et al. 2023, eq. 7): Bradley–Terry on the implicit rewards.
            losses = -(y * F.logsigmoid(z) + (1 - y) * F.logsigmoid(-z))
    return DPOLoss(losses.mean(), beta * chosen_ratio.detach(), beta * rejected_ratio.detach())


# ======================================================================== answer log-probs
def prompt_length(p: EncodedPair) -> int:
    """Tokens before the answer (chat template + prompt): the same on both sides."""
    return len(p.chosen) - p.chosen_tokens - 1


def _targets(p: EncodedPair, prefix: int, packed: bool) -> tuple[list[int], list[int], list[int], list[int]]:
    """(columns, tokens) predicting the chosen answer and the rejected answer (EOS included).

    Token j of a sequence is predicted by the hidden state at j − 1. Packed, the
    chosen sequence is laid out whole; the rejected one shares the columns of
    the common prefix, then continues after the chosen one.
    """
    start = prompt_length(p)
    nc = len(p.chosen) - prefix
    c_cols = [j - 1 - prefix for j in range(start, len(p.chosen))]
    c_toks = p.chosen[start:]
    if packed:
        r_cols = [(k - prefix if k < p.shared else nc + k - p.shared) for k in range(start - 1, len(p.rejected) - 1)]
    else:
        r_cols = [j - 1 for j in range(start, len(p.rejected))]
    return c_cols, c_toks, r_cols, p.rejected[start:]


def _hidden(out: Any) -> torch.Tensor:
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def _answer_logps(hidden: torch.Tensor, lm_head: torch.nn.Module, rows: list[int], cols: list[int],
                  toks: list[int], owner: list[int], n_out: int) -> torch.Tensor:
    """Sum of log p(token) per owner, the LM head computed only at the given positions."""
    dev = hidden.device
    h = hidden[torch.tensor(rows, device=dev), torch.tensor(cols, device=dev)]
    logp = -F.cross_entropy(lm_head(h).float(), torch.tensor(toks, device=dev), reduction="none")
    return torch.zeros(n_out, device=dev, dtype=logp.dtype).index_add_(0, torch.tensor(owner, device=dev), logp)


def plain_logps(body: torch.nn.Module, lm_head: torch.nn.Module, batch: Sequence[EncodedPair],
                pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) summed answer log-probs [B], each sequence run on its own row."""
    seqs = [p.chosen for p in batch] + [p.rejected for p in batch]
    dev = next(body.parameters()).device
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    am = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s)
        am[i, : len(s)] = 1
    hidden = _hidden(body(input_ids=ids.to(dev), attention_mask=am.to(dev), use_cache=False))
    rows, cols, toks, owner = [], [], [], []
    n = len(batch)
    for i, p in enumerate(batch):
        c_cols, c_toks, r_cols, r_toks = _targets(p, 0, packed=False)
        rows += [i] * len(c_cols) + [n + i] * len(r_cols)
        cols += c_cols + r_cols
        toks += c_toks + r_toks
        owner += [i] * len(c_cols) + [n + i] * len(r_cols)
    out = _answer_logps(hidden, lm_head, rows, cols, toks, owner, 2 * n)
    return out[:n], out[n:]


def packed_logps(body: torch.nn.Module, lm_head: torch.nn.Module, batch: Sequence[EncodedPair], pad_id: int, *,
                 share_batch_prefix: bool = True, additive: torch.dtype | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) summed answer log-probs [B] from one packed row per pair (prompt run once)."""
    dev = next(body.parameters()).device
    prefix = batch_prefix(batch) if share_batch_prefix else 0
    # The state predicting each answer's first token (the prompt's last) must be in the rows.
    prefix = min(prefix, min(prompt_length(p) for p in batch) - 1)
    if prefix < MIN_BATCH_PREFIX:
        prefix = 0
    packed = pack_pairs(batch, pad_id, dev, additive=additive, prefix=prefix)
    n = len(batch)
    hidden = _hidden(packed_forward(body, packed))
    rows, cols, toks, owner = [], [], [], []
    for i, p in enumerate(batch):
        c_cols, c_toks, r_cols, r_toks = _targets(p, prefix, packed=True)
        rows += [i] * (len(c_cols) + len(r_cols))
        cols += c_cols + r_cols
        toks += c_toks + r_toks
        owner += [i] * len(c_cols) + [n + i] * len(r_cols)
    out = _answer_logps(hidden, lm_head, rows, cols, toks, owner, 2 * n)
    return out[:n], out[n:]


@dataclass
class _Engine:
    """How this model computes answer log-probs: packed (with or without a batch prefix) or plain."""

    body: torch.nn.Module
    lm_head: torch.nn.Module
    pad_id: int
    share: bool
    batch_prefix: bool
    additive: torch.dtype | None

    def logps(self, batch: Sequence[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.share:
            return packed_logps(self.body, self.lm_head, batch, self.pad_id, share_batch_prefix=self.batch_prefix,
                                additive=self.additive)
        return plain_logps(self.body, self.lm_head, batch, self.pad_id)


class _PolicyLogps(torch.nn.Module):
    """The trainable forward, (chosen, rejected) answer log-probs of a batch: the module DDP wraps."""

    def __init__(self, engine: _Engine) -> None:
        super().__init__()
        self.body, self.lm_head = engine.body, engine.lm_head
        object.__setattr__(self, "engine", engine)  # not a submodule

    def forward(self, batch: Sequence[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.engine.logps(batch)


def _engine(model: Any, tokenizer: Any, cfg: DPOConfig) -> _Engine:
    from tuilab.modeling.trunk import backbone_of, packed_mask_dtype

    body = backbone_of(model)
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    impl = getattr(getattr(body, "config", None), "_attn_implementation", "sdpa")
    share = bool(cfg.share_prefix) and impl in ("sdpa", "eager")
    return _Engine(body, inner.get_output_embeddings(), tokenizer.pad_token_id, share, share, packed_mask_dtype(body))


def check_sharing(engine: _Engine, batch: Sequence[EncodedPair], exact: bool, sink: events.Sink) -> None:
    """Packed log-probs must equal plain ones on this model; where not, run plain and say so.

    Two rows of different lengths exercise every mask rule; when they also start
    alike (the chat template's system prompt) the batch prefix too, so one packed
    forward settles it. Only a disagreement, or rows too unlike for a batch
    prefix, costs the finer checks that decide what to switch off.
    """
    if not engine.share or not batch:
        return
    rows = list(batch[:2])
    with torch.no_grad():
        qc, qr = plain_logps(engine.body, engine.lm_head, rows, engine.pad_id)
        limit = (1e-3 if exact else 5e-2) * (1.0 + float(torch.cat([qc, qr]).abs().max()))

        def gap(idx: list[int], prefix_on: bool) -> float:
            try:
                pc, pr = packed_logps(engine.body, engine.lm_head, [rows[i] for i in idx], engine.pad_id,
                                      share_batch_prefix=prefix_on, additive=engine.additive)
            except (RuntimeError, ValueError, IndexError):
                # e.g. a sliding-window cache that keeps only the window: the shared prefix cannot serve the rows
                return math.inf
            return float((torch.cat([pc, pr]) - torch.cat([qc[idx], qr[idx]])).abs().max())

        both = list(range(len(rows)))
        prefixed = gap(both, True) if batch_prefix(rows) else None
        if prefixed is not None and prefixed <= limit:
            return
        diff = gap(both, False)
        if not diff <= limit:
            engine.share = engine.batch_prefix = False
            _warn_sharing(sink, diff, limit, "chosen and rejected are run as separate rows")
            return
        if prefixed is None:
            prefixed = gap([0, 0], True)  # the same pair twice: the whole prompt is a batch prefix
        if not prefixed <= limit:
            engine.batch_prefix = False
            _warn_sharing(sink, prefixed, limit, "the prompt prefix common to a batch is run per row")


def _warn_sharing(sink: events.Sink, diff: float, tol: float, fallback: str) -> None:
    how = (f"differs from the plain one by {diff:.3g} (> {tol:.3g})" if math.isfinite(diff)
           else "fails (the model's attention or cache cannot take packed rows)")
    sink(events.RunWarning(step=0, code="share_prefix_off",
                           message=f"On this model the packed forward {how}, so {fallback} (slower, same result)."))


def reference_logps(model: Any, engine: _Engine, pairs: Sequence[EncodedPair], batch_size: int,
                    dist: Dist = SINGLE) -> torch.Tensor:
    """[N, 2] summed answer log-probs of the reference policy (adapters off), computed once, no gradients.

    Across processes each rank computes a share of the pairs and the rows are gathered, on every rank.
    """
    from tuilab.modeling.lora import adapters_disabled

    out = torch.empty(len(pairs), 2)
    order = sorted(range(len(pairs)), key=lambda i: pairs[i].packed_length)  # little padding
    if dist.enabled:
        order = [order[i] for i in dist.span(len(order))]
    with torch.no_grad(), adapters_disabled(model):
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            c, r = engine.logps([pairs[i] for i in idx])
            out[idx, 0], out[idx, 1] = c.float().cpu(), r.float().cpu()
    if dist.enabled:
        for i, row in dist.gather_objects([(i, out[i].tolist()) for i in order]):
            out[i] = torch.tensor(row)
    return out


# ======================================================================== setup
def prepare_policy(base: LoadedModel, cfg: DPOConfig) -> tuple[Any, list[torch.nn.Parameter]]:
    """The PeftModel carrying the trainable `policy` adapter, set up as PPO's (added once, the only
    part that trains, dropout off as TRL's DPOTrainer does by default), and its parameters."""
    from peft import PeftModel

    from tuilab.training import ppo

    if not (isinstance(base.model, PeftModel) and POLICY in base.model.peft_config):
        torch.manual_seed(cfg.seed)  # the new adapter's initial weights
    model = ppo.prepare_policy(base, cfg)
    return model, [p for p in model.parameters() if p.requires_grad]


def resolve_gold(spec: str, model: Any, tokenizer: Any) -> GoldFn:
    """`cfg.gold_scorer` → GoldFn, as PPO resolves it ("module:function" or a reward run folder)."""
    from tuilab.training.ppo import resolve_gold as ppo_resolve_gold

    return ppo_resolve_gold(spec, model, tokenizer)


def sample_prompts(pairs: Sequence[EncodedPair], source: Sequence[PreferencePair], limit: int) -> list[Prompt]:
    """The held-out prompts the policy answers every `sample_every` steps (fixed for the run)."""
    by_id = {p.prompt_id: p for p in source}
    seen: list[int] = []
    for p in pairs:
        if p.prompt_id not in seen:
            seen.append(p.prompt_id)
    seen = sorted(seen)[:limit]
    out = []
    for pid in seen:
        pp = by_id[pid]
        text = next((m["content"] for m in reversed(pp.messages) if m.get("role") == "user"), "")
        out.append(Prompt(id=pid, messages=pp.messages, text=text, split=pp.split))
    return out


# ======================================================================== checkpoints
def save_checkpoint(folder: Path, *, model, optimizer, scheduler, gens, step: int, monitor: HackingMonitor,
                    cfg: DPOConfig, extra: dict | None = None) -> Path:
    """Adapter (PEFT layout) + optimiser, schedule, RNG and monitor state; written to a temp folder, then renamed."""
    with ck.written_whole(folder) as tmp:
        model.save_pretrained(str(tmp), selected_adapters=[POLICY])
        torch.save({"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": {k: g.get_state() for k, g in gens.items()}, "monitor": monitor.state_dict(),
                    "config": to_dict(cfg), **(extra or {})}, tmp / STATE_FILE)
    return folder


def _resume(folder: Path, model, optimizer, scheduler, gens, monitor, d: Dist = SINGLE) -> int:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state_path = folder / STATE_FILE
    if not state_path.exists():
        raise FileNotFoundError(f"{folder}: not a DPO checkpoint (no {STATE_FILE})")
    weights = folder / POLICY / "adapter_model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"{folder}: no policy adapter ({weights.name}) in this checkpoint")
    set_peft_model_state_dict(model, load_file(str(weights)), adapter_name=POLICY)
    state = torch.load(state_path, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    def set_states(states: dict) -> None:
        for k, g in gens.items():
            g.set_state(states[k])

    set_states(state["rng"])
    ck.restore_rank_rng(gens, state, d, set_states)
    monitor.load_state_dict(state["monitor"])
    return int(state["step"])


# ======================================================================== the loop
def validate_config(cfg: DPOConfig) -> None:
    """Raise ValueError naming every setting out of range (one sentence)."""
    checks = [
        (cfg.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got {cfg.loss!r}"),
        (cfg.beta > 0, f"beta must be > 0, got {cfg.beta}"),
        (0 <= cfg.label_smoothing < 0.5, f"label_smoothing must be in [0, 0.5), got {cfg.label_smoothing}"),
        (cfg.rdpo_alpha >= 0, f"rdpo_alpha must be ≥ 0, got {cfg.rdpo_alpha}"),
        (cfg.ties in ("skip", "half"), f'ties must be "skip" or "half", got {cfg.ties!r}'),
        (cfg.epochs >= 1, f"epochs must be ≥ 1, got {cfg.epochs}"),
        (cfg.batch_size >= 1, f"batch_size must be ≥ 1, got {cfg.batch_size}"),
        (cfg.learning_rate > 0, f"learning_rate must be > 0, got {cfg.learning_rate}"),
        (0 <= cfg.eval_fraction < 1, f"eval_fraction must be in [0, 1), got {cfg.eval_fraction}"),
        (cfg.max_length >= 2, f"max_length must be ≥ 2, got {cfg.max_length}"),
        (cfg.max_new_tokens >= 1, f"max_new_tokens must be ≥ 1, got {cfg.max_new_tokens}"),
        (cfg.temperature > 0, f"temperature must be > 0, got {cfg.temperature}"),
    ]
    problems = [message for ok, message in checks if not ok]
    if problems:
        raise ValueError("DPO config: " + "; ".join(problems))


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return math.ceil(n_train / batch_size)


def epoch_batches(n_train: int, lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of 0-based `epoch`: a pure function of (seed, epoch), so a resume replays the same order."""
    return grouped_batches(range(n_train), lengths, batch_size, random.Random(seed * 1000 + epoch))


def train_dpo(
    cfg: DPOConfig,
    pairs: Sequence[PreferencePair],
    *,
    base: LoadedModel,
    output_dir: str | os.PathLike,
    sink: events.Sink,
    control: events.RunControl | None = None,
    resume_from: str | os.PathLike | None = None,
    gold: GoldFn | None = None,
    left_out: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Train the policy adapter on `pairs` for `cfg.epochs`; save it under `output_dir/policy`; return final metrics.

    `pairs` come from `store.pairs.preference_pairs` (in the same order on a
    resume). Raises `NotEnoughPairs` when fewer than `cfg.min_pairs` are usable,
    `TrainingDiverged` on a NaN/inf loss, `CancelledRun` when cancelled (after
    checkpointing the last finished step).
    """
    from collections import Counter

    validate_config(cfg)
    d = current()
    control = control or events.RunControl()
    kept, dropped = usable_pairs(cfg, pairs)
    reasons: Counter = Counter(left_out or {})
    reasons.update(dropped)
    if len(kept) < cfg.min_pairs:
        raise NotEnoughPairs(len(kept), cfg.min_pairs, reasons)
    output_dir = Path(output_dir)
    if d.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tokenizer = base.tokenizer

    encoded, too_long = encode_pairs(tokenizer, kept, cfg.max_length)
    if too_long:
        reasons["too_long"] += too_long
        sink(events.RunWarning(step=0, code="too_long", message=f"{too_long} pairs were longer than max_length = "
                               f"{cfg.max_length} tokens and were left out."))
    if not cfg.use_margins:
        for p in encoded:
            p.margin = 0.0
    train, eval_set = split_eval(encoded, cfg.eval_fraction)
    if len(train) < cfg.min_pairs:
        raise NotEnoughPairs(len(train), cfg.min_pairs, reasons | {"held out for evaluation": len(eval_set)})

    # ---- model: one base, the policy adapter; the reference is the same model with adapters off
    model, params = prepare_policy(base, cfg)
    engine = _engine(model, tokenizer, cfg)
    device = next(engine.body.parameters()).device
    if d.enabled and d.device.type == "cuda" and device != d.device:
        raise ValueError(f"process {d.rank}: the base model was loaded on {device}, not on this process's "
                         f"{d.device}; load it with device={str(d.device)!r}")
    exact = next(engine.body.parameters()).dtype == torch.float32 and not base.four_bit
    window = sliding_window(model)
    longest = max(p.packed_length for p in encoded)
    if engine.share and window is not None and window < longest:
        # A packed row is longer than either sequence, and its mask bypasses the model's window.
        engine.share = engine.batch_prefix = False
        sink(events.RunWarning(step=0, code="share_prefix_off", message=f"This model attends within a sliding window of "
                               f"{window} tokens, shorter than the longest packed pair ({longest}), so chosen and rejected "
                               "are run as separate rows (slower, same result)."))
    check_sharing(engine, train[:2], exact, sink)
    if gold is None and cfg.gold_scorer:
        gold = resolve_gold(cfg.gold_scorer, model, tokenizer)

    # ---- reference log-probs: once per pair, no gradients; reused every epoch and on resume
    ref_path = output_dir / REFERENCE_FILE
    everything = train + eval_set
    ref = None
    if d.enabled:  # the main process found the checkpoint; every rank resumes from the same one
        resume_from = d.broadcast(None if resume_from is None else str(resume_from))
    if resume_from is not None and ref_path.exists():
        ref = torch.load(ref_path, map_location="cpu")
        if ref.shape != (len(everything), 2):
            ref = None
    t_ref = time.perf_counter()
    if ref is None:
        ref = reference_logps(model, engine, everything, max(cfg.batch_size * 2, 2), dist=d)
        if d.is_main:
            torch.save(ref, ref_path)
    ref_seconds = time.perf_counter() - t_ref
    ref_train, ref_eval = ref[: len(train)].to(device), ref[len(train) :].to(device)

    per_epoch = steps_per_epoch(len(train), cfg.batch_size)
    total = per_epoch * cfg.epochs
    optimizer = adamw(params, cfg.learning_rate, cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(round(cfg.warmup_ratio * total), total))
    seed = ck.rank_seed(cfg.seed, d.rank)  # rank 0 (and one process): cfg.seed's streams
    gens = {"sample": torch.Generator(device=device).manual_seed(seed),
            "reference": torch.Generator(device=device).manual_seed(seed + 1)}
    monitor = HackingMonitor()
    held_out = sample_prompts(eval_set or train, kept, cfg.sample_prompts)
    held_ids = [prompt_ids(tokenizer, as_messages(p.messages)) for p in held_out]

    start = 1
    if resume_from is not None:
        start = _resume(Path(resume_from), model, optimizer, scheduler, gens, monitor, d) + 1
    if d.is_main:
        _write_manifest(output_dir, base, cfg, len(train), len(eval_set))
    # The trainable forward: DDP-wrapped across processes, the engine itself in one.
    forward = d.prepare(_PolicyLogps(engine)) if d.enabled else engine.logps

    lengths = [p.packed_length if engine.share else p.length for p in train]
    last: dict[str, float] = {}
    last_eval: dict[str, float] = {}
    step = start - 1
    train_seconds = 0.0
    pairs_seen = 0

    def checkpoint(at: int) -> None:
        extra = ck.rng_of_ranks(d, {k: g.get_state() for k, g in gens.items()})  # every rank's, across processes
        if not d.is_main:
            return
        path = save_checkpoint(output_dir / "checkpoints" / f"step-{at:06d}", model=model, optimizer=optimizer,
                               scheduler=scheduler, gens=gens, step=at, monitor=monitor, cfg=cfg,
                               extra=extra)
        sink(events.Checkpoint(step=at, path=str(path), metrics={**_headline(last), **last_eval}))

    saver = ck.Schedule(cfg.checkpoint_every, total, checkpoint, last=start - 1)
    try:
        for step in range(start, total + 1):
            d.check(control)
            epoch, b = divmod(step - 1, per_epoch)
            if cfg.sample_every > 0 and (step - 1) % cfg.sample_every == 0:
                # Before this step's update: the policy after step − 1 updates.
                last_eval = _evaluate(engine, eval_set, ref_eval, cfg, d)
                last_eval.update(_answer_held_out(step, cfg, model, tokenizer, engine, held_out, held_ids, gens,
                                                  monitor, gold, sink, d))
                sink(events.Metrics(step=step, values=last_eval, total_steps=total))
            t0 = time.perf_counter()
            idx = epoch_batches(len(train), lengths, cfg.batch_size, cfg.seed, epoch)[b]
            last = _dpo_step(step, [train[i] for i in idx], ref_train[idx], cfg, forward, params, optimizer,
                             scheduler, d)
            last["train/epoch"] = epoch + (b + 1) / per_epoch
            dt = time.perf_counter() - t0
            train_seconds += dt
            pairs_seen += len(idx)
            last["time/step_s"] = dt
            sink(events.Metrics(step=step, values=last, total_steps=total))
            saver.after(step)
    except events.CancelledRun:
        saver.cancelled(step)
        raise

    final_eval = _evaluate(engine, eval_set, ref_eval, cfg, d)
    if final_eval:
        sink(events.Metrics(step=step, values=final_eval, total_steps=total))
    # The trained policy in the standard PEFT layout (output_dir/policy), loadable by other tools.
    if d.is_main:
        model.save_pretrained(str(output_dir), selected_adapters=[POLICY])
    final: dict[str, Any] = {
        **last, **final_eval,
        "steps": step, "last_checkpoint": saver.last,
        "train/pairs": len(train), "eval/pairs": len(eval_set),
        "train/pairs_per_s": pairs_seen / train_seconds if train_seconds else None,
        "time/reference_s": ref_seconds,
        "seconds": round(time.monotonic() - started, 2),
        "left_out": {k: v for k, v in reasons.items() if v},
        "output_dir": str(output_dir),
    }
    sink(events.Finished(metrics=final, output_dir=str(output_dir)))
    return final


def _write_manifest(output_dir: Path, base: LoadedModel, cfg: DPOConfig, n_train: int, n_eval: int) -> None:
    from tuilab.modeling.export import portable_base

    # `models/<name>` when the base lives in the lab, so a moved lab still finds it (`resolve_base`).
    data = {"format": "tuilab-dpo/1", "base_model": portable_base(base.path, output_dir), "adapter": POLICY,
            "train_pairs": n_train, "eval_pairs": n_eval, "config": to_dict(cfg)}
    (output_dir / MANIFEST).write_text(json.dumps(data, indent=2) + "\n")


def _headline(m: dict[str, float]) -> dict[str, float]:
    keys = ("loss", "rewards/accuracies", "rewards/margins")
    return {k: m[k] for k in keys if k in m}


def _pair_tensors(batch: Sequence[EncodedPair], device) -> dict[str, torch.Tensor]:
    return {
        "labels": torch.tensor([p.label for p in batch], device=device),
        "margins": torch.tensor([p.margin for p in batch], device=device),
        "chosen_lengths": torch.tensor([p.chosen_tokens + 1 for p in batch], device=device),  # + EOS
        "rejected_lengths": torch.tensor([p.rejected_tokens + 1 for p in batch], device=device),
    }


# ======================================================================== one step
def _dpo_step(step: int, batch: list[EncodedPair], ref: torch.Tensor, cfg: DPOConfig, forward: Callable,
              params: list[torch.nn.Parameter], optimizer, scheduler, d: Dist = SINGLE) -> dict[str, float]:
    n = len(batch)
    if d.enabled:  # this rank's share of the global batch
        mine, weight = d.split(range(n))
        batch, ref = [batch[i] for i in mine], ref[mine]
    policy_c, policy_r = forward(batch)
    out = dpo_loss(policy_c, policy_r, ref[:, 0], ref[:, 1], loss_type=cfg.loss, beta=cfg.beta,
                   label_smoothing=cfg.label_smoothing, alpha=cfg.rdpo_alpha, **_pair_tensors(batch, ref.device))
    if d.enabled:  # DDP averages over ranks: weight by this rank's share of the batch
        (out.loss * (weight * len(batch) / n * d.size)).backward()
    else:
        out.loss.backward()
    gnorm = d.clip_grad_norm_(params, cfg.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    lr = scheduler.get_last_lr()[0]
    scheduler.step()
    rc, rr = out.chosen_rewards, out.rejected_rewards
    strict = torch.tensor([p.label >= 1.0 for p in batch], dtype=torch.float32, device=rc.device)
    if d.enabled:
        return _global_step_metrics(d, step, out.loss, rc, rr, strict, policy_c, policy_r, weight, n, gnorm, lr)
    loss = float(out.loss.detach())
    if not math.isfinite(loss):
        raise events.TrainingDiverged(step, f"loss became {loss} (learning rate {lr:.3g}); lower learning_rate or beta")
    # Metric names as TRL's DPOTrainer logs them.
    return {
        "loss": loss,
        "rewards/chosen": float(rc.mean()),
        "rewards/rejected": float(rr.mean()),
        "rewards/margins": float((rc - rr).mean()),
        "rewards/accuracies": float(((rc > rr).float() * strict).sum() / strict.sum().clamp(min=1)),
        "logps/chosen": float(policy_c.detach().mean()),
        "logps/rejected": float(policy_r.detach().mean()),
        "train/grad_norm": float(gnorm),
        "lr": float(lr),
    }


def _global_step_metrics(d: Dist, step: int, loss: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
                         strict: torch.Tensor, policy_c: torch.Tensor, policy_r: torch.Tensor, weight: float, n: int,
                         gnorm: torch.Tensor, lr: float) -> dict[str, float]:
    """`_dpo_step`'s metrics over the whole batch, from every rank's sums (one all-reduce)."""
    sums = d.sum(torch.stack([
        loss.detach() * len(rc), rc.sum(), rr.sum(), ((rc > rr).float() * strict).sum(), strict.sum(),
        policy_c.detach().sum(), policy_r.detach().sum(),
    ]).float() * weight).tolist()
    total_loss = sums[0] / n
    if not math.isfinite(total_loss):
        raise events.TrainingDiverged(step, f"loss became {total_loss} (learning rate {lr:.3g}); lower learning_rate or beta")
    return {
        "loss": total_loss,
        "rewards/chosen": sums[1] / n,
        "rewards/rejected": sums[2] / n,
        "rewards/margins": (sums[1] - sums[2]) / n,
        "rewards/accuracies": sums[3] / max(sums[4], 1.0),
        "logps/chosen": sums[5] / n,
        "logps/rejected": sums[6] / n,
        "train/grad_norm": float(gnorm),
        "lr": float(lr),
    }


def _evaluate(engine: _Engine, eval_set: Sequence[EncodedPair], ref: torch.Tensor, cfg: DPOConfig,
              d: Dist = SINGLE) -> dict[str, float]:
    """Held-out pairs scored by the policy's implicit reward: accuracy, margin, length correlation, loss.

    Across processes each rank scores a share of the pairs; the log-probs are gathered, on every rank.
    """
    if not eval_set:
        return {}
    if d.enabled:
        pc, pr = _gathered_logps(engine, eval_set, cfg, d, ref.device)
    else:
        chosen, rejected = [], []
        with torch.no_grad():
            for s in range(0, len(eval_set), cfg.batch_size * 2):
                c, r = engine.logps(eval_set[s : s + cfg.batch_size * 2])
                chosen.append(c.float())
                rejected.append(r.float())
        pc, pr = torch.cat(chosen), torch.cat(rejected)
    out = dpo_loss(pc, pr, ref[:, 0], ref[:, 1], loss_type=cfg.loss, beta=cfg.beta,
                   label_smoothing=cfg.label_smoothing, alpha=cfg.rdpo_alpha,
                   **_pair_tensors(eval_set, pc.device))
    rc, rr = out.chosen_rewards.cpu(), out.rejected_rewards.cpu()
    # Accuracy, margin, ECE and the reward/length correlation, computed as for a reward model.
    values = eval_from_rewards(rc.tolist(), rr.tolist(), eval_set).as_metrics()
    values.update({
        "eval/loss": float(out.loss),
        "eval/rewards/chosen": float(rc.mean()),
        "eval/rewards/rejected": float(rr.mean()),
        "eval/rewards/margins": float((rc - rr).mean()),
        "eval/rewards/accuracies": values.get("eval/accuracy", float("nan")),
        "eval/logps/chosen": float(pc.mean()),
        "eval/logps/rejected": float(pr.mean()),
    })
    return {k: v for k, v in values.items() if v is not None and math.isfinite(v)}


def _gathered_logps(engine: _Engine, pairs: Sequence[EncodedPair], cfg: DPOConfig, d: Dist,
                    device) -> tuple[torch.Tensor, torch.Tensor]:
    mine = list(d.span(len(pairs)))
    rows = []
    with torch.no_grad():
        for s in range(0, len(mine), cfg.batch_size * 2):
            idx = mine[s : s + cfg.batch_size * 2]
            c, r = engine.logps([pairs[i] for i in idx])
            rows += zip(idx, c.float().tolist(), r.float().tolist(), strict=True)
    rows = sorted(d.gather_objects(rows))
    return (torch.tensor([c for _, c, _ in rows], device=device), torch.tensor([r for _, _, r in rows], device=device))


# ======================================================================== held-out answers
def _sample(model, tokenizer, ids, cfg: DPOConfig, generator):
    sb = sample(model, tokenizer, ids, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                top_p=1.0, top_k=0, generator=generator)
    tokens = [row[: n - 1] if fin else row[:n]
              for row, n, fin in zip(sb.response_ids.tolist(), sb.lengths, sb.finished, strict=True)]
    return sb, tokens, tokenizer.batch_decode(tokens, skip_special_tokens=True)


def _sequence_logps(engine: _Engine, sb) -> torch.Tensor:
    """[B] summed log-probs of the sampled answers (EOS included) under the active model."""
    ids = torch.cat([sb.query_ids, sb.response_ids], 1)
    am = torch.cat([sb.query_mask, sb.response_mask], 1)
    pos = (am.cumsum(-1) - 1).clamp_min(0)  # left-padded prompts need explicit positions
    hidden = _hidden(engine.body(input_ids=ids, attention_mask=am, position_ids=pos, use_cache=False))
    q = sb.query_ids.shape[1]
    rows, cols, toks, owner = [], [], [], []
    for i, n in enumerate(sb.lengths):
        rows += [i] * n
        cols += list(range(q - 1, q - 1 + n))
        toks += sb.response_ids[i, :n].tolist()
        owner += [i] * n
    return _answer_logps(hidden, engine.lm_head, rows, cols, toks, owner, len(sb.lengths))


def _answer_held_out(step, cfg: DPOConfig, model, tokenizer, engine: _Engine, prompts: list[Prompt], ids,
                     gens, monitor: HackingMonitor, gold: GoldFn | None, sink: events.Sink,
                     d: Dist = SINGLE) -> dict[str, float]:
    """The policy (and the reference) answer the held-out prompts; samples + flags + sample metrics.

    Across processes each rank answers a share of the prompts and the answers are gathered.
    """
    from tuilab.modeling.lora import adapters_disabled

    if not prompts:
        return {}
    t0 = time.perf_counter()
    everyone = prompts
    if d.enabled:
        mine = d.span(len(prompts))
        prompts, ids = [prompts[i] for i in mine], [ids[i] for i in mine]
    tokens, texts, ref_texts, eos, kl, gold_scores = [], [], [], [], torch.zeros(0), None
    if prompts:
        with torch.no_grad():
            sb, tokens, texts = _sample(model, tokenizer, ids, cfg, gens["sample"])
            logp = _sequence_logps(engine, sb)
            with adapters_disabled(model):
                ref_logp = _sequence_logps(engine, sb)
                _, _, ref_texts = _sample(model, tokenizer, ids, cfg, gens["reference"])
        kl = (logp - ref_logp).float().cpu()  # k1 per answer, as PPO's objective/kl
        eos = [bool(f) for f in sb.finished]
        gold_scores = [float(g) for g in gold(prompts, texts)] if gold is not None else None
    if d.enabled:  # every rank's answers, in the prompts' order
        rows = d.gather_objects(list(zip(tokens, texts, ref_texts, eos, kl.tolist(),
                                         gold_scores or [None] * len(tokens), strict=True)))
        tokens, texts, ref_texts, eos, kls, golds = (list(c) for c in zip(*rows, strict=True))
        kl, prompts = torch.tensor(kls), everyone
        gold_scores = golds if gold is not None else None
    implicit = (cfg.beta * kl).tolist()  # the implicit reward of an on-policy answer is β·(its log-ratio)
    lengths = [len(t) for t in tokens]
    report = monitor.observe(step, scores=implicit, lengths=lengths, eos=eos, tokens=tokens, gold=gold_scores,
                             kls=kl.tolist())
    rows = [SampleRow(prompt=p.text, response=texts[i], score=implicit[i], prompt_id=p.id,
                      ref_response=ref_texts[i], gold=gold_scores[i] if gold_scores is not None else None,
                      kl=float(kl[i]), length=lengths[i], eos=eos[i], flags=report.flags[i])
            for i, p in enumerate(prompts)]
    if d.is_main:
        sink(events.Samples(step=step, rows=rows))
    for code, message in report.warnings:
        sink(events.RunWarning(step=step, code=code, message=message))
    values = {
        "objective/scores": float(np.mean(implicit)),
        "objective/kl": float(kl.mean()),
        "response/length_mean": float(np.mean(lengths)),
        "response/length_max": float(max(lengths)),
        "response/eos_rate": float(np.mean(eos)),
        "time/sample_s": time.perf_counter() - t0,
        **report.metrics,
    }
    corr = pearson(lengths, implicit)
    if corr is not None:
        values["response/reward_length_corr"] = float(corr)
    if gold_scores is not None:
        values["objective/gold"] = float(np.mean(gold_scores))
    return {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
