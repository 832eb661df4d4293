"""Loading a base model and its tokenizer: fp32 on CPU, bf16/fp16 on CUDA, nf4 4-bit on request.

Every later piece (generation, reward models, PPO) starts from `load_model`, so the
tokenizer trap (SmolLM2's pad == EOS) is fixed here once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# bitsandbytes, imported by peft and transformers for every model (4-bit or not), logs on CPUs
# with AVX-512 BF16 that it could not fetch an optional kernel from a model hub. The fallback it
# then uses is its own and correct (tests/modeling/test_lora.py checks 4-bit gradients), so the
# line only alarms; it would appear at every `train` command.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


@dataclass
class LoadedModel:
    model: Any  # transformers PreTrainedModel (possibly a PeftModel later)
    tokenizer: Any
    device: Any  # torch.device
    name: str
    path: Path
    four_bit: bool = False


def pick_device(device: str | None = None):
    import torch

    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device, dtype: str | None = None):
    """fp32 on CPU; bf16 on CUDA where supported, else fp16.

    On a CPU, bf16 matmuls are slow without AVX512-BF16 or AMX. With them (the machine the length
    scenario was measured on) a PPO step of the scenario took 15.7 s in bf16 against 17.7 s
    (2026-12-01, the loop before packed forwards), but PPO reads its old log-probs from the
    sampler's hidden states, and in bf16 they no longer match the update's forward pass: the first
    minibatch's log-ratio, 0 in exact arithmetic, was off by up to 0.21 (2e-5 in fp32). `dtype`
    overrides this.
    """
    import torch

    if dtype:
        names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                 "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
        if dtype not in names:
            raise ValueError(f"unknown dtype {dtype!r}: one of {', '.join(names)}")
        return names[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding for generation; a pad token distinct from EOS.

    SmolLM2 uses `<|im_end|>` as both EOS and pad, so anything that masks pad
    positions also hides every end-of-turn token and keeps EOS out of the loss.
    Use `<|endoftext|>` (or any other special token) as pad instead.
    """
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        vocab = tokenizer.get_vocab()
        for candidate in ("<|endoftext|>", "<pad>", "<unk>"):
            if candidate in vocab and vocab[candidate] != tokenizer.eos_token_id:
                tokenizer.pad_token = candidate
                break
        else:
            tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return tokenizer


def load_model(
    path: str | Path,
    *,
    four_bit: bool = False,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a Hugging Face model folder (see `modeling.registry.resolve_model` for names)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    dev = pick_device(device)
    torch_dtype = pick_dtype(dev, dtype)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code))
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
    if four_bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            # Compute in the device's training dtype; fp32 on CPU.
            bnb_4bit_compute_dtype=torch_dtype,
        )
        # Under torchrun / accelerate launch each rank's current device is already set: a plain
        # "cuda" must mean that one, not GPU 0 for every rank.
        index = dev.index if dev.index is not None else (torch.cuda.current_device() if dev.type == "cuda" else 0)
        kwargs["device_map"] = {"": index} if dev.type == "cuda" else {"": "cpu"}
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if not four_bit:
        model.to(dev)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    # Dropout off everywhere (N+ implementation details): RLHF log-probs must be deterministic.
    model.eval()
    if four_bit:
        # bitsandbytes would repack CPU 4-bit weights at the first eval forward for a kernel
        # without autograd: later training silently gets wrong gradients (see lora.py).
        from tuilab.modeling.lora import keep_4bit_differentiable

        keep_4bit_differentiable(model)
    return LoadedModel(model=model, tokenizer=tokenizer, device=dev, name=path.name, path=path, four_bit=four_bit)
