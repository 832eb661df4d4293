"""The preference trainers' optimiser and learning-rate schedule."""

from __future__ import annotations

import pytest
import torch

from tuilab.training.optim import adamw, linear_schedule


def test_linear_schedule_warms_up_then_decays():
    f = linear_schedule(warmup=2, total=10)
    assert [round(f(s), 3) for s in (0, 1, 2, 6, 10)] == [0.5, 1.0, 1.0, 0.5, 0.0]


def test_without_warmup_the_first_step_runs_at_full_rate_and_the_factor_never_goes_negative():
    f = linear_schedule(warmup=0, total=4)
    assert [f(s) for s in range(5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert f(7) == 0.0  # a step past the end (a resumed run's extra step) stays at 0, not below


def test_warmup_as_long_as_the_run_still_ends_at_zero():
    f = linear_schedule(warmup=3, total=3)
    assert [f(s) for s in range(4)] == pytest.approx([1 / 3, 2 / 3, 1.0, 0.0])


def test_the_schedule_drives_a_torch_scheduler():
    p = torch.nn.Parameter(torch.ones(3))
    opt = adamw([p], lr=0.1, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_schedule(warmup=2, total=6))
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones(3)
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.05, 0.1, 0.1, 0.075, 0.05, 0.025])


def test_adamw_keeps_the_rate_and_decay_it_was_given():
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3, 2))]
    opt = adamw(params, lr=2e-4, weight_decay=0.05)
    assert isinstance(opt, torch.optim.AdamW)
    group = opt.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (2e-4, 0.05)
    assert group["params"] == params


def test_adamw_steps_against_the_gradient_and_decays_decoupled_from_it():
    moved = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    still = torch.nn.Parameter(torch.tensor([2.0, -4.0]))
    opt = adamw([moved, still], lr=0.1, weight_decay=0.5)
    moved.grad = torch.tensor([3.0, -0.2])
    still.grad = torch.zeros(2)
    opt.step()
    # Adam's first step is lr·sign(g) (m̂/√v̂ = ±1), after the decoupled decay p·(1 − lr·wd).
    assert moved.detach().tolist() == pytest.approx([1.0 * 0.95 - 0.1, -1.0 * 0.95 + 0.1], abs=1e-6)
    # No gradient: only the weight decay acts (AdamW's decay does not go through the moments).
    assert still.detach().tolist() == pytest.approx([2.0 * 0.95, -4.0 * 0.95], abs=1e-6)
