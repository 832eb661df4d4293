"""DPO: the losses against hand-computed values, and the loop on a tiny real model (packed = plain log-probs,
a frozen reference, learning, events, resume)."""

from __future__ import annotations

import math
import random

import pytest
import torch

from tuilab.config import DPOConfig
from tuilab.modeling.loading import load_model
from tuilab.records import PreferencePair
from tuilab.training.dpo import (
    POLICY,
    _engine,
    dpo_loss,
    find_latest_checkpoint,
    packed_logps,
    plain_logps,
    prepare_policy,
    reference_logps,
    train_dpo,
)
from tuilab.training.events import CancelledRun, Checkpoint, Finished, Metrics, RunControl, Samples
from tuilab.training.packing import encode_pairs

GOOD = ["yes", "great", "good", "answer", "Paris", "Rome"]
BAD = ["no", "bad", "short", "maybe", "sea", "wind"]
TOPICS = ["rainbow", "France", "Italy", "poem", "code", "sea", "capital", "wind", "grey", "shore"]


def rule_pairs(n: int, seed: int = 0, test_every: int = 4) -> list[PreferencePair]:
    """Chosen answers are made of GOOD words, rejected of BAD words; every `test_every`-th prompt is held out."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = f"Tell me about {rng.choice(TOPICS)} {rng.choice(TOPICS)} #{i}"
        k = rng.randint(2, 5)
        chosen = " ".join(rng.choice(GOOD) for _ in range(k))
        rejected = " ".join(rng.choice(BAD) for _ in range(rng.randint(2, 5)))
        split = "test" if i % test_every == 0 else "train"
        out.append(PreferencePair(i + 1, i + 1, [{"role": "user", "content": prompt}], chosen, rejected, None, 1.0,
                                  split))
    return out


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The tiny chat model with 10× embeddings (tied LM head): its log-probs move far enough in a few LoRA steps."""
    from tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("dpo") / "tiny-expressive", sharpen=True)


