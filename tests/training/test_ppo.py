"""The PPO loop on a tiny real model: learning, events, checkpoints and resume, reward models, gold."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import torch

from tuilab.config import PPOConfig
from tuilab.modeling.loading import load_model
from tuilab.records import Prompt
from tuilab.training.events import Checkpoint, Finished, Metrics, RunControl, RunWarning, Samples
from tuilab.training.ppo import batch_indices, find_latest_checkpoint, train_ppo

TARGET = set(range(100, 200))  # the rule rewards these token ids (~30% of the vocabulary)

REQUIRED = {
    "objective/scores", "objective/scores_std", "objective/rlhf_reward", "objective/kl", "objective/kl_k3",
    "objective/entropy", "objective/beta", "objective/non_score_reward", "policy/clipfrac_avg",
    "policy/approxkl_avg", "loss/policy_avg", "loss/value_avg", "val/explained_variance",
    "response/length_mean", "response/eos_rate", "time/rollout_s", "time/update_s", "lr",
    "diag/length_ratio", "diag/distinct_2",
}


def save_expressive_model(path):
    """The tiny chat model with 10× embeddings (tied with the LM head): its logits can move far enough
    for a rule reward to be learnable in a few dozen LoRA steps (the stock one is nearly uniform)."""
    from tiny import save_tiny_model

    return save_tiny_model(path, sharpen=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_expressive_model(tmp_path_factory.mktemp("ppo") / "tiny-expressive")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models are latency-bound: one intra-op thread is faster and immune to a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def prompts(n=16):
    return [Prompt(id=i + 1, messages=[{"role": "user", "content": f"question {i} yes no"}], text=f"question {i}")
            for i in range(n)]


def rule(scored, responses, texts):
    """Share of response tokens in TARGET."""
    return [sum(t in TARGET for t in r) / max(len(r), 1) for r in responses]


def cfg(**kw) -> PPOConfig:
    base = dict(batch_size=8, minibatch_size=4, max_new_tokens=8, total_updates=4, learning_rate=1e-2,
                checkpoint_every=0, sample_every=1, temperature=1.0, kl_coef=0.0, missing_eos_penalty=0.0)
    base.update(kw)
    return PPOConfig(**base)


def run(model_dir, tmp_path, c, *, reward=rule, control=None, resume_from=None, gold=None, sink=None):
    events = []
    base = load_model(model_dir)

    def collect(e):
        events.append(e)
        if sink:
            sink(e)

    out = train_ppo(c, prompts(), base=base, reward=reward, output_dir=tmp_path, sink=collect,
                    control=control, resume_from=resume_from, gold=gold)
    return out, events, base


def metrics_by_step(events):
    return {e.step: e.values for e in events if isinstance(e, Metrics)}


def test_rule_reward_rises(model_dir, tmp_path):
    # Seeds 0–3 all rise by ≥ 0.16 here (0.21 → 0.64 for seed 0); the noise of a 5-step mean is ~0.05.
    out, events, _ = run(model_dir, tmp_path, cfg(total_updates=30, sample_every=0, learning_rate=2e-2))
    scores = [m["objective/scores"] for _, m in sorted(metrics_by_step(events).items())]
    assert len(scores) == 30
    assert np.mean(scores[-5:]) > np.mean(scores[:5]) + 0.1, scores
    assert out["steps"] == 30


def test_events_metrics_samples_and_files(model_dir, tmp_path):
    out, events, base = run(model_dir, tmp_path, cfg(total_updates=3, checkpoint_every=2, sample_every=2))
    m = metrics_by_step(events)
    assert sorted(m) == [1, 2, 3]
    assert set(m[1]) >= REQUIRED, REQUIRED - set(m[1])
    assert all(math.isfinite(v) for v in m[3].values())
    assert m[1]["objective/kl"] == pytest.approx(0.0, abs=1e-5)  # step 1 samples from the untouched policy
    assert m[1]["val/ratio"] == pytest.approx(1.0, abs=0.05)
    samples = {e.step: e.rows for e in events if isinstance(e, Samples)}
    assert sorted(samples) == [1, 2, 3] and all(len(r) == 8 for r in samples.values())
    # reference answers every sample_every (2) steps: steps 1 and 3
    assert all(r.ref_response is not None for r in samples[1] + samples[3])
    assert all(r.ref_response is None for r in samples[2])
    row = samples[2][0]
    assert row.prompt.startswith("question") and row.prompt_id >= 1
    assert row.length <= 8 and isinstance(row.eos, bool) and isinstance(row.flags, list)
    assert row.spread is None and row.gold is None and row.kl is not None
    assert m[2]["response/length_mean"] == pytest.approx(np.mean([r.length for r in samples[2]]))
    ckpts = [e for e in events if isinstance(e, Checkpoint)]
    assert [c.step for c in ckpts] == [2, 3]  # every 2 steps, and the last
    for c in ckpts:
        for name in ("policy/adapter_model.safetensors", "policy/adapter_config.json",
                     "value/head.safetensors", "trainer_state.pt"):
            assert (tmp_path / "checkpoints" / f"step-{c.step:06d}" / name).exists(), name
    assert find_latest_checkpoint(tmp_path).name == "step-000003"
    assert isinstance(events[-1], Finished) and events[-1].output_dir == str(tmp_path)
    assert (tmp_path / "policy" / "adapter_model.safetensors").exists()  # standard PEFT layout
    assert (tmp_path / "ppo.json").exists()
    # one base: the policy is an adapter on it, and the reference is the same model with adapters off
    assert list(base.model.peft_config) == ["policy"]


def test_saved_policy_loads_with_peft(model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run(model_dir, tmp_path, cfg(total_updates=1, sample_every=0))
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), str(tmp_path / "policy"))
    assert any("lora_B" in n for n, _ in peft.named_parameters())


def test_resume_continues_identically(model_dir, tmp_path):
    """Kill after step 3 (checkpoint), resume: steps 4–6 match an uninterrupted run."""
    c = cfg(total_updates=6, checkpoint_every=3, sample_every=2, adaptive_kl=True, kl_coef=0.05, kl_target=0.01)
    _, full_events, _ = run(model_dir, tmp_path / "full", c)
    full = metrics_by_step(full_events)

    control = RunControl()

    def stop_after_checkpoint(e):
        if isinstance(e, Checkpoint) and e.step == 3:
            control.cancel()

    from tuilab.training.events import CancelledRun

    with pytest.raises(CancelledRun):
        run(model_dir, tmp_path / "cut", c, control=control, sink=stop_after_checkpoint)
    ckpt = find_latest_checkpoint(tmp_path / "cut")
    assert ckpt.name == "step-000003"
    _, resumed_events, _ = run(model_dir, tmp_path / "cut", c, resume_from=ckpt)
    resumed = metrics_by_step(resumed_events)
    assert sorted(resumed) == [4, 5, 6]
    for step in (4, 5, 6):
        for name, value in full[step].items():
            if name.startswith("time/"):
                continue
            assert resumed[step][name] == pytest.approx(value, rel=1e-4, abs=1e-5), (step, name)
    assert resumed[4]["objective/beta"] != pytest.approx(0.05)  # β came back from the checkpoint
    full_rows = {e.step: [r.response for r in e.rows] for e in full_events if isinstance(e, Samples)}
    res_rows = {e.step: [r.response for r in e.rows] for e in resumed_events if isinstance(e, Samples)}
    assert res_rows == {s: full_rows[s] for s in (4, 5, 6)}  # same prompts, same samples


def test_ensemble_gold_and_penalties(model_dir, tmp_path):
    def ensemble(scored, responses, texts):
        base = torch.tensor(rule(scored, responses, texts))
        return torch.stack([base, base + 1.0])

    def gold(batch, texts):
        return [-float(len(t)) for t in texts]

    c = cfg(total_updates=2, ensemble_mode="mean_minus_std", ensemble_lambda=0.1, missing_eos_penalty=1.0)
    _, events, _ = run(model_dir, tmp_path, c, reward=ensemble, gold=gold)
    m = metrics_by_step(events)
    assert m[1]["ensemble/spread"] == pytest.approx(0.5)
    rows = [r for e in events if isinstance(e, Samples) for r in e.rows]
    assert all(r.spread == pytest.approx(0.5) for r in rows)
    assert all(r.gold is not None for r in rows) and "objective/gold" in m[2]
    step1 = [r for e in events if isinstance(e, Samples) and e.step == 1 for r in e.rows]
    # score fed to PPO = mean − 0.1·std, −1 for each row without EOS; `rm_score` is the plain mean
    want = np.mean([r.score - 0.05 - (0 if r.eos else 1.0) for r in step1])
    assert m[1]["objective/scores"] == pytest.approx(want, abs=1e-5)
    assert m[1]["objective/rm_score"] == pytest.approx(np.mean([r.score for r in step1]), abs=1e-5)


def test_gold_scorer_from_config(model_dir, tmp_path):
    c = cfg(total_updates=1, gold_scorer="tuilab.diagnostics.gold:concise_correct")
    _, events, _ = run(model_dir, tmp_path, c)
    assert "objective/gold" in metrics_by_step(events)[1]


def test_warnings_are_events(model_dir, tmp_path):
    """The monitor's run-level warnings reach the sink as Warning events, once, in words."""
    calls = []

    def disagreeing(scored, responses, texts):  # an ensemble whose members drift apart every step
        calls.append(1)
        base = torch.tensor(rule(scored, responses, texts))
        return torch.stack([base, base + len(calls)])

    _, events, _ = run(model_dir, tmp_path, cfg(total_updates=4, sample_every=0), reward=disagreeing)
    warns = [e for e in events if isinstance(e, RunWarning)]
    spread = [w for w in warns if w.code == "spread_rising"]
    assert len(spread) == 1 and spread[0].step == 3  # mean spread 1.0 over 3 steps = 2× step 1's 0.5
    assert "disagree" in spread[0].message
    m = metrics_by_step(events)
    assert m[4]["diag/warnings_active"] >= 1


