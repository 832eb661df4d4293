"""The disagreement source on a tiny real model and a tiny reward ensemble trained here."""

from __future__ import annotations

import pytest

from tests.jobs.rm_data import make_pairs
from tuilab.config import RewardConfig
from tuilab.labeling.candidates import SourceSpec, source_pairs
from tuilab.labeling.disagreement import DisagreementSource, rank_by_disagreement
from tuilab.modeling.host import ModelHost
from tuilab.modeling.reward_model import RewardModel
from tuilab.records import Prompt
from tuilab.training.reward import train_reward_model


@pytest.fixture(scope="module")
def reward_dir(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "rm"
    cfg = RewardConfig(learning_rate=3e-3, epochs=3, batch_size=8, checkpoint_every=0, warmup_ratio=0.0,
                       min_pairs=8, ensemble=2, eval_fraction=0.0)
    train_reward_model(cfg, make_pairs(48), base=tiny_model_dir, output_dir=out, sink=lambda _e: None)
    return out


def test_ranking_puts_the_disputed_pair_first(reward_dir):
    rm = RewardModel.load(reward_dir)
    msgs = [{"role": "user", "content": "Say something about item 3."}]
    pairs = [(msgs, "sea wind good", "sea wind bad"), (msgs, "sea wind good", "sea wind good")]
    ranks = rank_by_disagreement(rm, pairs)
    # Identical answers: every member gives P = ½ exactly, no spread at all.
    assert ranks[1].score == pytest.approx(0.0, abs=1e-6) and ranks[1].mean_p == pytest.approx(0.5, abs=1e-6)
    assert ranks[0].members == 2 and ranks[0].mean_p > 0.5  # the trained rule: "good" wins
    assert rank_by_disagreement(rm, []) == []


def test_source_offers_one_pair_per_prompt_and_says_why(tiny_model_dir, reward_dir, tmp_path):
    host = ModelHost(tmp_path, str(tiny_model_dir))
    source = DisagreementSource(host, reward_dir, SourceSpec(max_new_tokens=8, seed=0), samples=3)
    prompts = [Prompt(id=i, messages=[{"role": "user", "content": f"Tell me about item {i}."}], text="")
               for i in (1, 2)]
    out = source_pairs(source, prompts)
    assert len(out) == 2
    for a, b in out:
        assert a.params["why"] == b.params["why"] and "reward models disagree" in a.params["why"]
        assert (a.params["side"], b.params["side"]) == ("A", "B")
    with pytest.raises(ValueError, match="at least 2 samples"):
        DisagreementSource(host, reward_dir, samples=1)
    with pytest.raises(FileNotFoundError, match="not a reward model folder"):
        DisagreementSource(host, tmp_path)


def test_most_disputed_takes_the_top_and_breaks_exact_ties_at_random():
    import random

    from tuilab.diagnostics.uncertainty import PairUncertainty
    from tuilab.labeling.disagreement import most_disputed

    def u(score):
        return PairUncertainty(score=score, mean_p=0.5, spread=score, members=3)

    ranks = [u(0.0)] * 20 + [u(0.3), u(0.1)]
    assert most_disputed(ranks, 2, random.Random(0)) == [20, 21]  # highest spread first
    assert most_disputed(ranks, 0) == [] and most_disputed([], 3) == []
    # Twenty pairs all at spread 0 (members that agree): which of them come next is a draw, not the first ones.
    thirds = {tuple(most_disputed(ranks, 5, random.Random(seed))[2:]) for seed in range(20)}
    assert len(thirds) > 10 and all(set(t) <= set(range(20)) for t in thirds)
    assert most_disputed(ranks, 5, random.Random(3)) == most_disputed(ranks, 5, random.Random(3))  # seeded
