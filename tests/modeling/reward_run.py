"""A reward run folder on the tiny model whose members score differently: trained-looking adapters and heads."""

from __future__ import annotations

from pathlib import Path


def save_reward_run(run_dir: Path, base_dir: Path, members: tuple[str, ...] = ("reward-0",), *,
                    norm: dict[str, dict[str, float]] | None = None, head_bias: float = 0.0) -> Path:
    """Write `run_dir` as reward training would: each member's LoRA adapter (B ≠ 0) and head, the manifest."""
    import torch

    from tuilab.config import LoraSettings
    from tuilab.modeling.heads import ScalarHead
    from tuilab.modeling.loading import load_model
    from tuilab.modeling.lora import add_adapter
    from tuilab.modeling.reward_model import save_member, write_manifest

    base = load_model(base_dir)
    hidden = base.model.config.hidden_size
    peft = base.model
    for k, member in enumerate(members):
        peft = add_adapter(peft, member, LoraSettings(r=4, alpha=8))
        gen = torch.Generator().manual_seed(k + 1)
        with torch.no_grad():
            for name, p in peft.named_parameters():
                if f"lora_B.{member}." in name:
                    p.normal_(0.0, 0.3, generator=gen)
        head = ScalarHead(hidden, generator=torch.Generator().manual_seed(10 + k))
        with torch.no_grad():
            head.linear.bias.fill_(head_bias)
        save_member(peft, head, run_dir, member)
    write_manifest(run_dir, base_model=base_dir, hidden_size=hidden, members=list(members), norm=norm)
    return Path(run_dir)