def _randomise_lora(model, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_shared_prefix_path_equals_plain_path(model_dir):
    base = load_model(model_dir)
    cfg = DPOConfig(batch_size=4)
    model, _ = prepare_policy(base, cfg)
    _randomise_lora(model)  # the adapter must matter for the check to mean anything
    pairs = rule_pairs(6)
    pairs[1].rejected = pairs[1].chosen + " no"  # answers sharing their start: shared prefix beyond the prompt
    encoded, _ = encode_pairs(base.tokenizer, pairs, 512)
    assert encoded[1].shared > len(encoded[1].chosen) - encoded[1].chosen_tokens - 1
    engine = _engine(model, base.tokenizer, cfg)
    pad = base.tokenizer.pad_token_id
    pc, pr = plain_logps(engine.body, engine.lm_head, encoded, pad)
    for share_batch_prefix in (False, True):
        qc, qr = packed_logps(engine.body, engine.lm_head, encoded, pad, share_batch_prefix=share_batch_prefix)
        assert torch.allclose(qc, pc, atol=1e-5, rtol=0) and torch.allclose(qr, pr, atol=1e-5, rtol=0)

    # Gradients through the cached prefix keys/values are those of the plain path too.
    def grads(fn) -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        c, r = fn()
        (c - 0.5 * r).sum().backward()
        return torch.cat([p.grad.flatten() for n, p in model.named_parameters() if p.grad is not None])

    g_plain = grads(lambda: plain_logps(engine.body, engine.lm_head, encoded, pad))
    g_packed = grads(lambda: packed_logps(engine.body, engine.lm_head, encoded, pad, share_batch_prefix=True))
    assert torch.allclose(g_packed, g_plain, atol=1e-4, rtol=1e-4)


def test_answer_logps_are_the_sum_over_answer_tokens(model_dir):
    """One pair computed by hand from the model's logits: the EOS counts, the prompt does not."""
    base = load_model(model_dir)
    model, _ = prepare_policy(base, DPOConfig())
    (pair,), _ = encode_pairs(base.tokenizer, rule_pairs(1), 512)
    engine = _engine(model, base.tokenizer, DPOConfig())
    with torch.no_grad():
        c, _ = plain_logps(engine.body, engine.lm_head, [pair], base.tokenizer.pad_token_id)
        logits = model(input_ids=torch.tensor([pair.chosen])).logits[0].log_softmax(-1)
    start = len(pair.chosen) - pair.chosen_tokens - 1
    want = sum(float(logits[j - 1, pair.chosen[j]]) for j in range(start, len(pair.chosen)))
    assert float(c[0]) == pytest.approx(want, abs=1e-4)


def _cfg(**kw) -> DPOConfig:
    defaults = dict(learning_rate=5e-3, epochs=4, batch_size=8, beta=0.1, min_pairs=8, sample_every=0,
                    checkpoint_every=0, max_new_tokens=8, sample_prompts=4)
    defaults.update(kw)
    return DPOConfig(**defaults)


def test_dpo_raises_held_out_accuracy_and_keeps_the_reference(model_dir, tmp_path):
    base = load_model(model_dir)
    pairs = rule_pairs(64)
    cfg = _cfg()
    events: list = []
    model, _ = prepare_policy(base, cfg)
    engine = _engine(model, base.tokenizer, cfg)
    encoded, _ = encode_pairs(base.tokenizer, pairs, 512)
    ref_before = reference_logps(model, engine, encoded, 8)
    final = train_dpo(cfg, pairs, base=base, output_dir=tmp_path / "run", sink=events.append)
    assert final["eval/pairs"] == 16 and final["train/pairs"] == 48
    assert final["eval/accuracy"] >= 0.9, final
    assert final["eval/rewards/margins"] > 0
    # The reference (adapters off) is untouched by training, and the policy moved.
    ref_after = reference_logps(base.model, engine, encoded, 8)
    assert torch.equal(ref_before, ref_after)
    with torch.no_grad():
        pol_c, _ = engine.logps(encoded[:8])
    assert (pol_c - ref_before[:8, 0]).abs().max() > 1e-2
    train_steps = [e for e in events if isinstance(e, Metrics) and "loss" in e.values]
    names = {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
             "logps/rejected", "loss"}
    assert names <= set(train_steps[-1].values)
    assert train_steps[-1].values["rewards/accuracies"] >= train_steps[0].values["rewards/accuracies"]
    assert isinstance(events[-1], Finished)
    assert (tmp_path / "run" / POLICY / "adapter_model.safetensors").exists()


def test_saved_adapter_loads_with_peft(model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = load_model(model_dir)
    pairs = rule_pairs(24)
    train_dpo(_cfg(epochs=1), pairs, base=base, output_dir=tmp_path / "run", sink=lambda e: None)
    plain = AutoModelForCausalLM.from_pretrained(model_dir)
    loaded = PeftModel.from_pretrained(plain, str(tmp_path / "run" / POLICY))
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        want = base.model(input_ids=ids).logits
        got = loaded(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-5)


def test_samples_flags_and_kl_on_held_out_prompts(model_dir, tmp_path):
    base = load_model(model_dir)
    events: list = []
    cfg = _cfg(epochs=2, sample_every=3, gold_scorer="")
    train_dpo(cfg, rule_pairs(32), base=base, output_dir=tmp_path / "run", sink=events.append,
              gold=lambda prompts, texts: [float(len(t)) for t in texts])
    samples = [e for e in events if isinstance(e, Samples)]
    assert [s.step for s in samples] == [1, 4]  # 24 train pairs: 3 steps per epoch, 6 in all
    rows = samples[-1].rows
    assert len(rows) == 4 and all(r.ref_response is not None and r.kl is not None for r in rows)
    assert all(r.gold == float(len(r.response)) for r in rows)
    assert all(r.score == pytest.approx(0.1 * r.kl, abs=1e-5) for r in rows)  # implicit reward = β·log-ratio
    # Step 1 samples the reference itself: the log-ratio is zero.
    assert all(abs(r.kl) < 1e-4 for r in samples[0].rows)
    at_samples = [e.values for e in events if isinstance(e, Metrics) and "objective/kl" in e.values]
    assert {"objective/scores", "objective/gold", "response/length_mean", "eval/accuracy",
            "diag/length_ratio"} <= set(at_samples[-1])


def test_cancel_then_resume_matches_an_uninterrupted_run(model_dir, tmp_path):
    pairs = rule_pairs(32)
    cfg = _cfg(epochs=2, checkpoint_every=2, sample_every=2)  # 3 steps per epoch, 6 in all

    straight: list = []
    train_dpo(cfg, pairs, base=load_model(model_dir), output_dir=tmp_path / "a", sink=straight.append)

    control = RunControl()
    first: list = []

    def sink(e):
        first.append(e)
        if isinstance(e, Metrics) and e.step == 3 and "loss" in e.values:
            control.cancel()

    with pytest.raises(CancelledRun):
        train_dpo(cfg, pairs, base=load_model(model_dir), output_dir=tmp_path / "b", sink=sink, control=control)
    ckpt = find_latest_checkpoint(tmp_path / "b")
    assert ckpt is not None and ckpt.name == "step-000003"
    assert any(isinstance(e, Checkpoint) and e.step == 3 for e in first)
    second: list = []
    train_dpo(cfg, pairs, base=load_model(model_dir), output_dir=tmp_path / "b", sink=second.append,
              resume_from=ckpt)

    def losses(evs, lo):
        return {e.step: e.values["loss"] for e in evs if isinstance(e, Metrics) and "loss" in e.values
                and e.step >= lo}

    assert losses(second, 4).keys() == {4, 5, 6}
    for s, v in losses(second, 4).items():
        assert v == pytest.approx(losses(straight, 4)[s], abs=1e-5)
    texts = [r.response for e in second if isinstance(e, Samples) for r in e.rows]
    want = [r.response for e in straight if isinstance(e, Samples) and e.step >= 4 for r in e.rows]
    assert texts == want


def test_too_few_pairs_says_why(model_dir, tmp_path):
    from tuilab.training.reward import NotEnoughPairs

    pairs = rule_pairs(6)
    with pytest.raises(NotEnoughPairs, match="6 usable, 16 needed"):
        train_dpo(DPOConfig(), pairs, base=load_model(model_dir), output_dir=tmp_path, sink=lambda e: None,
                  left_out={"both_bad": 3})


def test_bad_config_is_one_sentence(model_dir, tmp_path):
    with pytest.raises(ValueError, match="loss must be one of"):
        train_dpo(DPOConfig(loss="kto"), rule_pairs(20), base=load_model(model_dir), output_dir=tmp_path,
                  sink=lambda e: None)


# ------------------------------------------------------------------ 4-bit (QLoRA) base

def test_four_bit_qlora_policy_learns_and_keeps_its_reference(tmp_path):
    """nf4 base (bitsandbytes on the CPU): packed = plain, the policy learns, the reference (adapters off) stays."""
    bnb = pytest.importorskip("bitsandbytes")
    from peft import PeftModel
    from tiny import save_tiny_model

    from tuilab.training.events import RunWarning

    folder = save_tiny_model(tmp_path / "tiny64", hidden=64, sharpen=True)  # 4-bit blocks need ≥ 64 columns

    base = load_model(folder, four_bit=True)
    assert base.four_bit and any(isinstance(m, bnb.nn.Linear4bit) for m in base.model.modules())
    cfg = _cfg(four_bit=True)
    policy, params = prepare_policy(base, cfg)
    assert params and all(p.dtype == torch.float32 for p in params)  # the adapter trains in full precision
    engine = _engine(policy, base.tokenizer, cfg)
    pairs = rule_pairs(64)
    encoded, _ = encode_pairs(base.tokenizer, pairs, 512)
    pad = base.tokenizer.pad_token_id
    _randomise_lora(policy)
    with torch.no_grad():
        pc, pr = plain_logps(engine.body, engine.lm_head, encoded[:6], pad)
        qc, qr = packed_logps(engine.body, engine.lm_head, encoded[:6], pad)
    assert torch.allclose(qc, pc, atol=1e-4, rtol=0) and torch.allclose(qr, pr, atol=1e-4, rtol=0)

    base = load_model(folder, four_bit=True)
    policy, _ = prepare_policy(base, cfg)
    engine = _engine(policy, base.tokenizer, cfg)
    ref_before = reference_logps(policy, engine, encoded, 8)
    events: list = []
    final = train_dpo(cfg, pairs, base=base, output_dir=tmp_path / "run", sink=events.append)
    assert not [e for e in events if isinstance(e, RunWarning) and e.code == "share_prefix_off"]
    assert final["eval/accuracy"] >= 0.9 and final["eval/rewards/margins"] > 0, final
    assert torch.equal(reference_logps(base.model, engine, encoded, 8), ref_before)
    with torch.no_grad():
        moved, _ = engine.logps(encoded[:8])
    assert (moved - ref_before[:8, 0]).abs().max() > 1e-2

    # The saved adapter on a fresh 4-bit base gives the trained policy's log-probs.
    fresh = load_model(folder, four_bit=True)
    loaded = PeftModel.from_pretrained(fresh.model, str(tmp_path / "run" / POLICY))
    again = _engine(loaded, fresh.tokenizer, cfg)
    with torch.no_grad():
        got, _ = again.logps(encoded[:8])
    assert torch.allclose(got, moved, atol=1e-4, rtol=0)


# ------------------------------------------------------------------ the fallback to plain rows

def _sliding_window_model(path, window: int):
    """A tiny Mistral attending within `window` tokens: its plain forward applies the window, a packed row's
    mask does not, so the packed path is wrong on it. Attention outputs scaled up so the window shows."""
    from tiny import build_tokenizer
    from transformers import MistralConfig, MistralForCausalLM

    tok = build_tokenizer()
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                           tie_word_embeddings=True, sliding_window=window, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = MistralForCausalLM(config).eval()
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.mul_(20.0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_check_sharing_switches_packing_off_where_it_disagrees(model_dir, tmp_path):
    from tuilab.training.dpo import check_sharing
    from tuilab.training.events import RunWarning

    folder = _sliding_window_model(tmp_path / "sw", window=2)
    cfg = DPOConfig()
    for path, should_share in ((model_dir, True), (folder, False)):
        base = load_model(path)
        policy, _ = prepare_policy(base, cfg)
        engine = _engine(policy, base.tokenizer, cfg)
        encoded, _ = encode_pairs(base.tokenizer, rule_pairs(4), 512)
        pad = base.tokenizer.pad_token_id
        with torch.no_grad():
            plain = torch.cat(plain_logps(engine.body, engine.lm_head, encoded, pad))
            packed = torch.cat(packed_logps(engine.body, engine.lm_head, encoded, pad, share_batch_prefix=False))
        assert ((packed - plain).abs().max() < 1e-4) == should_share  # the model really is (in)compatible
        events: list = []
        check_sharing(engine, encoded[:2], True, events.append)
        assert engine.share == engine.batch_prefix == should_share
        warned = [e for e in events if isinstance(e, RunWarning) and e.code == "share_prefix_off"]
        assert len(warned) == (0 if should_share else 1)
        with torch.no_grad():
            got = torch.cat(engine.logps(encoded))
        assert torch.allclose(got, plain, atol=1e-4, rtol=0)  # what the run computes is the plain result


def test_training_on_the_fallback_path_equals_training_without_packing(tmp_path):
    """A sliding-window model trains on plain rows, says so once, and learns exactly as with share_prefix off."""
    from tuilab.training.events import RunWarning

    folder = _sliding_window_model(tmp_path / "sw", window=2)
    pairs = rule_pairs(32)

    def run(name: str, share: bool) -> tuple[list, dict]:
        events: list = []
        final = train_dpo(_cfg(epochs=2, share_prefix=share), pairs, base=load_model(folder),
                          output_dir=tmp_path / name, sink=events.append)
        return events, final

    fallback, final = run("a", True)
    plain, _ = run("b", False)
    warned = [e for e in fallback if isinstance(e, RunWarning) and e.code == "share_prefix_off"]
    assert len(warned) == 1 and "sliding window of 2 tokens" in warned[0].message
    assert not [e for e in plain if isinstance(e, RunWarning)]

    def losses(events):
        return [e.values["loss"] for e in events if isinstance(e, Metrics) and "loss" in e.values]

    assert len(losses(fallback)) == 6
    assert losses(fallback) == pytest.approx(losses(plain), abs=1e-6)
    assert final["eval/rewards/margins"] > 0


# ------------------------------------------------------------------ the losses and the implicit reward, by hand

# Summed answer log-probs of two pairs: policy and reference, chosen and rejected.
PC = torch.tensor([-10.0, -20.0])
PR = torch.tensor([-12.0, -18.0])
RC = torch.tensor([-11.0, -19.0])
RR = torch.tensor([-11.5, -19.5])
# h = (PC − RC) − (PR − RR) = [1 − (−0.5), −1 − 1.5] = [1.5, −2.5]
H = [1.5, -2.5]


def logsig(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_implicit_reward_is_beta_times_log_ratio():
    out = dpo_loss(PC, PR, RC, RR, beta=0.1)
    assert out.chosen_rewards.tolist() == pytest.approx([0.1 * 1.0, 0.1 * -1.0])
    assert out.rejected_rewards.tolist() == pytest.approx([0.1 * -0.5, 0.1 * 1.5])


def test_sigmoid_loss_by_hand():
    out = dpo_loss(PC, PR, RC, RR, loss_type="sigmoid", beta=0.1)
    want = sum(-logsig(0.1 * h) for h in H) / 2
    assert float(out.loss) == pytest.approx(want, rel=1e-6)


def test_label_smoothing_is_conservative_dpo():
    eps = 0.2
    out = dpo_loss(PC, PR, RC, RR, loss_type="sigmoid", beta=0.5, label_smoothing=eps)
    want = sum(-(1 - eps) * logsig(0.5 * h) - eps * logsig(-0.5 * h) for h in H) / 2
    assert float(out.loss) == pytest.approx(want, rel=1e-6)


def test_tie_label_pulls_toward_equal_rewards():
    out = dpo_loss(PC, PR, RC, RR, beta=1.0, labels=torch.tensor([0.5, 0.5]))
    want = sum(-0.5 * logsig(h) - 0.5 * logsig(-h) for h in H) / 2
    assert float(out.loss) == pytest.approx(want, rel=1e-6)


def test_margin_is_an_offset_on_the_logit():
    out = dpo_loss(PC, PR, RC, RR, beta=1.0, margins=torch.tensor([1.0, 0.0]))
    want = (-logsig(1.5 - 1.0) - logsig(-2.5)) / 2
    assert float(out.loss) == pytest.approx(want, rel=1e-6)


def test_ipo_per_token_squared_gap():
    lc, lr = torch.tensor([5.0, 10.0]), torch.tensor([2.0, 4.0])
    out = dpo_loss(PC, PR, RC, RR, loss_type="ipo", beta=0.1, chosen_lengths=lc, rejected_lengths=lr)
    gaps = [1.0 / 5 - (-0.5) / 2, -1.0 / 10 - 1.5 / 4]
    want = sum((g - 1 / (2 * 0.1)) ** 2 for g in gaps) / 2
    assert float(out.loss) == pytest.approx(want, rel=1e-6)


def test_ipo_tie_targets_zero_gap():
    lc = lr = torch.tensor([1.0, 1.0])
    out = dpo_loss(PC, PR, RC, RR, loss_type="ipo", beta=0.1, chosen_lengths=lc, rejected_lengths=lr,
                   labels=torch.tensor([0.5, 0.5]))
    assert float(out.loss) == pytest.approx((1.5**2 + 2.5**2) / 2, rel=1e-6)


def test_hinge_slic_by_hand():
    out = dpo_loss(PC, PR, RC, RR, loss_type="hinge", beta=0.5)
    want = (max(0.0, 1 - 0.75) + max(0.0, 1 + 1.25)) / 2
    assert float(out.loss) == pytest.approx(want, rel=1e-6)


def test_rdpo_adds_the_length_term():
    lc, lr = torch.tensor([30.0, 10.0]), torch.tensor([10.0, 30.0])
    alpha = 0.05
    out = dpo_loss(PC, PR, RC, RR, loss_type="rdpo", beta=0.1, alpha=alpha, chosen_lengths=lc, rejected_lengths=lr)
    want = (-logsig(0.1 * 1.5 + alpha * 20) - logsig(0.1 * -2.5 - alpha * 20)) / 2
    assert float(out.loss) == pytest.approx(want, rel=1e-6)
    plain = dpo_loss(PC, PR, RC, RR, loss_type="sigmoid", beta=0.1)
    zero = dpo_loss(PC, PR, RC, RR, loss_type="rdpo", beta=0.1, alpha=0.0, chosen_lengths=lc, rejected_lengths=lr)
    assert float(zero.loss) == pytest.approx(float(plain.loss))


def test_rdpo_needs_a_smaller_log_ratio_gap_when_chosen_is_longer():
    """The length-driven share of a preference is explained by α·Δlen: the gradient on h shrinks."""
    h = torch.zeros(1, requires_grad=True)
    lc, lr = torch.tensor([40.0]), torch.tensor([10.0])
    zero = torch.zeros(1)
    dpo_loss(h, zero, zero, zero, loss_type="rdpo", beta=0.1, alpha=0.05, chosen_lengths=lc,
             rejected_lengths=lr).loss.backward()
    g_rdpo = float(h.grad)
    h.grad = None
    dpo_loss(h, zero, zero, zero, loss_type="sigmoid", beta=0.1).loss.backward()
    assert abs(g_rdpo) < abs(float(h.grad))


def test_gradients_point_toward_the_chosen_answer():
    for loss_type in ("sigmoid", "ipo", "hinge", "rdpo"):
        pc = torch.zeros(2, requires_grad=True)
        pr = torch.zeros(2, requires_grad=True)
        ones = torch.ones(2)
        dpo_loss(pc, pr, torch.zeros(2), torch.zeros(2), loss_type=loss_type, beta=0.1, chosen_lengths=ones,
                 rejected_lengths=ones).loss.backward()
        assert (pc.grad < 0).all() and (pr.grad > 0).all(), loss_type


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="loss must be one of"):
        dpo_loss(PC, PR, RC, RR, loss_type="kto")
