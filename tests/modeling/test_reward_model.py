"""Loading and scoring trained reward models: batching, sharing a base with a policy adapter, the base check."""

from __future__ import annotations

import json

import pytest
import torch

from tests.jobs.rm_data import make_pairs
from tuilab.config import LoraSettings, RewardConfig
from tuilab.modeling.loading import load_model
from tuilab.modeling.lora import lora_config
from tuilab.modeling.reward_model import RewardModel
from tuilab.training.reward import train_reward_model


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "run"
    cfg = RewardConfig(learning_rate=3e-3, epochs=1, batch_size=8, ensemble=2, min_pairs=4, checkpoint_every=0)
    train_reward_model(cfg, make_pairs(16), base=tiny_model_dir, output_dir=out, sink=lambda e: None)
    return out


PROMPTS = ["Say something about item 1.", [{"role": "user", "content": "Another prompt."}], "Third."]
RESPONSES = ["sea wind good", "a considerably longer answer with many more words in it bad", "no"]


def test_batched_scores_equal_one_at_a_time(run_dir):
    rm = RewardModel.load(run_dir)
    together = rm.score(PROMPTS, RESPONSES)
    for i in range(3):
        alone = rm.score([PROMPTS[i]], [RESPONSES[i]])
        for k in range(2):
            assert alone.members[k][0] == pytest.approx(together.members[k][i], abs=1e-5)
    # Token ids straight in give the same numbers.
    ids = rm.encode(PROMPTS, RESPONSES)
    assert torch.allclose(rm.score_ids(ids, batch_size=2), torch.tensor(together.members), atol=1e-5)


def test_normalised_scores_use_the_saved_statistics(run_dir):
    rm = RewardModel.load(run_dir)
    raw = torch.tensor(rm.score(PROMPTS, RESPONSES).members)
    norm = torch.tensor(rm.score(PROMPTS, RESPONSES, normalize=True).members)
    stats = json.loads((run_dir / "reward.json").read_text())["norm"]
    for k, member in enumerate(rm.members):
        expected = (raw[k] - stats[member]["mean"]) / stats[member]["std"]
        assert torch.allclose(norm[k], expected, atol=1e-5)