def test_reward_model_on_the_same_base(model_dir, tmp_path):
    """A reward run folder is loaded onto the policy's PeftModel: one base, two adapters."""
    from tuilab.config import LoraSettings
    from tuilab.modeling.heads import ScalarHead
    from tuilab.modeling.lora import add_adapter
    from tuilab.modeling.reward_model import save_member, write_manifest

    rm_base = load_model(model_dir)
    peft = add_adapter(rm_base.model, "reward-0", LoraSettings(r=4, alpha=8))
    head = ScalarHead(32, generator=torch.Generator().manual_seed(3))
    save_member(peft, head, tmp_path / "rm", "reward-0")
    write_manifest(tmp_path / "rm", base_model=model_dir, hidden_size=32, members=["reward-0"],
                   norm={"reward-0": {"mean": 0.0, "std": 1.0}})

    out, events, base = run(model_dir, tmp_path / "ppo", cfg(total_updates=2), reward=str(tmp_path / "rm"))
    assert set(base.model.peft_config) == {"policy", "reward-0"}
    trainable = {n for n, p in base.model.named_parameters() if p.requires_grad}
    assert trainable and all(".policy." in n for n in trainable)
    assert "objective/scores" in metrics_by_step(events)[2]
    from safetensors.torch import load_file

    value = load_file(str(tmp_path / "ppo" / "policy" / "value" / "head.safetensors"))
    assert value["weight"].shape == head.linear.weight.shape
    # the critic started at 0 (not the reward head, which reads other features) and learnt
    assert float(value["weight"].abs().sum()) > 0


