"""Packed preference pairs on a tiny real model: the prompt once per pair, the batch prefix once per batch."""

from __future__ import annotations

import random

import pytest
import torch

from tests.jobs.rm_data import make_pairs
from tuilab.config import RewardConfig
from tuilab.training.packing import (
    batch_prefix,
    common_prefix,
    encode_pairs,
    grouped_batches,
    pack_pairs,
    packed_rewards,
)


def test_encode_renders_exactly_what_ppo_scores(tiny_model_dir):
    from tuilab.modeling.chat import scored_ids
    from tuilab.modeling.loading import load_model

    tok = load_model(tiny_model_dir).tokenizer
    pairs = make_pairs(3)
    pairs[1].margin = 1.0
    encoded, too_long = encode_pairs(tok, pairs, max_length=512)
    assert too_long == 0
    for p, e in zip(pairs, encoded, strict=True):
        assert e.chosen == scored_ids(tok, p.messages, p.chosen)
        assert e.rejected == scored_ids(tok, p.messages, p.rejected)
        assert e.chosen[-1] == tok.eos_token_id != tok.pad_token_id
        assert e.chosen_tokens == len(tok.encode(p.chosen, add_special_tokens=False))
    assert encoded[1].margin == 1.0 and encoded[0].margin == 0.0
    shortest = min(len(e.chosen) for e in encoded)
    _, dropped = encode_pairs(tok, pairs, max_length=shortest - 1)
    assert dropped == 3


# ------------------------------------------------------------------ batching, split, schedule


def test_grouped_batches_cover_every_row_with_little_padding():
    rng = random.Random(0)
    lengths = [rng.randint(5, 200) for _ in range(500)]
    batches = grouped_batches(range(500), lengths, 8, random.Random(1))
    assert sorted(i for b in batches for i in b) == list(range(500))
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # longest batch first
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded / sum(lengths) < 1.1
    again = grouped_batches(range(500), lengths, 8, random.Random(2))
    assert again != batches  # a new order each epoch


def test_batch_prefix_is_common_to_every_row_and_within_each_pair():
    from tuilab.training.metrics import EncodedPair

    system = list(range(100, 120))
    rows = [EncodedPair(chosen=system + [1, 2, 3, 9], rejected=system + [1, 2, 4, 9], shared=22),
            EncodedPair(chosen=system + [1, 5, 9], rejected=system + [1, 6, 9], shared=21)]
    assert batch_prefix(rows) == 21
    assert batch_prefix(rows[:1]) == 0  # one row: nothing to share
    short = [EncodedPair(chosen=[1, 2, 3, 9], rejected=[1, 2, 4, 9], shared=2)] * 2
    assert batch_prefix(short) == 0  # too short to be worth it


def test_common_prefix_leaves_each_side_its_last_token():
    assert common_prefix([1, 2, 3, 9], [1, 2, 4, 9]) == 2
    assert common_prefix([1, 2, 9], [1, 2, 9, 7, 9]) == 2
    assert common_prefix([5, 9], [6, 9]) == 0


@pytest.mark.parametrize(("additive", "with_prefix"), [(None, False), (None, True), (torch.float32, True)])
def test_packed_pairs_compute_exactly_the_separate_rows(tiny_model_dir, additive, with_prefix):
    """Rewards and gradients from one packed row per pair equal those of separate chosen/rejected rows."""
    from peft import get_peft_model

    from tuilab.modeling.heads import ScalarHead
    from tuilab.modeling.loading import load_model
    from tuilab.modeling.lora import lora_config
    from tuilab.modeling.trunk import backbone_of, last_token_hidden, pad_right

    base = load_model(tiny_model_dir)
    if additive is not None:
        base.model.config._attn_implementation = "eager"
    torch.manual_seed(0)
    peft = get_peft_model(base.model, lora_config(RewardConfig().lora), adapter_name="reward-t")
    with torch.no_grad():  # LoRA B starts at zero; make the adapter matter
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    body, head = backbone_of(peft), ScalarHead(32, generator=torch.Generator().manual_seed(0))
    pairs = make_pairs(6)
    pairs[1].rejected = pairs[1].chosen + " and more"  # a pair that shares more than its prompt
    pairs[2].messages = [{"role": "user", "content": "A much longer prompt than the others, to force padding."}]
    tok = base.tokenizer
    encoded, _ = encode_pairs(tok, pairs, 512)
    assert encoded[1].shared > encoded[0].shared

    def grads():
        return {n: p.grad.clone() for n, p in peft.named_parameters() if p.requires_grad}

    prefix = batch_prefix(encoded) if with_prefix else 0
    assert (prefix > 0) == with_prefix  # the chat template's system prompt is common to every row
    packed = pack_pairs(encoded, tok.pad_token_id, torch.device("cpu"), additive=additive, prefix=prefix)
    assert (packed.prefix_ids is not None) == with_prefix
    rc, rr = packed_rewards(body, head, packed)
    (rc - rr).pow(2).sum().backward()
    packed_grads = grads()
    peft.zero_grad()
    ids, lens = pad_right([e.chosen for e in encoded] + [e.rejected for e in encoded], tok.pad_token_id,
                          torch.device("cpu"))
    plain = head(last_token_hidden(body, ids, lens))
    (plain[:6] - plain[6:]).pow(2).sum().backward()
    assert torch.allclose(torch.cat([rc, rr]), plain, atol=1e-5)
    for name, g in grads().items():
        assert torch.allclose(packed_grads[name], g, atol=1e-5, rtol=1e-4), name
