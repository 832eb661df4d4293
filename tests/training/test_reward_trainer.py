"""The reward trainer on a tiny real model: loss, divergence, checkpoints, normalisation stats, the plain path."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.jobs.rm_data import make_pairs
from tuilab.config import RewardConfig
from tuilab.training.events import Checkpoint, Metrics, RunControl, TrainingDiverged
from tuilab.training.packing import encode_pairs
from tuilab.training.reward import split_eval, train_reward_model
from tuilab.training.reward_trainer import NORM_PAIRS, bt_loss


def quick_cfg(**kw) -> RewardConfig:
    base = dict(learning_rate=3e-3, epochs=4, batch_size=8, checkpoint_every=0, warmup_ratio=0.0, min_pairs=8)
    base.update(kw)
    return RewardConfig(**base)


def train_losses(events) -> list[float]:
    return [e.values["train/loss"] for e in events if isinstance(e, Metrics) and "train/loss" in e.values]


def test_bt_loss_margins_and_ties():
    rc, rr = torch.tensor([2.0]), torch.tensor([1.0])
    one, none = torch.tensor([1.0]), torch.tensor([0.0])
    assert bt_loss(rc, rr, one, none).item() == pytest.approx(-math.log(1 / (1 + math.exp(-1))))
    # A margin of 1 asks for a gap of one more: Δ = margin gives log 2.
    assert bt_loss(rc, rr, one, torch.tensor([1.0])).item() == pytest.approx(math.log(2))
    # A tie is happiest at Δ = 0: the gradient vanishes there and pushes back on either side.
    for d, sign in ((0.0, 0), (1.5, 1), (-1.5, -1)):
        delta = torch.tensor([d], requires_grad=True)
        bt_loss(delta, torch.tensor([0.0]), torch.tensor([0.5]), none).backward()
        assert torch.sign(delta.grad).item() == sign
    # Centring penalises rewards far from zero even when the gap is right.
    far = bt_loss(torch.tensor([11.0]), torch.tensor([10.0]), one, none, center_coef=0.01).item()
    near = bt_loss(torch.tensor([0.5]), torch.tensor([-0.5]), one, none, center_coef=0.01).item()
    assert far - near == pytest.approx(0.01 * 21**2, rel=1e-5)


# ------------------------------------------------------------------ refusals and failures


def test_nan_loss_stops_with_step_and_reason(tiny_model_dir, tmp_path):
    events = []
    with pytest.raises(TrainingDiverged) as info:
        train_reward_model(quick_cfg(learning_rate=1e30, max_grad_norm=1e30), make_pairs(32), base=tiny_model_dir,
                           output_dir=tmp_path / "rm", sink=events.append)
    assert info.value.step >= 1
    assert "loss became nan" in str(info.value) or "loss became inf" in str(info.value)
    assert "(learning rate 9" in str(info.value) or "(learning rate 1e+30" in str(info.value)
    # Steps before the bad one were still reported; none after it.
    steps = [e.step for e in events if isinstance(e, Metrics)]
    assert all(s < info.value.step for s in steps)


def test_checkpoints_are_loadable(tiny_model_dir, tmp_path):
    from tuilab.modeling.reward_model import RewardModel

    events = []
    train_reward_model(quick_cfg(epochs=2, checkpoint_every=3), make_pairs(32), base=tiny_model_dir,
                       output_dir=tmp_path / "rm", sink=events.append)
    checkpoints = [e for e in events if isinstance(e, Checkpoint)]
    assert [c.step for c in checkpoints] == [3, 6]
    state_files = sorted((tmp_path / "rm" / "checkpoints").glob("*/reward-0/training_state.pt"))
    assert [p.parents[1].name for p in state_files] == ["step-000006"]  # optimizer state only in the newest
    rm = RewardModel.load(checkpoints[0].path)
    assert rm.manifest["step"] == 3
    assert math.isfinite(rm.score(["hi"], ["sea good"]).mean[0])


# ------------------------------------------------------------------ normalisation stats


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


# ------------------------------------------------------------------ shared-prefix packing


def test_plain_rows_and_gradient_checkpointing_train_too(tiny_model_dir, tmp_path):
    for i, kw in enumerate(({"share_prefix": False}, {"gradient_checkpointing": True})):
        events = []
        metrics = train_reward_model(quick_cfg(epochs=1, **kw), make_pairs(16), base=tiny_model_dir,
                                     output_dir=tmp_path / f"rm{i}", sink=events.append)
        assert metrics["steps"] == len(train_losses(events)) >= 1
        assert all(math.isfinite(x) for x in train_losses(events))


def test_a_sliding_window_model_trains_on_plain_rows_and_says_so(tmp_path):
    """Packed pairs are longer than a window-2 model's window: the trainer runs plain rows, warns once,
    and learns exactly what it learns with share_prefix off."""
    from tests.training.test_dpo import _sliding_window_model
    from tuilab.training.events import RunWarning

    folder = _sliding_window_model(tmp_path / "sw", window=2)
    runs = {}
    for share in (True, False):
        events: list = []
        train_reward_model(quick_cfg(epochs=1, share_prefix=share), make_pairs(16), base=folder,
                           output_dir=tmp_path / f"rm-{share}", sink=events.append)
        runs[share] = events
    warned = [e for e in runs[True] if isinstance(e, RunWarning) and e.code == "share_prefix_off"]
    assert len(warned) == 1 and "sliding window of 2 tokens" in warned[0].message
    assert not [e for e in runs[False] if isinstance(e, RunWarning) and e.code == "share_prefix_off"]
    assert train_losses(runs[True]) == pytest.approx(train_losses(runs[False]), abs=1e-6)
