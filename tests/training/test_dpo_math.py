"""DPO losses against hand-computed values, and the implicit reward."""

from __future__ import annotations

import math

import pytest
import torch

from tuilab.training.dpo import dpo_loss

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
