"""Loading a base model folder: device, dtype, the pad-token fix, eval mode, 4-bit on request."""

from __future__ import annotations

import pytest
import torch
from tiny import build_tokenizer

from tuilab.modeling.loading import (
    LoadedModel,
    load_model,
    pick_device,
    pick_dtype,
    prepare_tokenizer,
)


def test_the_device_asked_for_else_the_cpu_without_cuda():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("cuda:1") == torch.device("cuda", 1)  # named, not probed
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == want and pick_device(None).type == want


def test_fp32_on_the_cpu_unless_a_dtype_is_named():
    cpu = torch.device("cpu")
    assert pick_dtype(cpu) is torch.float32
    for names, want in ((("float32", "fp32"), torch.float32), (("bfloat16", "bf16"), torch.bfloat16),
                        (("float16", "fp16"), torch.float16)):
        assert all(pick_dtype(cpu, n) is want for n in names)
    with pytest.raises(ValueError, match="unknown dtype 'float8': one of float32, fp32, bfloat16"):
        pick_dtype(cpu, "float8")


def test_pad_becomes_a_special_token_other_than_eos_and_padding_goes_left():
    tok = build_tokenizer()
    assert tok.pad_token_id == tok.eos_token_id  # SmolLM2's trap, as shipped
    size = len(tok)
    assert prepare_tokenizer(tok) is tok
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id != tok.eos_token_id
    assert tok.padding_side == "left" and len(tok) == size  # an existing token, nothing added
    batch = tok(["<|im_end|>", "sea wind <|im_end|>"], padding=True)
    # EOS survives the attention mask; only real padding is masked.
    assert all(m == 1 for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
               for i, m in zip(ids, mask, strict=True) if i == tok.eos_token_id)


def test_a_distinct_pad_token_is_kept():
    tok = build_tokenizer()
    tok.pad_token = "<|im_start|>"
    prepare_tokenizer(tok)
    assert tok.pad_token == "<|im_start|>" and tok.padding_side == "left"


def _tokenizer_without_a_pad_candidate():
    """A word-level tokenizer whose only special token is its EOS: nothing to reuse as pad."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["</s>", "sea", "wind", "good", "bad"])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="bad"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="</s>", pad_token="</s>")


def test_without_a_candidate_a_new_pad_token_is_added():
    tok = _tokenizer_without_a_pad_candidate()
    prepare_tokenizer(tok)
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id == 5 and len(tok) == 6


def test_load_model_gives_an_eval_model_whose_pad_is_not_eos(tiny_model_dir):
    lm = load_model(tiny_model_dir)
    assert isinstance(lm, LoadedModel)
    assert (lm.name, lm.path, lm.device, lm.four_bit) == (tiny_model_dir.name, tiny_model_dir, torch.device("cpu"),
                                                          False)
    assert not lm.model.training  # dropout off: log-probs are deterministic
    assert {p.dtype for p in lm.model.parameters()} == {torch.float32}
    pad = lm.tokenizer.pad_token_id
    assert pad != lm.tokenizer.eos_token_id
    assert lm.model.config.pad_token_id == pad and lm.model.generation_config.pad_token_id == pad
    assert lm.tokenizer.padding_side == "left"


def test_load_model_in_another_dtype(tiny_model_dir):
    lm = load_model(str(tiny_model_dir), dtype="bfloat16", device="cpu")
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    ids = torch.tensor([lm.tokenizer.encode("sea wind")])
    with torch.no_grad():
        assert torch.isfinite(lm.model(input_ids=ids).logits.float()).all()


def test_a_pad_token_added_to_the_tokenizer_gets_an_embedding_row(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _tokenizer_without_a_pad_candidate()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, eos_token_id=0)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    lm = load_model(tmp_path / "m")
    assert lm.tokenizer.pad_token == "<|pad|>"
    assert lm.model.get_input_embeddings().num_embeddings == len(lm.tokenizer) == 6
    ids = torch.tensor([[1, 2, lm.tokenizer.pad_token_id]])
    with torch.no_grad():
        assert lm.model(input_ids=ids).logits.shape == (1, 3, 6)


def test_four_bit_loads_nf4_with_compute_in_fp32_on_the_cpu(tiny64_dir):
    from bitsandbytes.nn import Linear4bit

    from tuilab.modeling.lora import is_four_bit

    lm = load_model(tiny64_dir, four_bit=True)
    assert lm.four_bit and is_four_bit(lm.model)
    q = lm.model.config.quantization_config
    q = q if isinstance(q, dict) else q.to_dict()
    assert q["bnb_4bit_quant_type"] == "nf4" and q["bnb_4bit_use_double_quant"] is True
    assert "float32" in str(q["bnb_4bit_compute_dtype"])
    layers = [m for m in lm.model.modules() if isinstance(m, Linear4bit)]
    assert layers and not any(m.support_avx512bf16_for_cpu for m in layers)  # kept differentiable