def test_bad_input_is_explained(model_dir, tmp_path):
    base = load_model(model_dir)
    with pytest.raises(ValueError, match="prompt set is empty"):
        train_ppo(cfg(), [], base=base, reward=rule, output_dir=tmp_path, sink=lambda e: None)
    with pytest.raises(ValueError, match="multiple of minibatch_size"):
        train_ppo(cfg(batch_size=6, minibatch_size=4), prompts(), base=base, reward=rule, output_dir=tmp_path,
                  sink=lambda e: None)
    with pytest.raises(ValueError, match="ensemble_mode"):
        train_ppo(cfg(ensemble_mode="max"), prompts(), base=base, reward=rule, output_dir=tmp_path,
                  sink=lambda e: None)


def test_batch_indices_deterministic_epochs():
    n, b = 10, 4
    seen = [i for step in range(1, 6) for i in batch_indices(n, b, step, seed=7)]
    assert sorted(seen[:10]) == list(range(10))  # first epoch covers every prompt once
    assert sorted(seen[10:20]) == list(range(10))
    assert seen == [i for step in range(1, 6) for i in batch_indices(n, b, step, seed=7)]
    assert seen != [i for step in range(1, 6) for i in batch_indices(n, b, step, seed=8)]


def test_four_bit_base(model_dir, tmp_path):
    """nf4 base (bitsandbytes on CPU): the policy adapter trains, checkpoints and resumes on it."""
    pytest.importorskip("bitsandbytes")
    c = cfg(total_updates=2, checkpoint_every=1, four_bit=True)
    base = load_model(model_dir, four_bit=True)
    events = []
    train_ppo(c, prompts(), base=base, reward=rule, output_dir=tmp_path, sink=events.append)
    assert sorted(metrics_by_step(events)) == [1, 2]
    trainable = {n for n, p in base.model.named_parameters() if p.requires_grad}
    assert trainable and all(".policy." in n for n in trainable)
    again = load_model(model_dir, four_bit=True)
    events = []
    train_ppo(cfg(total_updates=3, checkpoint_every=1, four_bit=True), prompts(), base=again, reward=rule,
              output_dir=tmp_path, sink=events.append, resume_from=tmp_path / "checkpoints" / "step-000002")
    assert sorted(metrics_by_step(events)) == [3]


