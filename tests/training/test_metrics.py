"""Held-out reward-model evaluation: pairs scored through the path PPO uses, per member and as an ensemble."""

from __future__ import annotations

import pytest
import torch

from tests.modeling.reward_run import save_reward_run
from tuilab.diagnostics.calibration import PairEval, evaluate_pairs
from tuilab.modeling.chat import scored_ids
from tuilab.training.metrics import (
    EncodedPair,
    eval_from_rewards,
    evaluate_reward_model,
    pair_rewards,
)


def test_a_pairs_length_is_its_longer_side_and_its_packed_length_counts_the_prefix_once():
    p = EncodedPair(chosen=[1, 2, 3, 4, 5], rejected=[1, 2, 3, 9], shared=3)
    assert p.length == 5
    assert p.packed_length == 3 + 2 + 1  # prefix once, then each side's own tokens
    assert EncodedPair(chosen=[1, 2], rejected=[3]).packed_length == 3  # nothing shared: both rows whole
    assert (p.label, p.margin, p.split) == (1.0, 0.0, "train")


@pytest.fixture(scope="module")
def rm(tiny_model_dir, tmp_path_factory):
    from tuilab.modeling.reward_model import RewardModel

    run = save_reward_run(tmp_path_factory.mktemp("metrics") / "rm", tiny_model_dir, ("reward-0", "reward-1"))
    return RewardModel.load(run)


def _pairs(tok) -> list[EncodedPair]:
    answers = [("sea wind good", "bad"), ("yes", "no no no maybe"), ("long short answer", "great"),
               ("the capital of France is Paris", "Rome")]
    out = []
    for i, (a, b) in enumerate(answers):
        messages = [{"role": "user", "content": f"question {i}"}]
        out.append(EncodedPair(chosen=scored_ids(tok, messages, a), rejected=scored_ids(tok, messages, b),
                               label=0.5 if i == 3 else 1.0, margin=0.5 * (i == 1),
                               chosen_tokens=len(tok.encode(a)), rejected_tokens=len(tok.encode(b)),
                               prompt_id=i + 1))
    return out


def test_pair_rewards_are_each_members_chosen_then_rejected_scores(rm):
    pairs = _pairs(rm.tokenizer)
    rewards = pair_rewards(rm, pairs, batch_size=3)
    assert rewards.shape == (2, 2, 4) and rewards.device.type == "cpu"
    want_c = rm.score_ids([p.chosen for p in pairs])
    want_r = rm.score_ids([p.rejected for p in pairs])
    assert torch.allclose(rewards[:, 0], want_c, atol=1e-5) and torch.allclose(rewards[:, 1], want_r, atol=1e-5)
    assert (rewards[0] - rewards[1]).abs().max() > 1e-3  # two members, two opinions


def test_the_ensemble_eval_is_on_the_members_mean_reward(rm):
    pairs = _pairs(rm.tokenizer)
    mean, members = evaluate_reward_model(rm, pairs)
    rewards = pair_rewards(rm, pairs)
    assert len(members) == 2
    for k, got in enumerate(members):
        assert got == eval_from_rewards(rewards[k, 0].tolist(), rewards[k, 1].tolist(), pairs)
    avg = rewards.mean(dim=0)
    assert mean == eval_from_rewards(avg[0].tolist(), avg[1].tolist(), pairs)
    assert mean.pairs == 4 and mean.length_corr is not None


def test_eval_from_rewards_reads_labels_margins_and_lengths_from_the_pairs():
    pairs = [EncodedPair([1], [2], label=1.0, chosen_tokens=3, rejected_tokens=9),
             EncodedPair([1], [2], label=1.0, margin=2.0, chosen_tokens=5, rejected_tokens=2),
             EncodedPair([1], [2], label=0.5, chosen_tokens=4, rejected_tokens=4)]
    chosen, rejected = [1.0, 0.0, 0.3], [0.0, 0.5, 0.3]
    got = eval_from_rewards(chosen, rejected, pairs)
    assert got == evaluate_pairs(chosen, rejected, labels=[1.0, 1.0, 0.5], margins=[0.0, 2.0, 0.0],
                                 chosen_lengths=[3, 5, 4], rejected_lengths=[9, 2, 4])
    assert got.accuracy == 0.5 and got.margin == pytest.approx(0.25)  # the tie is left out of both


def test_no_held_out_pairs_gives_empty_evals_one_per_member(rm):
    mean, members = evaluate_reward_model(rm, [])
    empty = PairEval(0, None, None, None, None, None)
    assert mean == empty and members == [empty, empty]
    assert mean.as_metrics() == {"eval/pairs": 0.0}
