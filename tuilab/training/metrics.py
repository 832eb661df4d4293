"""Held-out evaluation of reward models on encoded preference pairs.

The arithmetic lives in `diagnostics.calibration` (numpy only); this module
runs the model over the pairs through the same scoring path PPO uses
(`RewardModel.score_ids`), so eval numbers describe exactly what PPO will see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tuilab.diagnostics.calibration import PairEval, evaluate_pairs
from tuilab.training.distributed import SINGLE, Dist


@dataclass
class EncodedPair:
    """A preference pair as token ids: prompt + response + EOS for each side."""

    chosen: list[int]
    rejected: list[int]
    label: float = 1.0
    margin: float = 0.0
    chosen_tokens: int = 0  # response length in tokens (no prompt, no EOS)
    rejected_tokens: int = 0
    prompt_id: int = 0
    comparison_id: int = 0
    split: str = "train"
    # Tokens both sides start with (the prompt, at least): computed once, shared in training.
    shared: int = 0

    @property
    def length(self) -> int:
        return max(len(self.chosen), len(self.rejected))

    @property
    def packed_length(self) -> int:
        """Tokens when the shared prefix is run once: prefix + both suffixes."""
        return len(self.chosen) + len(self.rejected) - self.shared


def pair_rewards(rm, pairs: Sequence[EncodedPair], *, batch_size: int | None = None, dist: Dist = SINGLE):
    """Rewards [k, 2, n]: each member's chosen (row 0) and rejected (row 1) rewards, on the CPU.

    Across several processes each rank scores every `size`-th pair and the
    rows are gathered back into the pairs' order, on every rank.
    """
    if dist.enabled:
        import torch

        mine = list(range(dist.rank, len(pairs), dist.size))
        local = pair_rewards(rm, [pairs[i] for i in mine], batch_size=batch_size) if mine else None
        rows = dist.gather_objects([(i, local[:, :, j].tolist()) for j, i in enumerate(mine)])
        out = torch.zeros(len(rm.members), 2, len(pairs))
        for i, values in rows:
            out[:, :, i] = torch.tensor(values)
        return out
    ids = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    rewards = rm.score_ids(ids, batch_size=batch_size).float().cpu()
    n = len(pairs)
    return rewards.view(rewards.shape[0], 2, n)


def eval_from_rewards(chosen: Sequence[float], rejected: Sequence[float], pairs: Sequence[EncodedPair]) -> PairEval:
    return evaluate_pairs(
        chosen,
        rejected,
        labels=[p.label for p in pairs],
        margins=[p.margin for p in pairs],
        chosen_lengths=[p.chosen_tokens for p in pairs],
        rejected_lengths=[p.rejected_tokens for p in pairs],
    )


def evaluate_reward_model(rm, pairs: Sequence[EncodedPair], *, batch_size: int | None = None,
                          dist: Dist = SINGLE) -> tuple[PairEval, list[PairEval]]:
    """(ensemble-mean eval, per-member evals) on held-out pairs (scored across the ranks with `dist`)."""
    if not pairs:
        empty = PairEval(0, None, None, None, None, None)
        return empty, [empty for _ in rm.members]
    rewards = pair_rewards(rm, pairs, batch_size=batch_size, dist=dist)
    members = [eval_from_rewards(r[0].tolist(), r[1].tolist(), pairs) for r in rewards]
    mean = rewards.mean(dim=0)
    return eval_from_rewards(mean[0].tolist(), mean[1].tolist(), pairs), members
