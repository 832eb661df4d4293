"""Reward normalisation stats and the base check: measured on the model that is saved, refused on a wrong base."""

from __future__ import annotations

import json

import pytest
import torch

from tests.jobs.rm_data import make_pairs
from tuilab.config import RewardConfig
from tuilab.training.events import RunControl
from tuilab.training.packing import encode_pairs
from tuilab.training.reward import split_eval, train_reward_model
from tuilab.training.reward_trainer import NORM_PAIRS


def _measured(run_dir, pairs, base_dir):
    """The stats `measure_norm` promises, recomputed with a fresh RewardModel on the saved folder."""
    from tuilab.modeling.loading import load_model
    from tuilab.modeling.reward_model import RewardModel

    base = load_model(base_dir)
    rm = RewardModel.load(run_dir, base=base)
    encoded, _ = encode_pairs(base.tokenizer, pairs, 512)
    train, _ = split_eval(encoded, 0.1)
    rows = train[:: max(1, len(train) // NORM_PAIRS)][:NORM_PAIRS]
    r = rm.score_ids([x.chosen for x in rows] + [x.rejected for x in rows])[0]
    return float(r.mean()), float(r.std(unbiased=False))


def test_stats_are_the_final_models_and_checkpoints_carry_their_own(tiny_model_dir, tmp_path):
    pairs = make_pairs(48)
    cfg = RewardConfig(learning_rate=3e-3, epochs=2, batch_size=8, checkpoint_every=3, warmup_ratio=0.0, min_pairs=8)
    train_reward_model(cfg, pairs, base=tiny_model_dir, output_dir=tmp_path / "rm", sink=lambda e: None,
                       control=RunControl())
    stats = json.loads((tmp_path / "rm" / "reward.json").read_text())["norm"]["reward-0"]
    mean, std = _measured(tmp_path / "rm", pairs, tiny_model_dir)
    # Stats summed while the last epoch trained were off by the epoch's drift; these are the saved model's.
    assert stats["mean"] == pytest.approx(mean, abs=1e-4) and stats["std"] == pytest.approx(std, rel=1e-3)
    # A checkpoint from the first epoch (step 3 of 10) carries the stats of its own weights, not (0, 1).
    ckpt = tmp_path / "rm" / "checkpoints" / "step-000003"
    c_stats = json.loads((ckpt / "reward.json").read_text())["norm"]["reward-0"]
    c_mean, c_std = _measured(ckpt, pairs, tiny_model_dir)
    assert (c_stats["mean"], c_stats["std"]) != (0.0, 1.0)
    assert c_stats["mean"] == pytest.approx(c_mean, abs=1e-4) and c_stats["std"] == pytest.approx(c_std, rel=1e-3)
    assert abs(c_stats["mean"] - stats["mean"]) + abs(c_stats["std"] - stats["std"]) > 1e-3


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
