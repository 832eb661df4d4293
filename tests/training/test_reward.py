"""Bradley–Terry reward-model training on a tiny real model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.jobs.rm_data import make_pairs
from tuilab.config import RewardConfig
from tuilab.training.events import Metrics, RunControl, RunWarning
from tuilab.training.packing import (
    encode_pairs,
)
from tuilab.training.reward import NotEnoughPairs, split_eval, train_reward_model, usable_pairs


def quick_cfg(**kw) -> RewardConfig:
    base = dict(learning_rate=3e-3, epochs=4, batch_size=8, checkpoint_every=0, warmup_ratio=0.0, min_pairs=8)
    base.update(kw)
    return RewardConfig(**base)


def train_losses(events) -> list[float]:
    return [e.values["train/loss"] for e in events if isinstance(e, Metrics) and "train/loss" in e.values]


def test_loss_falls_and_accuracy_rises_on_a_learnable_rule(tiny_model_dir, tmp_path):
    events = []
    metrics = train_reward_model(
        quick_cfg(), make_pairs(64), base=tiny_model_dir, output_dir=tmp_path / "rm", sink=events.append,
        control=RunControl(),
    )
    losses = train_losses(events)
    assert len(losses) == metrics["steps"] == 4 * math.ceil(metrics["train/pairs"] / 8)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    evals = [e.values for e in events if isinstance(e, Metrics) and "eval/accuracy" in e.values]
    assert len(evals) >= 4  # after each epoch, and at the end
    assert evals[-1]["eval/accuracy"] >= 0.9
    assert metrics["eval/accuracy"] >= 0.9 and metrics["eval/margin"] > 0
    assert 0 <= metrics["eval/ece"] <= 1
    assert metrics["eval/pairs"] + metrics["train/pairs"] == 64
    # Metrics carry the total so a progress bar knows where it is.
    assert {e.total_steps for e in events if isinstance(e, Metrics)} == {metrics["steps"]}
    manifest = json.loads((tmp_path / "rm" / "reward.json").read_text())
    assert manifest["members"] == ["reward-0"]
    assert manifest["hidden_size"] == 32
    assert set(manifest["norm"]["reward-0"]) == {"mean", "std"}
    member = tmp_path / "rm" / "reward-0"
    for name in ("adapter_config.json", "adapter_model.safetensors", "head.safetensors"):
        assert (member / name).exists(), name


def test_saved_adapter_is_standard_peft(tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    train_reward_model(quick_cfg(epochs=1), make_pairs(16), base=tiny_model_dir, output_dir=tmp_path / "rm",
                       sink=lambda e: None)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft = PeftModel.from_pretrained(model, str(tmp_path / "rm" / "reward-0"))
    assert any("lora_A" in n for n, _ in peft.named_parameters())


RELOAD_SCRIPT = """
import json, sys
from tuilab.modeling.reward_model import RewardModel
run_dir, data = sys.argv[1], json.loads(sys.argv[2])
rm = RewardModel.load(run_dir)
s = rm.score(data["prompts"], data["responses"])
print(json.dumps({"mean": s.mean, "members": s.members}))
"""


def test_reload_in_a_fresh_process_gives_identical_scores(tiny_model_dir, tmp_path):
    import subprocess
    import sys

    pairs = make_pairs(24)
    train_reward_model(quick_cfg(epochs=2, ensemble=2), pairs, base=tiny_model_dir,
                       output_dir=tmp_path / "rm", sink=lambda e: None)
    from tuilab.modeling.reward_model import RewardModel

    rm = RewardModel.load(tmp_path / "rm")
    prompts = [p.messages for p in pairs[:6]] + ["A plain string prompt."]
    responses = [p.chosen for p in pairs[:3]] + [p.rejected for p in pairs[3:6]] + ["a much longer answer " * 5]
    here = rm.score(prompts, responses)
    out = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(tmp_path / "rm"), json.dumps({"prompts": prompts, "responses": responses})],
        capture_output=True, text=True, timeout=120, check=True,
    )
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(there["members"]) == 2
    for a, b in zip(here.members, there["members"], strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    assert here.mean == pytest.approx(there["mean"], abs=1e-5)


def test_ensemble_of_three_members_differ(tiny_model_dir, tmp_path):
    from tuilab.modeling.reward_model import RewardModel

    pairs = make_pairs(32)
    events = []
    metrics = train_reward_model(quick_cfg(epochs=1, ensemble=3), pairs, base=tiny_model_dir,
                                 output_dir=tmp_path / "rm", sink=events.append)
    assert metrics["ensemble"] == 3
    assert "eval/reward-2/accuracy" in metrics
    assert metrics["steps"] == 3 * math.ceil(metrics["train/pairs"] / 8)
    rm = RewardModel.load(tmp_path / "rm")
    assert rm.members == ["reward-0", "reward-1", "reward-2"]
    prompts = [p.messages for p in pairs[:5]]
    scores = rm.score(prompts, [p.chosen for p in pairs[:5]])
    members = torch.tensor(scores.members)
    assert members.shape == (3, 5)
    assert (members[0] - members[1]).abs().max() > 1e-3
    assert (members[1] - members[2]).abs().max() > 1e-3
    assert scores.mean == pytest.approx(members.mean(0).tolist(), abs=1e-6)
    assert scores.std == pytest.approx(members.std(0, unbiased=False).tolist(), abs=1e-6)
    assert all(s > 0 for s in scores.std)
    ids = rm.encode(prompts, [p.chosen for p in pairs[:5]])
    assert rm.score_ids(ids).shape == (3, 5)


def test_four_bit_base_trains_on_cpu(tmp_path):
    pytest.importorskip("bitsandbytes")
    from tiny import save_tiny_model

    from tuilab.modeling.reward_model import RewardModel

    folder = save_tiny_model(tmp_path / "tiny64", hidden=64)
    events = []
    metrics = train_reward_model(quick_cfg(epochs=1, four_bit=True), make_pairs(16), base=folder,
                                 output_dir=tmp_path / "rm", sink=events.append)
    losses = train_losses(events)
    assert losses and all(math.isfinite(x) for x in losses)
    assert metrics["steps"] == len(losses)
    manifest = json.loads((tmp_path / "rm" / "reward.json").read_text())
    assert manifest["four_bit"] is True
    rm = RewardModel.load(tmp_path / "rm", four_bit=True)
    scores = rm.score(["hello"], ["sea good"])
    assert math.isfinite(scores.mean[0])


# ------------------------------------------------------------------ loss, ties, margins


def test_ties_are_skipped_or_kept_by_config():
    pairs = make_pairs(6)
    pairs[0].label = 0.5
    pairs[1].label = 0.5
    pairs[2].rejected = pairs[2].chosen
    kept, left_out = usable_pairs(RewardConfig(ties="skip"), pairs)
    assert len(kept) == 3 and left_out == {"ties": 2, "identical": 1}
    kept, left_out = usable_pairs(RewardConfig(ties="half"), pairs)
    assert len(kept) == 5 and left_out == {"identical": 1}
    with pytest.raises(ValueError, match="ties"):
        usable_pairs(RewardConfig(ties="maybe"), pairs)


def test_training_with_ties_and_margins(tiny_model_dir, tmp_path):
    pairs = make_pairs(24)
    for p in pairs[:6]:
        p.label, p.margin = 0.5, None
    for p in pairs[6:12]:
        p.margin = 1.0
    metrics = train_reward_model(quick_cfg(epochs=1, ties="half", eval_fraction=0.0), pairs, base=tiny_model_dir,
                                 output_dir=tmp_path / "rm", sink=lambda e: None)
    assert metrics["train/pairs"] == 24 and metrics["eval/pairs"] == 0
    assert math.isfinite(metrics["train/loss"])


def test_eval_split_prefers_test_prompts_then_holds_out_whole_prompts(tiny_model_dir):
    from tuilab.modeling.loading import load_model

    tok = load_model(tiny_model_dir).tokenizer
    pairs = make_pairs(40, prompts=10)
    encoded, _ = encode_pairs(tok, pairs, 512)
    train, held = split_eval(encoded, 0.2)
    assert len(held) == 8 and len(train) == 32
    assert not {p.prompt_id for p in train} & {p.prompt_id for p in held}
    assert split_eval(encoded, 0.2) == (train, held)  # deterministic
    encoded[0].split = encoded[1].split = "test"
    train, held = split_eval(encoded, 0.2)
    assert [p.comparison_id for p in held] == [1, 2] and len(train) == 38
    assert split_eval(encoded[2:], 0.0)[1] == []


def test_too_few_pairs_is_refused_with_reasons(tiny_model_dir, tmp_path):
    pairs = make_pairs(5)
    pairs[0].label = 0.5
    with pytest.raises(NotEnoughPairs) as info:
        train_reward_model(RewardConfig(min_pairs=16), pairs, base=tiny_model_dir, output_dir=tmp_path / "rm",
                           sink=lambda e: None, left_out={"both_bad": 3, "skip": 2})
    message = str(info.value)
    assert "4 usable, 16 needed" in message
    assert "3 marked both bad" in message and "2 skipped" in message and "1 ties" in message
    assert not (tmp_path / "rm").exists()  # refused before touching anything


def test_pairs_longer_than_max_length_are_reported(tiny_model_dir, tmp_path):
    pairs = make_pairs(12)
    pairs[0].chosen = "sea " * 400
    events = []
    train_reward_model(quick_cfg(epochs=1, max_length=128), pairs, base=tiny_model_dir, output_dir=tmp_path / "rm",
                       sink=events.append)
    warnings = [e for e in events if isinstance(e, RunWarning)]
    assert any(w.code == "too_long" and "1 pairs" in w.message for w in warnings)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="epochs must be"):
        train_reward_model(RewardConfig(epochs=0), make_pairs(20), base="/nonexistent", output_dir="/tmp/x",
                           sink=lambda e: None)


@pytest.mark.slow
def test_default_model_trains_and_reloads(tmp_path):
    """SmolLM2-135M end to end: packed training agrees with plain scoring, and reload is exact."""
    from pathlib import Path

    from tuilab.modeling.loading import load_model
    from tuilab.modeling.registry import ensure_default_model
    from tuilab.modeling.reward_model import RewardModel

    path = ensure_default_model(Path(__file__).resolve().parents[2] / "models")
    events = []
    metrics = train_reward_model(
        RewardConfig(base_model=str(path), epochs=1, batch_size=8, min_pairs=8, checkpoint_every=0),
        make_pairs(16), base=path, output_dir=tmp_path / "rm", sink=events.append,
    )
    rm = RewardModel.load(tmp_path / "rm", base=load_model(path))
    assert not [e for e in events if isinstance(e, RunWarning) and e.code == "share_prefix_off"]
    assert math.isfinite(metrics["train/loss"])
    prompts = ["What is the capital of France?"] * 2
    responses = ["The capital of France is Paris.", "I don't know."]
    here = torch.tensor(rm.score(prompts, responses).members)
    again = torch.tensor(RewardModel.load(tmp_path / "rm").score(prompts, responses).members)
    assert torch.allclose(here, again, atol=1e-5)
