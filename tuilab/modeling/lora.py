"""LoRA adapters on one shared base: config from `LoraSettings`, named adapters, reference = adapters off.

One base model in memory carries every adapter (policy, reward-k, value); the
reference policy is the same model with adapters disabled, so no second copy
is ever loaded (DESIGN.md, "One base model, many adapters").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tuilab.config import LoraSettings


def target_modules(spec: str) -> str | list[str]:
    """`"all-linear"` stays peft's shorthand (every linear layer but the output head); else a list."""
    spec = (spec or "").strip()
    if spec in ("", "all-linear"):
        return "all-linear"
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise ValueError(f"target_modules {spec!r} names no modules")
    return names


def lora_config(settings: LoraSettings, task_type: str | None = "CAUSAL_LM", model: Any = None):
    """A `peft.LoraConfig` from the lab's settings (`task_type=None` for adapters under a custom head).

    `settings.layers` > 0 needs the `model`: peft takes `layers_to_transform`
    only with named modules, so "all-linear" becomes the linear layers it names.
    """
    from peft import LoraConfig

    if settings.r < 1:
        raise ValueError(f"LoRA rank r must be >= 1, got {settings.r}")
    if settings.layers < 0:
        raise ValueError(f"LoRA layers must be >= 0 (0: every block), got {settings.layers}")
    modules = target_modules(settings.target_modules)
    extra: dict[str, Any] = {}
    if settings.layers:
        if model is None:
            raise ValueError("LoRA layers > 0 needs the model, to count its blocks")
        total = block_count(model)
        if settings.layers > total:
            raise ValueError(f"LoRA layers is {settings.layers}, but this model has {total} blocks")
        if modules == "all-linear":
            modules = block_linear_names(model)
        extra["layers_to_transform"] = list(range(total - settings.layers, total))
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=modules,
        bias="none",
        task_type=task_type,
        **extra,
    )


def block_count(model: Any) -> int:
    config = getattr(model, "config", None)
    count = getattr(config, "num_hidden_layers", None)
    if not count:
        raise ValueError("cannot tell how many transformer blocks this model has (no config.num_hidden_layers)")
    return int(count)


def block_linear_names(model: Any) -> list[str]:
    """The short names of the linear layers inside the transformer blocks (peft's "all-linear" there)."""
    import torch

    names: set[str] = set()
    for name, module in model.named_modules():
        parts = name.split(".")
        in_block = any(part.isdigit() for part in parts)  # blocks are numbered: model.layers.7.mlp.up_proj
        # bitsandbytes' Linear4bit subclasses torch.nn.Linear, so 4-bit bases are covered too
        if in_block and isinstance(module, torch.nn.Linear) and "lora_" not in name:
            names.add(parts[-1])
    if not names:
        raise ValueError("found no linear layers inside numbered transformer blocks")
    return sorted(names)


def is_four_bit(model: Any) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(base, "is_loaded_in_4bit", False))


