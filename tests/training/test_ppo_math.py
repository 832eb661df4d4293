import math

import pytest
import torch

from tuilab.training import ppo_math as pm
from tuilab.training.ppo_math import (
    KLController,
    clipped_policy_loss,
    clipped_value_loss,
    combine_ensemble,
    entropy_from_logits,
    explained_variance,
    gae,
    kl_estimators,
    logprobs_from_logits,
    masked_mean,
    masked_whiten,
    score_truncated,
    token_rewards,
)

P = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
Q = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)


def test_kl_estimators_expectations_match_closed_forms():
    exact = float((P * (P / Q).log()).sum())
    est = kl_estimators(P.log(), Q.log())  # one entry per token, tokens sampled from P
    e_k1 = float((P * est.k1).sum())
    e_k2 = float((P * est.k2).sum())
    e_k3 = float((P * est.k3).sum())
    assert e_k1 == pytest.approx(exact, rel=1e-12)  # unbiased
    assert e_k3 == pytest.approx(exact, rel=1e-12)  # unbiased: E[r − 1] = 0
    assert e_k2 == pytest.approx(float((P * 0.5 * (Q / P).log() ** 2).sum()), rel=1e-12)
    assert e_k2 != pytest.approx(exact, rel=1e-3)  # k2 is biased (close for near distributions)
    assert (est.k3 >= 0).all() and (est.k2 >= 0).all()
    assert (est.k1 < 0).any()  # k1 goes negative on single tokens


def test_kl_estimators_monte_carlo():
    g = torch.Generator().manual_seed(0)
    idx = torch.multinomial(P, 200_000, replacement=True, generator=g)
    est = kl_estimators(P.log()[idx], Q.log()[idx])
    exact = float((P * (P / Q).log()).sum())
    assert float(est.k1.mean()) == pytest.approx(exact, abs=0.01)
    assert float(est.k3.mean()) == pytest.approx(exact, abs=0.01)
    assert float(est.k3.std()) < float(est.k1.std())  # k3: lower variance here


def test_logprobs_and_entropy_with_temperature():
    logits = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])
    labels = torch.tensor([[2, 1]])
    lp = logprobs_from_logits(logits, labels, temperature=0.5)
    want = torch.log_softmax(logits / 0.5, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(lp, want)
    ent = entropy_from_logits(logits)
    assert float(ent[0, 1]) == pytest.approx(math.log(3))


def test_gae_hand_computed_three_steps():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.6, 0.7, 9.9]])  # 4th token is padding: its value must not leak
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=0.95)
    # δ2 = 1 − 0.7 = 0.3; δ1 = 0.7 − 0.6 = 0.1; δ0 = 0.6 − 0.5 = 0.1
    a2 = 0.3
    a1 = 0.1 + 0.95 * a2
    a0 = 0.1 + 0.95 * a1
    assert adv[0].tolist() == pytest.approx([a0, a1, a2, 0.0])
    assert ret[0].tolist() == pytest.approx([a0 + 0.5, a1 + 0.6, a2 + 0.7, 0.0])


def test_gae_discounted():
    rewards = torch.tensor([[1.0, 0.0, 2.0]])
    values = torch.zeros(1, 3)
    adv, _ = gae(rewards, values, torch.ones(1, 3), gamma=0.5, lam=1.0)
    # λ = 1, V = 0: advantages are discounted returns
    assert adv[0].tolist() == pytest.approx([1.0 + 0.25 * 2.0, 0.5 * 2.0, 2.0])


@pytest.mark.parametrize(
    "ratio, adv, want_loss, clipped",
    [
        (1.1, 1.0, -1.1, 0.0),  # inside the clip
        (0.9, -1.0, 0.9, 0.0),  # inside
        (1.5, 1.0, -1.2, 1.0),  # above 1+ε with A>0: clipped, gradient stops
        (0.5, 1.0, -0.5, 0.0),  # below 1−ε with A>0: pessimistic term is the unclipped one
        (0.5, -1.0, 0.8, 1.0),  # below 1−ε with A<0: clipped
        (1.5, -1.0, 1.5, 0.0),  # above 1+ε with A<0: unclipped (worse) term kept
    ],
)
def test_clipped_policy_loss(ratio, adv, want_loss, clipped):
    old = torch.zeros(1, 1)
    new = torch.full((1, 1), math.log(ratio), requires_grad=True)
    out = clipped_policy_loss(new, old, torch.full((1, 1), adv), torch.ones(1, 1), clip=0.2)
    assert float(out.loss.detach()) == pytest.approx(want_loss)
    assert float(out.clipfrac) == clipped
    assert float(out.approxkl) == pytest.approx(0.5 * math.log(ratio) ** 2)
    out.loss.backward()
    assert (float(new.grad) == 0.0) == bool(clipped)


