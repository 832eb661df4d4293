"""PPO fidelity on a tiny real model: each link of the loop checked against what it must equal.

At a sampling temperature ≠ 1, with rows that end at different times: the first minibatch's
ratio is 1 (old log-probs describe the policy that sampled), the first step's KL is 0 (the
policy starts as the reference), the critic's gradient stays out of the policy adapter, the
learning rate never jumps when a run is extended, truncated answers lose score with either
sign convention, and a trained reward adapter is what scores the rollouts.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tuilab.config import PPOConfig
from tuilab.modeling.loading import load_model
from tuilab.records import Prompt
from tuilab.training import ppo_math as pm
from tuilab.training.events import Metrics
from tuilab.training.ppo import train_ppo

TARGET = set(range(100, 200))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The tiny chat model with 10× embeddings: logits that move, rows that end at different times."""
    from tiny import build_model, build_tokenizer

    path = tmp_path_factory.mktemp("fidelity") / "tiny-expressive"
    tok = build_tokenizer()
    model = build_model(tok)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)
    # Four frequent tokens also stop a row (~5 % of samples each at temperature 0.7), so rows of a
    # batch end at different times and the sampler drops them mid-batch, as with a real model.
    model.generation_config.eos_token_id = [tok.eos_token_id, 144, 102, 270, 62]
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def prompts(n=16):
    return [Prompt(id=i + 1, messages=[{"role": "user", "content": f"question {i} yes no"}], text=f"question {i}")
            for i in range(n)]


def rule(scored, responses, texts):
    return [sum(t in TARGET for t in r) / max(len(r), 1) for r in responses]


def cfg(**kw) -> PPOConfig:
    base = dict(batch_size=8, minibatch_size=4, max_new_tokens=8, total_updates=4, learning_rate=1e-2,
                checkpoint_every=0, sample_every=1, temperature=1.0, kl_coef=0.0, missing_eos_penalty=0.0)
    base.update(kw)
    return PPOConfig(**base)


def run(model_dir, tmp_path, c, *, reward=rule, resume_from=None):
    events = []
    base = load_model(model_dir)
    out = train_ppo(c, prompts(), base=base, reward=reward, output_dir=tmp_path, sink=events.append,
                    resume_from=resume_from)
    return out, events, base


def metrics_by_step(events):
    return {e.step: e.values for e in events if isinstance(e, Metrics)}


def _record_first_ratio(monkeypatch):
    """Wrap the policy loss: the log-ratio of its first call (first minibatch, before any update)."""
    import tuilab.training.ppo as ppo

    seen: list[torch.Tensor] = []
    real = pm.clipped_policy_loss

    def spy(logp, old_logp, adv, mask, clip):
        if not seen:
            seen.append(((logp - old_logp) * mask).detach().abs().max())
        return real(logp, old_logp, adv, mask, clip)

    monkeypatch.setattr(ppo.pm, "clipped_policy_loss", spy)
    return seen


@pytest.mark.parametrize("temperature", [0.7, 1.2])
def test_first_ratio_is_one_and_first_kl_is_zero(model_dir, tmp_path, monkeypatch, temperature):
    seen = _record_first_ratio(monkeypatch)
    c = cfg(total_updates=2, temperature=temperature, max_new_tokens=12, kl_coef=0.05, sample_every=0)
    _, events, _ = run(model_dir, tmp_path, c)
    m = metrics_by_step(events)
    lengths = [r.length for e in events if getattr(e, "rows", None) and e.step == 1 for r in e.rows]
    assert len(set(lengths)) > 1  # rows finished at different times: the sampler dropped some mid-batch
    assert float(seen[0]) < 1e-4
    assert abs(m[1]["objective/kl"]) < 1e-3 and m[1]["objective/kl_k3"] < 1e-6
    assert m[1]["policy/first_ratio_dev"] < 1e-4
    assert m[2]["objective/kl_k3"] > 1e-4  # and the policy did move


def test_value_loss_leaves_the_policy_adapter_alone(model_dir, tmp_path, monkeypatch):
    """The critic reads detached hidden states: its loss moves the value head only."""
    import tuilab.training.ppo as ppo

    monkeypatch.setattr(ppo.pm, "clipped_policy_loss",
                        lambda logp, old, adv, mask, clip: pm.PolicyLoss(logp.sum() * 0.0, *(torch.zeros(()),) * 3))
    _, events, base = run(model_dir, tmp_path, cfg(total_updates=2, sample_every=0))
    lora_b = [p for n, p in base.model.named_parameters() if "lora_B.policy" in n]
    assert lora_b and all(float(p.abs().max()) == 0.0 for p in lora_b)
    m = metrics_by_step(events)
    assert m[2]["val/grad_norm"] > 0 and m[2]["policy/grad_norm"] == 0.0