def test_cancel_checkpoints_the_last_finished_step(model_dir, tmp_path):
    from tuilab.training.events import CancelledRun

    control = RunControl()

    def cancel_after_two(e):
        if isinstance(e, Metrics) and e.step == 2:
            control.cancel()

    with pytest.raises(CancelledRun):
        run(model_dir, tmp_path, cfg(total_updates=5, checkpoint_every=0), control=control, sink=cancel_after_two)
    assert find_latest_checkpoint(tmp_path).name == "step-000002"
    _, events, _ = run(model_dir, tmp_path, cfg(total_updates=5, checkpoint_every=0),
                       resume_from=find_latest_checkpoint(tmp_path))
    assert sorted(metrics_by_step(events)) == [3, 4, 5]


def test_microbatches_give_the_minibatch_gradient(model_dir, tmp_path, monkeypatch):
    """Splitting each minibatch into one-row passes changes memory, not the update."""
    import tuilab.training.ppo as ppo

    c = cfg(total_updates=3, sample_every=0)
    _, whole, _ = run(model_dir, tmp_path / "whole", c)
    monkeypatch.setattr(ppo, "MICROBATCH_TOKENS", {"cpu": 1})
    _, split, _ = run(model_dir, tmp_path / "split", c)
    a, b = metrics_by_step(whole), metrics_by_step(split)
    for step in (1, 2, 3):
        for name in ("objective/scores", "objective/kl", "loss/policy_avg", "loss/value_avg",
                     "policy/clipfrac_avg", "policy/approxkl_avg", "policy/entropy_avg"):
            assert b[step][name] == pytest.approx(a[step][name], rel=1e-3, abs=1e-5), (step, name)


def test_sampled_hidden_states_match_a_fresh_forward(model_dir):
    """Old log-probs/values come from the sampler's hidden states: the same as a forward pass."""
    from tuilab.modeling.chat import prompt_ids
    from tuilab.training import ppo

    base = load_model(model_dir)
    c = cfg(max_new_tokens=12)
    model = ppo.prepare_policy(base, c)
    with torch.no_grad():  # a policy that differs from the reference, so the adapter matters
        for name, p in model.named_parameters():
            if "lora_B.policy" in name:
                p.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(1))
    body, lm_head = ppo._body_and_head(model)
    ids = [prompt_ids(base.tokenizer, p.messages) for p in prompts(6)]
    for with_reference in (False, True):  # alone, and with the reference's rows decoded in the same batch
        capture = ppo._SampledHidden(body)
        ref_gen = torch.Generator().manual_seed(1) if with_reference else None
        ro, _ = ppo._generate(model, base.tokenizer, ids, c, torch.Generator().manual_seed(0), reference=ref_gen)
        capture.close()
        lengths = [int(n) for n in ro.mask.sum(1).tolist()]
        assert len(set(lengths)) > 1 or max(lengths) == 12  # rows of different lengths exercise the row drop
        assert ro.decoded_lengths[: len(ids)] == lengths and len(ro.decoded_lengths) == len(ids) * (1 + with_reference)
        h = capture.assemble(ro.decoded_lengths, max(ro.decoded_lengths))[: len(ids), : ro.mask.shape[1]]
        with torch.no_grad():
            _, h_fwd, width = ppo._forward(body, lm_head, ro, torch.arange(len(ids)), 1.0)
        m = ro.mask[:, :, None]
        assert width == ro.mask.shape[1]
        assert torch.allclose(h * m, h_fwd * m, atol=1e-4)
    # a capture that does not line up is refused (the loop then runs the forward pass)
    assert capture.assemble([n + 1 for n in ro.decoded_lengths], max(ro.decoded_lengths) + 1) is None