def test_clipped_policy_loss_ignores_padding():
    mask = torch.tensor([[1.0, 0.0]])
    out = clipped_policy_loss(torch.tensor([[0.1, 5.0]]), torch.zeros(1, 2), torch.ones(1, 2), mask, 0.2)
    assert float(out.loss) == pytest.approx(-math.exp(0.1))


def test_clipped_value_loss():
    old = torch.tensor([[0.0, 0.0]])
    new = torch.tensor([[0.1, 1.0]])
    ret = torch.tensor([[1.0, 1.0]])
    loss, frac = clipped_value_loss(new, old, ret, torch.ones(1, 2), clip=0.2)
    # token 0: max((0.1−1)², (0.1−1)²) = 0.81; token 1: max(0, (0.2−1)²) = 0.64
    assert float(loss) == pytest.approx(0.5 * (0.81 + 0.64) / 2)
    assert float(frac) == pytest.approx(0.5)


def test_adaptive_beta_update():
    fixed = KLController(0.05)
    assert fixed.update(100.0, 8) == 0.05
    c = KLController(0.05, adaptive=True, target=6.0, horizon=10000)
    assert c.update(12.0, 8) == pytest.approx(0.05 * (1 + 0.2 * 8 / 10000))  # e clipped at +0.2
    c = KLController(0.05, adaptive=True, target=6.0, horizon=10000)
    assert c.update(6.6, 8) == pytest.approx(0.05 * (1 + 0.1 * 8 / 10000))
    c = KLController(0.05, adaptive=True, target=6.0, horizon=100)
    assert c.update(0.0, 10) == pytest.approx(0.05 * (1 - 0.2 * 10 / 100))  # e clipped at −0.2


def test_missing_eos_penalty():
    scores = torch.tensor([-2.0, 0.5, 1.0])
    finished = torch.tensor([True, False, False])
    assert score_truncated(scores, finished, "subtract", penalty=1.0).tolist() == [-2.0, -0.5, 0.0]
    assert score_truncated(scores, finished, "subtract", penalty=0.0).tolist() == scores.tolist()


def test_whitening_with_and_without_mean_shift():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0], [4.0, 5.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    w = masked_whiten(x, mask)
    vals = w[mask.bool()]
    assert float(vals.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(vals.std()) == pytest.approx(1.0, abs=1e-5)
    assert float(w[0, 3]) == 0.0
    ws = masked_whiten(x, mask, shift_mean=False)
    vals = ws[mask.bool()]
    assert float(vals.mean()) == pytest.approx(3.0, abs=1e-5)  # mean of 1..5 kept
    assert float(vals.std()) == pytest.approx(1.0, abs=1e-5)


def test_token_rewards_score_at_last_real_token():
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    r = token_rewards(torch.tensor([1.0, 2.0]), kl, mask, beta=0.1)
    assert torch.allclose(r, torch.tensor([[-0.01, -0.02, -0.03 + 1.0], [-0.05 + 2.0, 0.0, 0.0]]))


def test_combine_ensemble():
    members = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    mean, spread = combine_ensemble(members, "mean")
    assert mean.tolist() == [2.0, 0.0] and spread.tolist() == [1.0, 0.0]
    assert combine_ensemble(members, "min")[0].tolist() == [1.0, 0.0]
    assert combine_ensemble(members, "mean_minus_std", lam=0.1)[0].tolist() == pytest.approx([1.9, 0.0])
    single, spread1 = combine_ensemble(torch.tensor([0.5, 1.5]))
    assert single.tolist() == [0.5, 1.5] and spread1.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="ensemble_mode"):
        combine_ensemble(members, "median")


def test_explained_variance_and_masked_mean():
    ret = torch.tensor([[1.0, 2.0, 3.0]])
    mask = torch.ones(1, 3)
    assert explained_variance(ret, ret, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full((1, 3), 2.0), ret, mask) == pytest.approx(0.0)
    assert float(masked_mean(torch.tensor([[1.0, 9.0]]), torch.tensor([[1.0, 0.0]]))) == 1.0


def test_logprobs_and_entropy_match_the_separate_functions():
    from tuilab.training.ppo_math import logprobs_and_entropy

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 11, generator=g, requires_grad=True)
    labels = torch.randint(0, 11, (2, 5), generator=g)
    lp, ent = logprobs_and_entropy(logits, labels, temperature=0.7)
    assert torch.allclose(lp, logprobs_from_logits(logits, labels, 0.7), atol=1e-6)
    assert torch.allclose(ent, entropy_from_logits(logits, 0.7), atol=1e-5)
    assert not ent.requires_grad and lp.requires_grad


