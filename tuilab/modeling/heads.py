"""Scalar heads: one linear layer from the last hidden state to a reward.

Kept beside (not inside) the PEFT adapter so the adapter folder stays in the
standard layout other tools load, and so one base model can carry several
reward adapters (an ensemble), each with its own head.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

HEAD_FILE = "head.safetensors"


class ScalarHead(nn.Module):
    """hidden [.., d] → reward [..]; always computed in fp32 whatever the base dtype."""

    def __init__(self, hidden_size: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(hidden_size, 1, dtype=torch.float32)
        # N+ implementation details: N(0, 1/sqrt(d+1)) weights, zero bias, so the
        # initial rewards have unit-ish scale whatever the hidden size.
        with torch.no_grad():
            self.linear.weight.normal_(0.0, 1.0 / math.sqrt(hidden_size + 1), generator=generator)
            self.linear.bias.zero_()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden.float()).squeeze(-1)

    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / HEAD_FILE
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.linear.state_dict().items()}
        save_file(state, str(path))
        return path

    @classmethod
    def load(cls, folder: str | Path, *, device: torch.device | str | None = None) -> ScalarHead:
        from safetensors.torch import load_file

        path = Path(folder) / HEAD_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: no reward head here (expected beside the adapter files)")
        state = load_file(str(path))
        head = cls(int(state["weight"].shape[1]))
        head.linear.load_state_dict(state)
        if device is not None:
            head.to(device)
        return head.eval()
