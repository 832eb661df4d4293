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


def last_token_hidden(body: torch.nn.Module, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Hidden state [B, d] at each row's last real token (right-padded batch, no mask)."""
    out = body(input_ids=input_ids, use_cache=False)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return hidden[rows, lengths.to(hidden.device) - 1]


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indexes grouped into batches of similar length (longest first): little padding."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