def test_reference_answers_decoded_beside_the_policy_are_the_reference_policys(model_dir):
    """The reference rows of a mixed batch (adapters off for them, their own stream) are what a separate
    adapters-off call draws, and the policy's rows are what it draws without them."""
    from tuilab.modeling.chat import prompt_ids
    from tuilab.modeling.generation import sample
    from tuilab.modeling.lora import adapters_disabled
    from tuilab.training import ppo

    base = load_model(model_dir)
    c = cfg(max_new_tokens=10, temperature=0.8)
    model = ppo.prepare_policy(base, c)
    with torch.no_grad():  # a policy far from the reference, so that a wrong adapter shows in the tokens
        for name, p in model.named_parameters():
            if "lora_B.policy" in name:
                p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(2))
    ids = [prompt_ids(base.tokenizer, p.messages) for p in prompts(5)]
    ro, refs = ppo._generate(model, base.tokenizer, ids, c, torch.Generator().manual_seed(0),
                             reference=torch.Generator().manual_seed(1))
    alone, none = ppo._generate(model, base.tokenizer, ids, c, torch.Generator().manual_seed(0))
    assert none is None and ro.tokens == alone.tokens and torch.equal(ro.input_ids, alone.input_ids)
    with adapters_disabled(model):
        sb = sample(model, base.tokenizer, ids, max_new_tokens=10, temperature=0.8,
                    generator=torch.Generator().manual_seed(1))
    expected = base.tokenizer.batch_decode(
        [r[: n - 1] if f else r[:n] for r, n, f in zip(sb.response_ids.tolist(), sb.lengths, sb.finished, strict=True)],
        skip_special_tokens=True)
    assert refs == expected
    assert refs != ro.texts  # the two policies differ here: the test can tell them apart


def test_the_critic_learns_at_its_own_rate(model_dir, tmp_path):
    """The value head steps at value_learning_rate, the policy adapter at learning_rate (one group would move
    the head as far as the adapter: ~4e-2 here)."""
    from safetensors.torch import load_file

    run(model_dir, tmp_path, cfg(total_updates=1, sample_every=0, learning_rate=1e-2, value_learning_rate=1e-6))
    head = load_file(str(tmp_path / "policy" / "value" / "head.safetensors"))
    moved = max(float(t.abs().max()) for t in head.values())  # the head starts at 0
    # 2 epochs × 2 minibatches of Adam steps, each at most ~lr per weight
    assert 0 < moved <= 4 * 1e-6 * 1.05, moved
    lora_b = [t for k, t in load_file(str(tmp_path / "policy" / "adapter_model.safetensors")).items()
              if "lora_B" in k]
    assert max(float(t.abs().max()) for t in lora_b) > 1e-3  # the adapter moved at 1e-2


def test_resume_from_a_checkpoint_with_one_optimiser_group(model_dir, tmp_path):
    """Checkpoints written before the critic had its own group (policy + value head in one) still resume,
    with Adam's state carried over exactly."""
    c = cfg(total_updates=2, checkpoint_every=1, sample_every=0)
    _, full_events, _ = run(model_dir, tmp_path / "full", c)
    ckpt = tmp_path / "full" / "checkpoints" / "step-000001"
    state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
    policy_group, value_group = state["optimizer"]["param_groups"]
    state["optimizer"]["param_groups"] = [{**policy_group, "params": policy_group["params"] + value_group["params"]}]
    torch.save(state, ckpt / "trainer_state.pt")
    _, resumed_events, _ = run(model_dir, tmp_path / "full", c, resume_from=ckpt)
    full, resumed = metrics_by_step(full_events), metrics_by_step(resumed_events)
    assert sorted(resumed) == [2]
    for name in ("objective/scores", "loss/value_avg", "val/value_mean", "policy/approxkl_avg"):
        assert resumed[2][name] == pytest.approx(full[2][name], rel=1e-4, abs=1e-6), name


