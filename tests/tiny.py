"""Tiny randomly initialised chat models, saved as real Hugging Face folders.

Every modeling / training test loads these through the same code paths as the
real default model (config, safetensors, tokenizer with a chat template, the
`<|im_end|>` = EOS = pad trap of SmolLM2), in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# SmolLM2-135M-Instruct's template, as read from its GGUF.
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Explain how a rainbow forms: sunlight is refracted and reflected in droplets.",
    "Write a short poem about the sea and the wind and the long grey shore.",
    "def add(a, b):\n    return a + b\n",
    "I can't help with that request. Here is a safer alternative.",
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    "system user assistant yes no maybe great good bad long short answer question",
    "0 1 2 3 4 5 6 7 8 9 ! ? . , ; : ' \" ( ) [ ] { } - _ + = * / \\ # @ % & < > | ~",
]


def build_tokenizer(vocab_size: int = 320):
    """A byte-level BPE tokenizer with SmolLM2's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",  # the SmolLM2 trap: pad == EOS
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer, *, layers: int = 2, hidden: int = 32, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


def save_tiny_model(path: Path, *, layers: int = 2, hidden: int = 32, seed: int = 0, sharpen: bool = False) -> Path:
    """Write a tiny chat model folder at `path` (config, safetensors, tokenizer).

    `sharpen` scales the embeddings ×10 (tied with the LM head): the random model's next-token
    distributions, nearly uniform otherwise, are then peaked enough for sampling to show a policy
    move, and for a rule reward or a preference to be learnable in a few dozen LoRA steps.
    """
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, layers=layers, hidden=hidden, seed=seed)
    if sharpen:
        with torch.no_grad():
            model.get_input_embeddings().weight.mul_(10.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_policy_and_reward(root: Path, *, sharpen: bool = True) -> tuple[Path, Path]:
    """A tiny chat model under `root/tiny` (`sharpen`: see save_tiny_model) and an (untrained) reward
    run on it under `root/rm`."""
    import torch

    from tuilab.config import LoraSettings
    from tuilab.modeling.heads import ScalarHead
    from tuilab.modeling.lora import add_adapter
    from tuilab.modeling.reward_model import save_member, write_manifest

    model_dir, rm_dir = save_tiny_model(root / "tiny", sharpen=sharpen), root / "rm"
    tok = build_tokenizer()
    peft = add_adapter(build_model(tok), "reward-0", LoraSettings(r=4, alpha=8))
    save_member(peft, ScalarHead(32, generator=torch.Generator().manual_seed(0)), rm_dir, "reward-0")
    write_manifest(rm_dir, base_model=model_dir, hidden_size=32, members=["reward-0"])
    return model_dir, rm_dir