def test_reward_adapters_join_a_policy_adapter_on_one_base(run_dir, tiny_model_dir):
    from peft import get_peft_model

    alone = RewardModel.load(run_dir).score(PROMPTS, RESPONSES)
    base = load_model(tiny_model_dir)
    policy = get_peft_model(base.model, lora_config(LoraSettings()), adapter_name="policy")
    flags = {n: p.requires_grad for n, p in policy.named_parameters()}
    assert any(flags.values())
    n_params = sum(p.numel() for p in policy.parameters())
    rm = RewardModel.load(run_dir, base=policy, tokenizer=base.tokenizer)
    assert rm.model is policy
    assert set(policy.peft_config) == {"policy", "reward-0", "reward-1"}
    shared = rm.score(PROMPTS, RESPONSES)
    for a, b in zip(alone.members, shared.members, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    # Scoring leaves the policy as it was: active, trainable, reward adapters frozen.
    assert policy.active_adapter == "policy"
    after = {n: p.requires_grad for n, p in policy.named_parameters()}
    assert all(after[n] == flag for n, flag in flags.items())
    assert not any(after[n] for n in after if "reward-" in n)
    # Scoring inside the reference-policy context (adapters off) still uses the reward adapters,
    # and leaves the adapters off for the caller.
    from peft.tuners.tuners_utils import BaseTunerLayer

    with policy.disable_adapter():
        inside = rm.score(PROMPTS, RESPONSES)
        assert all(m.disable_adapters for m in policy.modules() if isinstance(m, BaseTunerLayer))
    assert torch.allclose(torch.tensor(inside.members), torch.tensor(shared.members), atol=1e-6)
    assert policy.active_adapter == "policy"
    assert not any(m.disable_adapters for m in policy.modules() if isinstance(m, BaseTunerLayer))
    # The base weights were not copied: only adapter weights were added.
    added = sum(p.numel() for p in policy.parameters()) - n_params
    assert 0 < added < n_params


def test_loading_twice_onto_one_base_renames_the_second(run_dir, tiny_model_dir):
    base = load_model(tiny_model_dir)
    first = RewardModel.load(run_dir, base=base)
    second = RewardModel.load(run_dir, base=first.model, tokenizer=base.tokenizer)
    assert second.adapters == {"reward-0": "reward-0-1", "reward-1": "reward-1-1"}
    a = torch.tensor(first.score(PROMPTS, RESPONSES).members)
    b = torch.tensor(second.score(PROMPTS, RESPONSES).members)
    assert torch.allclose(a, b, atol=1e-5)


def test_clear_errors(run_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a reward model folder"):
        RewardModel.load(tmp_path)
    rm = RewardModel.load(run_dir)
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        rm.score(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="empty token list"):
        rm.score_ids([[]])
    assert rm.score_ids([]).shape == (2, 0)


def test_a_model_that_cannot_share_the_prefix_is_scored_whole(run_dir, monkeypatch):
    """The shared-prefix forward is checked once against the plain one; a model that fails it is
    scored with each prompt whole, with a warning, and the scores are the plain ones."""
    import tuilab.modeling.reward_model as rm_module

    rm = RewardModel.load(run_dir)
    want = torch.tensor(rm.score(PROMPTS, RESPONSES).members)
    assert rm.share_prefix is True  # the tiny model's chat template gives every prompt the same start

    plain = rm_module.last_token_hidden

    def no_cache(body, ids, lengths, prefix=0):
        if prefix:
            raise TypeError("this model takes no cache")
        return plain(body, ids, lengths)

    monkeypatch.setattr(rm_module, "last_token_hidden", no_cache)
    fresh = RewardModel.load(run_dir)
    with pytest.warns(UserWarning, match="scored with its whole prompt"):
        got = torch.tensor(fresh.score(PROMPTS, RESPONSES).members)
    assert fresh.share_prefix is False
    assert torch.allclose(got, want, atol=1e-5)


def test_load_refuses_another_base_of_the_same_width(tiny_model_dir, tmp_path):
    from tiny import build_model, build_tokenizer

    from tuilab.modeling.loading import load_model
    from tuilab.modeling.reward_model import RewardModel

    cfg = RewardConfig(learning_rate=3e-3, epochs=1, batch_size=8, checkpoint_every=0, warmup_ratio=0.0, min_pairs=8)
    train_reward_model(cfg, make_pairs(16), base=tiny_model_dir, output_dir=tmp_path / "rm", sink=lambda e: None)
    RewardModel.load(tmp_path / "rm", base=load_model(tiny_model_dir))  # its own base: fine
    tok = build_tokenizer()
    other = build_model(tok, seed=7)  # same width, same depth, other weights
    other_dir = tmp_path / "other"
    other.save_pretrained(other_dir)
    tok.save_pretrained(other_dir)
    with pytest.raises(ValueError, match="another base model.*embedding weights differ"):
        RewardModel.load(tmp_path / "rm", base=load_model(other_dir))
    deeper = build_model(tok, layers=3)
    deeper.save_pretrained(tmp_path / "deeper")
    tok.save_pretrained(tmp_path / "deeper")
    with pytest.raises(ValueError, match="layers 2 there, 3 here"):
        RewardModel.load(tmp_path / "rm", base=load_model(tmp_path / "deeper"))
    # the same base loaded in bfloat16 is still the same base
    bf16 = load_model(tiny_model_dir, dtype="bfloat16")
    assert RewardModel.load(tmp_path / "rm", base=bf16).members == ["reward-0"]
    assert torch.is_tensor(bf16.model.get_input_embeddings().weight)
