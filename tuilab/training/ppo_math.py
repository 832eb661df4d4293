"""The tensor arithmetic of PPO for language models, as small pure functions.

Kept apart from the loop in `ppo.py` so that each formula is tested against a
closed form (tests/training/test_ppo_math.py). Shapes: B = batch, T = response
tokens; `mask` is 1.0 on real response tokens (EOS included), 0.0 on padding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# ------------------------------------------------------------------ masked statistics
# `reduce` (a sum over processes, `training.distributed.Dist.sum`) makes a batch statistic cover every
# rank's rows, so several processes whiten and measure exactly as one process over the whole batch.
Reduce = Callable[[torch.Tensor], torch.Tensor]


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None, reduce: Reduce | None = None) -> torch.Tensor:
    if dim is None:
        if reduce is not None:
            total = reduce(torch.stack([(x * mask).sum(), mask.sum().to(x.dtype)]))
            return total[0] / total[1].clamp_min(1.0)
        return (x * mask).sum() / mask.sum().clamp_min(1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp_min(1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True, reduce: Reduce | None = None) -> torch.Tensor:
    mean = masked_mean(x, mask, reduce=reduce)
    var = masked_mean((x - mean) ** 2, mask, reduce=reduce)
    if unbiased:
        n = mask.sum() if reduce is None else reduce(mask.sum())
        if n > 1:
            var = var * n / (n - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True,
                  reduce: Reduce | None = None) -> torch.Tensor:
    """(x − μ)/σ over the masked entries; with shift_mean=False the mean is added back.

    Rewards are whitened without the mean shift (N+ details): scaling keeps the
    sign of the reward, so "better than nothing" stays positive.
    """
    mean, var = masked_mean(x, mask, reduce=reduce), masked_var(x, mask, reduce=reduce)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask


# ------------------------------------------------------------------ log-probs and KL
def logprobs_from_logits(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log π(label) under softmax(logits ÷ temperature): the distribution the tokens were sampled from.

    N+ details: without the ÷ temperature the "old" log-probs describe a
    different policy from the one that sampled, and the first ratio is not 1.
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    picked = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def logprobs_and_entropy(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(log π(label), entropy of π) from one pass over the vocabulary; the entropy carries no gradient.

    H = logsumexp(z) − Σ softmax(z)·z with z = logits ÷ temperature, so the
    softmax is formed once instead of the three full-vocabulary tensors that
    log_softmax → exp → multiply would allocate.
    """
    z = logits.float()
    if temperature != 1.0:
        z = z / temperature
    lse = torch.logsumexp(z, dim=-1)
    logp = z.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - lse
    with torch.no_grad():
        zd = z.detach()
        ent = lse.detach() - (torch.softmax(zd, dim=-1) * zd).sum(-1)
    return logp, ent


def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    logits = logits.float() / temperature
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


@dataclass
class KLEstimates:
    k1: torch.Tensor  # log π − log π_ref: unbiased, noisy, can be negative
    k2: torch.Tensor  # ½(log r)²: biased, low variance, ≥ 0
    k3: torch.Tensor  # (r − 1) − log r: unbiased, ≥ 0


def kl_estimators(logp: torch.Tensor, ref_logp: torch.Tensor) -> KLEstimates:
    """Schulman's estimators of KL(π‖π_ref) from tokens sampled by π, with log r = log π_ref − log π."""
    log_r = ref_logp - logp
    return KLEstimates(k1=-log_r, k2=0.5 * log_r**2, k3=torch.expm1(log_r) - log_r)


# ------------------------------------------------------------------ rewards
ENSEMBLE_MODES = ("mean", "min", "uncertainty", "mean_minus_std")


def combine_ensemble(members: torch.Tensor, mode: str = "mean", lam: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """[K, B] member scores → (score [B], spread [B]) for one reward model or an ensemble.

    Coste et al. (2023): "mean"; "min" (worst case); "uncertainty"
    (uncertainty-weighted: mean − λ·variance, the members' population variance,
    λ = 0.1 for PPO). "mean_minus_std" (mean − λ·std) is the same idea on the
    scale of the scores. Spread is the std over members (0 for a single model).
    """
    if members.dim() == 1:
        members = members.unsqueeze(0)
    mean = members.mean(0)
    var = members.var(0, unbiased=False) if members.shape[0] > 1 else torch.zeros_like(mean)
    spread = var.sqrt()
    if mode == "mean":
        return mean, spread
    if mode == "min":
        return members.min(0).values, spread
    if mode == "uncertainty":
        return mean - lam * var, spread
    if mode == "mean_minus_std":
        return mean - lam * spread, spread
    raise ValueError(f"ensemble_mode must be one of {', '.join(ENSEMBLE_MODES)}, got {mode!r}")


TRUNCATED_MODES = ("subtract", "replace")


def score_truncated(scores: torch.Tensor, finished: torch.Tensor, mode: str = "subtract", *, penalty: float = 1.0,
                    constant: float = -1.0) -> torch.Tensor:
    """The score of each response that never reached EOS, lowered.

    "subtract": score − `penalty` (≥ 0; TRL's `missing_eos_penalty`, same sign and
    meaning), which keeps the reward model's own scale, so a cut-off answer scores
    `penalty` below what the reward model said. "replace": the score becomes
    `constant` (< 0), as in "The N+ implementation details of RLHF with PPO"
    (Huang et al. 2024, −1 on normalised scores): the reward model's opinion of
    cut-off text is ignored altogether.
    """
    if mode == "subtract":
        if penalty < 0:
            raise ValueError(f"missing_eos_penalty is subtracted and must be ≥ 0, got {penalty}")
        return scores if penalty == 0 else torch.where(finished.bool(), scores, scores - penalty)
    if mode == "replace":
        if constant >= 0:
            raise ValueError(f"truncated_score must be < 0 (a cut-off answer must not be rewarded), got {constant}")
        return torch.where(finished.bool(), scores, torch.full_like(scores, constant))
    raise ValueError(f"truncated mode must be one of {', '.join(TRUNCATED_MODES)}, got {mode!r}")


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-token rewards: −β·KL at each token, plus the sequence score at its last real token."""
    rewards = -beta * kl * mask
    last = (mask.sum(1).long() - 1).clamp_min(0)
    rewards[torch.arange(scores.shape[0]), last] += scores
    return rewards


# ------------------------------------------------------------------ GAE
def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over response tokens; (advantages, returns).

    Values after the last real token count as 0 (the episode has ended), so
    padding never leaks value into the last real token's advantage.
    """
    values = values * mask
    rewards = rewards * mask
    T = rewards.shape[1]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(T)):
        next_v = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        last = delta + gamma * lam * last
        adv[:, t] = last
    adv = adv * mask
    return adv, (adv + values) * mask


