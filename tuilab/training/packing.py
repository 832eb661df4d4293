"""Preference pairs as packed rows: the shared prompt runs once per pair, the batch prefix once per batch.

Each pair is one row (prompt, chosen answer, rejected answer) whose attention
mask keeps the two answers apart and whose position ids restart the rejected
answer where the prompt ends, so every token computes what it would in its own
sequence while the prompt runs once, not twice. The prefix every row of a
batch starts with (the chat template's system prompt, at least) runs once for
the batch and every row attends to its cached keys/values, gradients included.
Reward training uses it through `packed_rewards`; any pairwise loss that needs
per-token outputs can call `packed_forward` on a causal LM.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tuilab.modeling.chat import as_messages, prompt_ids
from tuilab.modeling.heads import ScalarHead
from tuilab.modeling.trunk import MIN_SHARED_START, as_mask, prefix_forward, shared_start
from tuilab.records import PreferencePair
from tuilab.training.metrics import EncodedPair


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


MIN_BATCH_PREFIX = MIN_SHARED_START  # tokens every row must share before running them once pays off


def batch_prefix(rows: Sequence[EncodedPair]) -> int:
    """Tokens that every sequence in the batch starts with (the chat template's system prompt, at least).

    Capped so each pair keeps its own shared region intact: P ≤ min(shared).
    """
    if len(rows) < 2:
        return 0
    n = min(shared_start([r.chosen for r in rows], minimum=1), min(r.shared for r in rows))
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
    mask = as_mask(mask, additive)
    prefix_ids = torch.as_tensor(rows[0].chosen[:prefix], dtype=torch.long)[None].to(device) if prefix else None
    return PackedPairs(
        ids.to(device), pos.to(device), mask.to(device), chosen_at.to(device), rejected_at.to(device), prefix_ids
    )


def packed_forward(model: torch.nn.Module, packed: PackedPairs) -> Any:
    """One forward over packed pairs (a trunk or a causal LM); the batch prefix, if any, runs once."""
    return prefix_forward(model, packed.input_ids, packed.mask, packed.position_ids, packed.prefix_ids)


def packed_rewards(body: torch.nn.Module, head: ScalarHead, packed: PackedPairs) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen rewards [B], rejected rewards [B]) from one forward of the trunk over packed pairs."""
    n = packed.input_ids.shape[0]
    out = packed_forward(body, packed)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    rows = torch.arange(n, device=hidden.device)
    picked = torch.cat([hidden[rows, packed.chosen_at], hidden[rows, packed.rejected_at]])
    rewards = head(picked)
    return rewards[:n], rewards[n:]


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


def sliding_window(model: Any) -> int | None:
    """The attention window of a sliding-window model (Mistral, Qwen2 with it on, Gemma 2/3), else None.

    A packed row is longer than either of its sequences and its mask bypasses
    the model's window, so such a model runs packed pairs wrongly once a pair
    is longer than the window.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = inner.config.get_text_config() if hasattr(inner.config, "get_text_config") else inner.config
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "use_sliding_window", True) is False:
        return None
    return int(window)
