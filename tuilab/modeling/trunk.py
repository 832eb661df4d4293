"""The transformer trunk without its LM head: hidden states for scalar heads (rewards, values).

A reward or a value is a scalar read from a hidden state; the vocabulary
projection is never needed. PPO's value head and every reward model run the
trunk through these helpers, so both read hidden states the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def backbone_of(model: Any) -> torch.nn.Module:
    """The transformer body (no LM head) of a causal LM or a PeftModel around one.

    LoRA layers are injected in place, so calling the body runs the active adapter
    while skipping the vocabulary projection a scalar head never needs.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    prefix = getattr(inner, "base_model_prefix", "")
    body = getattr(inner, prefix, None) if prefix else None
    return body if isinstance(body, torch.nn.Module) else inner


def hidden_size_of(model: Any) -> int:
    """Width of the trunk's hidden states (what a scalar head takes)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = inner.config
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    return int(config.hidden_size)


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence: (input_ids [B, T], lengths [B]).

    Right padding keeps each sequence's positions identical to the unpadded
    one, and a causal model never looks forward, so no attention mask is needed.
    """
    longest = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), longest), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    return ids.to(device), lengths.to(device)


def last_token_hidden(body: torch.nn.Module, input_ids: torch.Tensor, lengths: torch.Tensor,
                      prefix: int = 0) -> torch.Tensor:
    """Hidden state [B, d] at each row's last real token (right-padded batch, no mask).

    With `prefix` (tokens every row starts with, see `shared_start`) those run
    once, as one row, and every row continues from their keys and values: on
    the chat template's system prompt that is a third of a short exchange.
    """
    if prefix:
        pos = torch.arange(prefix, input_ids.shape[1], device=input_ids.device)[None].expand(len(input_ids), -1)
        out = prefix_forward(body, input_ids[:, prefix:], None, pos, input_ids[:1, :prefix])
    else:
        out = body(input_ids=input_ids, use_cache=False)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return hidden[rows, lengths.to(hidden.device) - 1 - prefix]


MIN_SHARED_START = 8  # tokens every row must share before running them once for the batch pays off


def shared_start(seqs: Sequence[Sequence[int]], minimum: int = MIN_SHARED_START) -> int:
    """Tokens every sequence starts with, each keeping its last token; 0 when fewer than `minimum`."""
    if len(seqs) < 2:
        return 0
    first, limit = seqs[0], min(len(s) for s in seqs) - 1
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return n if n >= minimum else 0


def packed_mask_dtype(body: torch.nn.Module) -> torch.dtype | None:
    """How this trunk takes a hand-built 4-D attention mask: None = as booleans (sdpa), else additive in
    this float dtype (eager attention adds its mask to the scores)."""
    if getattr(getattr(body, "config", None), "_attn_implementation", "sdpa") != "eager":
        return None
    dtype = next(body.parameters()).dtype
    return dtype if dtype.is_floating_point else torch.float32


def as_mask(allowed: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """A boolean "may attend" mask as `packed_mask_dtype` says the trunk wants it."""
    if dtype is None:
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(~allowed, torch.finfo(dtype).min)


def cache_kwarg(model: torch.nn.Module) -> str:
    """transformers renamed `past_key_values` to `cache` (5.2x); use whichever this model takes."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def prefix_forward(model: torch.nn.Module, input_ids: torch.Tensor, mask: torch.Tensor | None,
                   position_ids: torch.Tensor, prefix_ids: torch.Tensor | None) -> Any:
    """A forward over rows that all continue `prefix_ids` [1, P]: the prefix runs once, as one row.

    `mask` is None (causal) or [B, 1, T, P + T] (the prefix's columns first);
    the position ids continue from P. The prefix's keys/values, autograd
    history included, serve every row, so gradients through it are exact.
    """
    extra: dict[str, Any] = {"use_cache": False}
    if prefix_ids is not None:
        pre = model(input_ids=prefix_ids, use_cache=True)
        cache = getattr(pre, "cache", None) or getattr(pre, "past_key_values", None)
        cache.batch_repeat_interleave(input_ids.shape[0])
        extra = {"use_cache": True, cache_kwarg(model): cache}
    if mask is not None:
        extra["attention_mask"] = mask
    return model(input_ids=input_ids, position_ids=position_ids, **extra)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indexes grouped into batches of similar length (longest first): little padding."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