def test_packed_forward_equals_the_plain_one(model_dir):
    """Packing a batch's rows into one (their common prefix once, no padding) gives each row's own
    forward: hidden states, logits and LoRA gradients, for prompts and answers of different lengths,
    with the adapter on and off."""
    from tuilab.modeling.chat import prompt_ids
    from tuilab.modeling.lora import adapters_disabled
    from tuilab.modeling.trunk import shared_start
    from tuilab.training import ppo

    base = load_model(model_dir)
    c = cfg(max_new_tokens=10)
    model = ppo.prepare_policy(base, c)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B.policy" in name:
                p.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(3))
    body, lm_head = ppo._body_and_head(model)
    texts = ["q 1", "a much longer question with many more words 2", "q 33 yes", "yes no yes no 4"]
    ids = [prompt_ids(base.tokenizer, [{"role": "user", "content": t}]) for t in texts]
    assert len({len(i) for i in ids}) > 1
    ro, _ = ppo._generate(model, base.tokenizer, ids, c, torch.Generator().manual_seed(0))
    # Answers of different lengths, as rows that ended early (EOS) leave them: padding to skip.
    ro = ppo.replace(ro, mask=ro.mask.clone(), attention_mask=ro.attention_mask.clone())
    for row, keep in ((0, 3), (2, 6)):
        ro.mask[row, keep:] = 0
        ro.attention_mask[row, ro.q_len + keep :] = 0
    assert len({int(n) for n in ro.mask.sum(1)}) == 3
    shared = ppo.replace(ro, packed=True, prefix=shared_start(ids))
    assert shared.prefix >= 8
    m = ro.mask[:, :, None]
    for rows in (torch.arange(4), torch.tensor([3, 1])):
        for ctx in (contextlib.nullcontext, lambda: adapters_disabled(model)):
            with torch.no_grad(), ctx():
                lp_a, h_a, w_a = ppo._forward(body, lm_head, ro, rows, 0.7)
                lp_b, h_b, w_b = ppo._forward(body, lm_head, shared, rows, 0.7)
            assert w_a == w_b
            mr = m[rows, :w_a]
            assert torch.allclose(h_a * mr, h_b * mr, atol=1e-5)
            assert torch.allclose(lp_a * mr, lp_b * mr, atol=1e-4)
    lora = [p for n, p in model.named_parameters() if "lora_" in n and ".policy." in n]
    grads = []
    for r in (ro, shared):
        model.zero_grad(set_to_none=True)
        logits, h, w = ppo._forward(body, lm_head, r, torch.arange(4), 1.0)
        lp = torch.log_softmax(logits, -1).gather(-1, r.response_ids[:, :w, None]).squeeze(-1)
        (lp * r.mask[:, :w]).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in lora]))
    assert grads[0].abs().max() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def packed_rollout(model_dir):
    """Three rollouts of a fresh policy on the tiny model, marked for packed forwards."""
    from tuilab.modeling.chat import prompt_ids
    from tuilab.modeling.trunk import shared_start
    from tuilab.training import ppo

    base = load_model(model_dir)
    c = cfg(max_new_tokens=6)
    model = ppo.prepare_policy(base, c)
    body, lm_head = ppo._body_and_head(model)
    ids = [prompt_ids(base.tokenizer, p.messages) for p in prompts(3)]
    ro, _ = ppo._generate(model, base.tokenizer, ids, c, torch.Generator().manual_seed(0))
    ro.packed, ro.prefix = True, shared_start(ids)
    return base, model, body, lm_head, ro


def test_packing_that_disagrees_is_turned_off_and_said(model_dir):
    from tuilab.training import ppo

    base, model, body, lm_head, ro = packed_rollout(model_dir)
    said = []
    parts = ppo._Parts(model=model, body=body, lm_head=lm_head, tokenizer=base.tokenizer, value_head=None,
                       optimizer=None, scheduler=None, kl_ctl=None, gens={}, monitor=None, score_fn=rule,
                       gold=None, sink=said.append, pack_rows=True, pack_tol=1e-3)
    assert ppo._packing_agrees(parts, ro, 1) and not said
    parts.pack_tol = -1.0  # nothing agrees with a negative tolerance
    assert not ppo._packing_agrees(parts, ro, 1)
    assert [w.code for w in said] == ["share_prefix_off"] and "every row runs on its own" in said[0].message


def test_a_batch_too_long_to_pack_runs_padded(model_dir, monkeypatch):
    """A packed line's attention mask grows with its square: past PACK_TOKENS the rows run padded."""
    from tuilab.training import ppo

    base, model, body, lm_head, ro = packed_rollout(model_dir)
    calls = []
    packed = ppo._forward_packed
    monkeypatch.setattr(ppo, "_forward_packed", lambda *a: calls.append(1) or packed(*a))
    with torch.no_grad():
        ppo._forward(body, lm_head, ro, torch.arange(3), 1.0)
        assert calls == [1]
        line = int(ro.attention_mask.sum()) - 2 * ro.prefix
        monkeypatch.setattr(ppo, "PACK_TOKENS", line - 1)
        ppo._forward(body, lm_head, ro, torch.arange(3), 1.0)
    assert calls == [1]