def keep_4bit_differentiable(model: Any) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for CPU inference; undo packing already done.

    bitsandbytes 0.50 repacks a CPU `Linear4bit` the first time it runs in eval
    mode without grad (any generation does that), and from then on every
    forward, training included, goes through `gemv_4bit`, which has no autograd:
    gradients into earlier layers go silently wrong (measured: LoRA grads in
    layer 0 differ by more than their own norm). Returns the number of modules
    touched.
    """
    try:
        from bitsandbytes.nn import Linear4bit
        from bitsandbytes.nn.modules import _convert_weight_packed_for_cpu_inverse
    except ImportError:
        return 0
    count = 0
    for module in model.modules():
        if not isinstance(module, Linear4bit):
            continue
        module.support_avx512bf16_for_cpu = False
        state = getattr(module.weight, "quant_state", None)
        if state is not None and getattr(state, "packing_format_for_cpu", False):
            module.weight.data, module.weight.quant_state = _convert_weight_packed_for_cpu_inverse(
                module.weight.data, state
            )
        count += 1
    return count


def prepare_for_kbit(model: Any, *, gradient_checkpointing: bool = False) -> Any:
    """peft's `prepare_model_for_kbit_training`, once per model, checkpointing off by default.

    Gradient checkpointing recomputes every layer's activations in the backward
    pass (less memory, more time) and LoRA on a small model fits without it;
    pass True on a tight GPU. Also keeps the 4-bit
    layers differentiable on CPU (see `keep_4bit_differentiable`).
    """
    keep_4bit_differentiable(model)
    if getattr(model, "_tuilab_kbit_prepared", False):
        return model
    from peft import prepare_model_for_kbit_training

    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    model._tuilab_kbit_prepared = True
    return model


def add_adapter(
    model: Any,
    name: str,
    settings: LoraSettings,
    *,
    task_type: str | None = "CAUSAL_LM",
    gradient_checkpointing: bool = False,
) -> Any:
    """Add a LoRA adapter called `name`; returns the PeftModel (wrapping `model` on first use).

    The first adapter becomes active (peft's rule); a later one is added beside
    the others without changing which is active: pick with `use_adapter`.
    A 4-bit base is prepared for k-bit training before the first adapter.
    """
    from peft import PeftModel, get_peft_model

    config = lora_config(settings, task_type=task_type, model=model)
    if isinstance(model, PeftModel):
        if name in model.peft_config:
            raise ValueError(f"adapter {name!r} already exists on this model")
        model.add_adapter(name, config)
        if is_four_bit(model):
            keep_4bit_differentiable(model)
        return model
    if is_four_bit(model):
        model = prepare_for_kbit(model, gradient_checkpointing=gradient_checkpointing)
    return get_peft_model(model, config, adapter_name=name)


def adapter_names(model: Any) -> list[str]:
    return list(getattr(model, "peft_config", {}) or {})


@contextmanager
def use_adapter(model: Any, name: str) -> Iterator[Any]:
    """Make `name` the active adapter inside the block, restoring the previous one after."""
    previous = model.active_adapter
    if name not in model.peft_config:
        raise KeyError(f"no adapter {name!r}; this model has {adapter_names(model)}")
    model.set_adapter(name)
    try:
        yield model
    finally:
        model.set_adapter(previous)


@contextmanager
def adapters_disabled(model: Any) -> Iterator[Any]:
    """The base model without any adapter: the reference policy. A plain model passes through."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        with model.disable_adapter():
            yield model
    else:
        yield model


@contextmanager
def adapter_active(peft_model: Any, name: str) -> Iterator[None]:
    """Run one adapter for inference, then restore the previous adapter and every grad flag.

    `PeftModel.set_adapter` also flips `requires_grad` on all adapters (it would
    freeze PPO's policy adapter); this puts the flags back exactly as they were.
    Dropout inside that adapter is off while it scores, and adapters switched
    off by the caller (`with model.disable_adapter():`) are on for the scoring.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    previous = peft_model.active_adapter
    if isinstance(previous, list):
        previous = previous[0]
    flags = [(p, p.requires_grad) for n, p in peft_model.named_parameters() if "lora_" in n]
    dropouts = [m for n, m in peft_model.named_modules() if n.endswith(f"lora_dropout.{name}") and m.training]
    disabled = any(m.disable_adapters for m in peft_model.modules() if isinstance(m, BaseTunerLayer))
    try:
        if disabled:
            peft_model.base_model.enable_adapter_layers()
        if previous != name:
            peft_model.set_adapter(name, inference_mode=True)
        for m in dropouts:
            m.eval()
        yield
    finally:
        for m in dropouts:
            m.train()
        if previous != name:
            peft_model.set_adapter(previous)
        if disabled:
            peft_model.base_model.disable_adapter_layers()
        for p, flag in flags:
            p.requires_grad_(flag)