def test_learning_rate_does_not_jump_when_a_run_is_extended(model_dir, tmp_path):
    from tuilab.training.ppo import find_latest_checkpoint

    c = cfg(total_updates=4, checkpoint_every=4, sample_every=0)
    _, first, _ = run(model_dir, tmp_path, c)
    lrs = [m["lr"] for _, m in sorted(metrics_by_step(first).items())]
    assert lrs == pytest.approx([c.learning_rate * f for f in (1.0, 0.75, 0.5, 0.25)])
    ckpt = find_latest_checkpoint(tmp_path)
    c8 = cfg(total_updates=8, checkpoint_every=0, sample_every=0)
    _, more, _ = run(model_dir, tmp_path, c8, resume_from=ckpt)
    lr_more = [m["lr"] for _, m in sorted(metrics_by_step(more).items())]
    assert len(lr_more) == 4
    # the decay goes on from the last rate used (0.25·lr) to 0 over the new remaining updates
    assert lr_more == pytest.approx([c.learning_rate * 0.25 * f for f in (0.8, 0.6, 0.4, 0.2)])


def test_ported_trl_eos_penalty_and_a_wrong_sign(model_dir, tmp_path):
    """TRL's missing_eos_penalty = 1.0 (positive, subtracted) means the same here; −1 is refused by name."""
    c = cfg(total_updates=1, missing_eos_penalty=1.0, max_new_tokens=4, sample_every=1)
    _, events, _ = run(model_dir, tmp_path, c)
    m = metrics_by_step(events)
    rows = [r for e in events if getattr(e, "rows", None) for r in e.rows]
    assert any(not r.eos for r in rows)
    want = np.mean([r.score - (0.0 if r.eos else 1.0) for r in rows])
    assert m[1]["objective/scores"] == pytest.approx(want, abs=1e-5)
    base = load_model(model_dir)
    with pytest.raises(ValueError, match="missing_eos_penalty"):
        train_ppo(cfg(missing_eos_penalty=-1.0), prompts(), base=base, reward=rule, output_dir=tmp_path / "x",
                  sink=lambda e: None)
    with pytest.raises(ValueError, match="truncated_score"):
        train_ppo(cfg(truncated="replace", truncated_score=1.0), prompts(), base=base, reward=rule,
                  output_dir=tmp_path / "y", sink=lambda e: None)


def test_a_trained_reward_adapter_scores_and_the_policy_adapter_stays_out(model_dir, tmp_path):
    """Reward adapters with non-zero LoRA B: scoring on the policy's PeftModel must apply them, and only them."""
    from peft import PeftModel

    from tuilab.config import LoraSettings
    from tuilab.modeling.chat import scored_ids
    from tuilab.modeling.heads import ScalarHead
    from tuilab.modeling.lora import add_adapter
    from tuilab.modeling.reward_model import save_member, write_manifest
    from tuilab.modeling.trunk import backbone_of, last_token_hidden, pad_right
    from tuilab.training import ppo

    scratch = load_model(model_dir)
    peft = add_adapter(scratch.model, "reward-0", LoraSettings(r=4, alpha=8))
    with torch.no_grad():  # a "trained" adapter: B ≠ 0, so applying it or not changes the scores
        for name, p in peft.named_parameters():
            if "lora_B.reward-0" in name:
                p.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(2))
    head = ScalarHead(32, generator=torch.Generator().manual_seed(3))
    save_member(peft, head, tmp_path / "rm", "reward-0")
    write_manifest(tmp_path / "rm", base_model=model_dir, hidden_size=32, members=["reward-0"],
                   norm={"reward-0": {"mean": 0.0, "std": 1.0}})

    base = load_model(model_dir)
    c = cfg()
    model = ppo.prepare_policy(base, c)
    rm = ppo.load_reward(tmp_path / "rm", model, base.tokenizer)
    with torch.no_grad():  # a trained policy too
        for name, p in model.named_parameters():
            if "lora_B.policy" in name:
                p.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(4))
    ids = [scored_ids(base.tokenizer, p.messages, [100 + i, 120, 140 + i]) for i, p in enumerate(prompts(6))]
    got = rm.score_ids(ids)[0]

    def reference(apply_adapter: bool) -> torch.Tensor:
        fresh = load_model(model_dir)
        m = PeftModel.from_pretrained(fresh.model, str(tmp_path / "rm" / "reward-0"), adapter_name="reward-0")
        padded, lengths = pad_right(ids, base.tokenizer.pad_token_id, torch.device("cpu"))
        with torch.no_grad():
            if apply_adapter:
                return head(last_token_hidden(backbone_of(m), padded, lengths))
            with m.disable_adapter():
                return head(last_token_hidden(backbone_of(m), padded, lengths))

    want, without = reference(True), reference(False)
    assert (want - without).abs().max() > 1e-2  # the adapter matters
    assert torch.allclose(got, want, atol=1e-4)  # applied, and the policy adapter did not leak in
    # the policy is still the active, trainable adapter after scoring
    assert model.active_adapter == "policy"
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_B.policy" in n)
