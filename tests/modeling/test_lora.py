"""LoRA helpers: config from settings, named adapters on one base, reference = adapters off, 4-bit."""

from __future__ import annotations

import pytest
import torch

from tuilab.config import LoraSettings
from tuilab.modeling.chat import prompt_ids
from tuilab.modeling.lora import (
    adapter_names,
    adapters_disabled,
    add_adapter,
    is_four_bit,
    lora_config,
    target_modules,
    use_adapter,
)


def _input(tok):
    return torch.tensor([prompt_ids(tok, [{"role": "user", "content": "hello there"}])])


def _randomize_lora(model, name, seed=0):
    """LoRA B starts at zero (adapter = identity); give it weights so adapters change outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "lora_" in pname and f".{name}." in pname:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def test_lora_config_from_settings():
    cfg = lora_config(LoraSettings(r=4, alpha=8, dropout=0.1))
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout) == (4, 8, 0.1)
    assert cfg.target_modules == "all-linear"
    assert cfg.task_type == "CAUSAL_LM"
    named = lora_config(LoraSettings(target_modules="q_proj, v_proj"), task_type=None)
    assert set(named.target_modules) == {"q_proj", "v_proj"} and named.task_type is None


def test_target_modules_parsing():
    assert target_modules("all-linear") == "all-linear"
    assert target_modules("") == "all-linear"
    assert target_modules("q_proj,k_proj") == ["q_proj", "k_proj"]
    with pytest.raises(ValueError):
        target_modules(" , ")
    with pytest.raises(ValueError):
        lora_config(LoraSettings(r=0))


def test_all_linear_targets_every_projection_but_not_the_head(tiny_model_dir):
    from tuilab.modeling.loading import load_model

    model = add_adapter(load_model(tiny_model_dir).model, "policy", LoraSettings(r=2))
    wrapped = {n.split(".")[-1] for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_top_layers_only_adapts_the_top_blocks_and_stops_backpropagation_there(tiny_model_dir):
    from tuilab.modeling.loading import load_model

    model = add_adapter(load_model(tiny_model_dir).model, "policy", LoraSettings(r=2, layers=1))
    wrapped = {n for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert {n.split(".")[-1] for n in wrapped} == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert all(".layers.1." in n for n in wrapped)  # the tiny model has blocks 0 and 1
    _randomize_lora(model, "policy")
    model.train()
    seen: list[str] = []
    block0 = model.get_base_model().model.layers[0]
    block0.register_full_backward_hook(lambda *_: seen.append("block 0"))
    x = torch.randint(0, 50, (2, 7))
    model(input_ids=x).logits.pow(2).mean().backward()
    assert seen == []  # nothing below the adapted block needs a gradient
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)


def test_top_layers_are_checked_against_the_model(tiny_model_dir):
    from tuilab.modeling.loading import load_model

    base = load_model(tiny_model_dir).model
    with pytest.raises(ValueError, match="has 2 blocks"):
        add_adapter(base, "policy", LoraSettings(layers=3))
    with pytest.raises(ValueError, match=">= 0"):
        lora_config(LoraSettings(layers=-1), model=base)
    named = lora_config(LoraSettings(layers=2, target_modules="q_proj"), model=base)
    assert named.target_modules == {"q_proj"} and list(named.layers_to_transform) == [0, 1]


def test_a_top_layers_adapter_saves_and_loads_as_it_was(tiny_model_dir, tmp_path):
    from peft import PeftModel

    from tuilab.modeling.loading import load_model

    model = add_adapter(load_model(tiny_model_dir).model, "policy", LoraSettings(r=2, layers=1))
    _randomize_lora(model, "policy", seed=3)
    x = torch.randint(0, 50, (1, 6))
    with torch.no_grad():
        before = model(input_ids=x).logits
    model.save_pretrained(tmp_path / "adapter", selected_adapters=["policy"])
    loaded = PeftModel.from_pretrained(load_model(tiny_model_dir).model, tmp_path / "adapter" / "policy")
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=x).logits, before, atol=1e-6)


def test_adapters_on_one_base_and_reference_policy(tiny_model_dir):
    from tuilab.modeling.loading import load_model

    loaded = load_model(tiny_model_dir)
    x = _input(loaded.tokenizer)
    with torch.no_grad():
        base_logits = loaded.model(x).logits.clone()
    model = add_adapter(loaded.model, "policy", LoraSettings(r=4))
    assert model.active_adapter == "policy"
    same = add_adapter(model, "reward-0", LoraSettings(r=2), task_type=None)
    assert same is model
    assert adapter_names(model) == ["policy", "reward-0"]
    assert model.active_adapter == "policy"  # adding does not switch
    with pytest.raises(ValueError, match="already exists"):
        add_adapter(model, "policy", LoraSettings())
    _randomize_lora(model, "policy", 1)
    _randomize_lora(model, "reward-0", 2)
    with torch.no_grad():
        policy = model(input_ids=x).logits.clone()
        with use_adapter(model, "reward-0"):
            reward = model(input_ids=x).logits.clone()
        assert model.active_adapter == "policy"  # restored
        with adapters_disabled(model):
            reference = model(input_ids=x).logits.clone()
        again = model(input_ids=x).logits
    assert torch.allclose(reference, base_logits, atol=1e-6)
    assert not torch.allclose(policy, base_logits, atol=1e-3)
    assert not torch.allclose(reward, policy, atol=1e-3)
    assert torch.allclose(again, policy)
    with pytest.raises(KeyError, match="no adapter"), use_adapter(model, "nope"):
        pass


def test_adapters_disabled_on_a_plain_model_is_a_no_op(tiny_model_dir):
    from tuilab.modeling.loading import load_model

    model = load_model(tiny_model_dir).model
    with adapters_disabled(model) as m:
        assert m is model


def test_only_adapter_weights_train(tiny_model_dir):
    from tuilab.modeling.loading import load_model

    model = add_adapter(load_model(tiny_model_dir).model, "policy", LoraSettings(r=4))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def _grads(model_dir, four_bit, *, eval_forward_first, weights=None, raw_peft=False):
    """LoRA gradients of a fixed loss; optionally after an eval-mode no-grad forward (as generation does)."""
    import bitsandbytes as bnb

    from tuilab.modeling.loading import load_model

    loaded = load_model(model_dir, four_bit=four_bit)
    model = loaded.model
    dequantized = {}
    if four_bit:
        for name, module in model.named_modules():
            if isinstance(module, bnb.nn.Linear4bit):
                state = module.weight.quant_state
                dequantized[name] = bnb.functional.dequantize_4bit(module.weight.data, state).float()
    if weights:
        with torch.no_grad():
            for name, w in weights.items():
                model.get_submodule(name).weight.copy_(w)
    if raw_peft:  # as code that calls peft directly would
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(LoraSettings(r=4)), adapter_name="policy")
    else:
        model = add_adapter(model, "policy", LoraSettings(r=4))
    _randomize_lora(model, "policy", 0)
    x = _input(loaded.tokenizer)
    if eval_forward_first:
        model.eval()
        with torch.no_grad():
            model(input_ids=x)
    model.train()
    model(input_ids=x).logits.float().pow(2).mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return grads, dequantized


@pytest.mark.parametrize("raw_peft", [False, True], ids=["add_adapter", "plain-peft"])
def test_four_bit_lora_gradients_are_exact(tiny64_dir, raw_peft):
    """4-bit LoRA grads equal those of an fp32 model holding the dequantized weights.

    Also after an eval-mode forward: bitsandbytes would otherwise repack CPU
    weights for a kernel without autograd and earlier layers' grads go wrong.
    `load_model` prevents that for any 4-bit base, so plain peft code is safe too.
    """
    grads4, dequantized = _grads(tiny64_dir, True, eval_forward_first=True, raw_peft=raw_peft)
    reference, _ = _grads(tiny64_dir, False, eval_forward_first=False, weights=dequantized)
    assert grads4.keys() == reference.keys() and grads4
    for name, g in reference.items():
        assert torch.allclose(grads4[name], g, rtol=1e-4, atol=1e-7), name


def test_four_bit_base_is_prepared_once(tiny64_dir):
    from tuilab.modeling.loading import load_model

    base = load_model(tiny64_dir, four_bit=True).model
    assert is_four_bit(base)
    model = add_adapter(base, "policy", LoraSettings(r=4))
    assert is_four_bit(model)
    assert getattr(model.get_base_model(), "_tuilab_kbit_prepared", False)
    add_adapter(model, "value", LoraSettings(r=4))
    assert adapter_names(model) == ["policy", "value"]
    # Norms are kept in fp32 for stable training; the 4-bit layers stay frozen.
    assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if "norm" in n)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