# ------------------------------------------------------------------ losses
@dataclass
class PolicyLoss:
    loss: torch.Tensor
    clipfrac: torch.Tensor
    approxkl: torch.Tensor
    ratio: torch.Tensor  # mean ratio


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, clip: float) -> PolicyLoss:
    """PPO's clipped surrogate: mean over tokens of max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε))."""
    log_ratio = (logp - old_logp) * mask
    ratio = torch.exp(log_ratio)
    pg1 = -adv * ratio
    pg2 = -adv * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.maximum(pg1, pg2), mask)
    with torch.no_grad():
        clipfrac = masked_mean((pg2 > pg1).float(), mask)
        approxkl = 0.5 * masked_mean(log_ratio**2, mask)
        ratio_mean = masked_mean(ratio, mask)
    return PolicyLoss(loss, clipfrac, approxkl, ratio_mean)


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """½·max((V − R)², (V_clip − R)²), V_clip = V_old + clip(V − V_old, ±ε); (loss, clipfrac)."""
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    l1 = (values - returns) ** 2
    l2 = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(l1, l2), mask)
    with torch.no_grad():
        clipfrac = masked_mean((l2 > l1).float(), mask)
    return loss, clipfrac


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                       reduce: Reduce | None = None) -> float:
    """1 − Var(R − V)/Var(R): 1 is a perfect critic, 0 no better than a constant, < 0 worse."""
    var_r = masked_var(returns, mask, unbiased=False, reduce=reduce)
    if var_r <= 1e-12:
        return float("nan")
    return float(1.0 - masked_var(returns - values, mask, unbiased=False, reduce=reduce) / var_r)


# ------------------------------------------------------------------ β
class KLController:
    """β for the KL penalty: fixed, or adaptive (Ziegler et al. 2019).

    Adaptive: e = clip(KL/target − 1, −0.2, 0.2); β ← β·(1 + e·n/horizon), n = episodes in the batch.
    """

    def __init__(self, beta: float, *, adaptive: bool = False, target: float = 6.0, horizon: int = 10000) -> None:
        self.beta = float(beta)
        self.adaptive = adaptive
        self.target = float(target)
        self.horizon = int(horizon)

    def update(self, kl: float, n: int) -> float:
        if self.adaptive:
            e = min(max(kl / self.target - 1.0, -0.2), 0.2)
            self.beta *= 1.0 + e * n / self.horizon
        return self.beta


# ------------------------------------------------------------------ learning rate
class LinearDecay:
    """Learning-rate factor falling linearly to `floor` at update `total`, once per update.

    N+ details decay to 0 over the run. Extending `total` on resume (`extend`)
    continues from the factor the run had reached, so the learning rate never
    jumps: the remaining decay is spread over the new remaining updates.
    """

    def __init__(self, total: int, *, decay: bool = True, floor: float = 0.0, warmup: int = 0) -> None:
        self.total, self.decay, self.floor, self.warmup = int(total), bool(decay), float(floor), int(warmup)
        self.anchor_update, self.anchor_factor = 0, 1.0

    def factor(self, update: int) -> float:
        """Multiplier for 0-based `update` (the number of updates already done).

        A linear warm-up over the first `warmup` updates (1/w, 2/w, …, 1) multiplies the decay.
        """
        warm = min(1.0, (update + 1) / self.warmup) if self.warmup > 0 else 1.0
        return warm * self._decay(update)

    def _decay(self, update: int) -> float:
        if not self.decay:
            return 1.0
        span = max(self.total - self.anchor_update, 1)
        left = max(0.0, (self.total - update) / span)
        return self.floor + (self.anchor_factor - self.floor) * left

    def extend(self, total: int, done: int) -> None:
        """A resumed run with `done` updates behind it now ends at `total`: the decay restarts from the
        factor of the last update done (not from where a run of `total` updates would be)."""
        if int(total) != self.total and done > 0:
            self.anchor_factor, self.anchor_update = self._decay(done - 1), int(done) - 1
        self.total = int(total)

    def state_dict(self) -> dict:
        return {"total": self.total, "decay": self.decay, "floor": self.floor, "warmup": self.warmup,
                "anchor_update": self.anchor_update, "anchor_factor": self.anchor_factor}

    def load_state_dict(self, state: dict) -> None:
        self.total = int(state.get("total", self.total))
        self.decay = bool(state.get("decay", self.decay))
        self.floor = float(state.get("floor", self.floor))
        self.warmup = int(state.get("warmup", self.warmup))
        self.anchor_update = int(state.get("anchor_update", 0))
        self.anchor_factor = float(state.get("anchor_factor", 1.0))