# ------------------------------------------------------------------ schedule, truncation, ensembles


def test_linear_decay_schedule():
    s = pm.LinearDecay(10)
    assert [s.factor(u) for u in (0, 5, 9, 10)] == pytest.approx([1.0, 0.5, 0.1, 0.0])
    s.extend(20, done=10)  # after 10 updates the last used factor was 0.1
    assert s.factor(9) == pytest.approx(0.1) and s.factor(10) < 0.1 and s.factor(20) == 0.0
    t = pm.LinearDecay(0)
    t.load_state_dict(s.state_dict())
    assert t.factor(15) == pytest.approx(s.factor(15))
    assert pm.LinearDecay(10, decay=False).factor(9) == 1.0
    assert pm.LinearDecay(10, floor=0.3).factor(10) == pytest.approx(0.3)


def test_warmup_ramps_the_learning_rate_then_hands_over_to_the_decay():
    s = pm.LinearDecay(10, warmup=4)  # warm-up 1/4 … 4/4 times the decay (10 − u)/10
    assert [s.factor(u) for u in range(6)] == pytest.approx([0.25, 0.45, 0.6, 0.7, 0.6, 0.5])
    flat = pm.LinearDecay(10, decay=False, warmup=4)
    assert [flat.factor(u) for u in (0, 3, 9)] == pytest.approx([0.25, 1.0, 1.0])
    s.extend(20, done=2)  # extended during the warm-up: the ramp goes on, the decay does not jump
    assert s.factor(2) == pytest.approx(0.75 * 0.9 * 18 / 19) and s.factor(3) == pytest.approx(0.9 * 17 / 19)
    t = pm.LinearDecay(20)
    t.load_state_dict(s.state_dict())  # a resumed run keeps its warm-up
    assert [t.factor(u) for u in range(6)] == pytest.approx([s.factor(u) for u in range(6)])


def test_truncated_answers_lose_score_either_way():
    scores = torch.tensor([0.5, 0.5, -2.0])
    finished = torch.tensor([True, False, False])
    assert pm.score_truncated(scores, finished, "subtract", penalty=1.0).tolist() == [0.5, -0.5, -3.0]
    assert pm.score_truncated(scores, finished, "replace", constant=-1.0).tolist() == [0.5, -1.0, -1.0]
    with pytest.raises(ValueError, match="≥ 0"):
        pm.score_truncated(scores, finished, "subtract", penalty=-1.0)
    with pytest.raises(ValueError, match="< 0"):
        pm.score_truncated(scores, finished, "replace", constant=0.5)


def test_ensemble_modes_with_spread_not_one():
    members = torch.tensor([[1.0, 3.0], [3.0, 7.0]])  # mean [2, 5], population variance [1, 4], std [1, 2]
    mean, spread = pm.combine_ensemble(members, "mean")
    assert mean.tolist() == [2.0, 5.0] and spread.tolist() == [1.0, 2.0]
    assert pm.combine_ensemble(members, "min")[0].tolist() == [1.0, 3.0]
    # Coste et al. 2023: mean − λ·variance (population variance), not λ·std
    assert pm.combine_ensemble(members, "uncertainty", lam=0.1)[0].tolist() == pytest.approx([1.9, 4.6])
    assert pm.combine_ensemble(members, "mean_minus_std", lam=0.1)[0].tolist() == pytest.approx([1.9, 4.8])
    with pytest.raises(ValueError, match="ensemble_mode"):
        pm.combine_ensemble(members, "median")
