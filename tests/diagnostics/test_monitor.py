import pytest

from tuilab.diagnostics.monitor import (
    WINDOW,
    HackingMonitor,
)


def _observe(mon, step, *, lengths, scores, eos=None, spreads=None, gold=None):
    toks = [list(range(n)) for n in lengths]
    return mon.observe(step, scores=scores, lengths=lengths, eos=eos or [True] * len(lengths),
                       tokens=toks, spreads=spreads, gold=gold)


def test_monitor_quiet_on_a_stable_run():
    mon = HackingMonitor()
    for step in range(1, 12):
        rep = _observe(mon, step, lengths=[10, 12, 11, 9, 10, 12, 11, 9], scores=[0.1, -0.2, 0.3, 0.0, 0.2, -0.1, 0.05, 0.1],
                       spreads=[0.1] * 8, gold=[0.5] * 8)
        assert rep.warnings == []
    assert rep.metrics["diag/length_ratio"] == pytest.approx(1.0)


def test_monitor_length_bias_and_growth_and_eos():
    mon = HackingMonitor()
    rep = _observe(mon, 1, lengths=[20] * 8, scores=[0.0] * 8)
    assert rep.warnings == []
    codes = []
    for step in range(2, 2 + WINDOW):
        lengths = [30 + 3 * i for i in range(8)]
        rep = _observe(mon, step, lengths=lengths, scores=[0.1 * n for n in lengths], eos=[False] * 6 + [True] * 2)
        codes += [c for c, _ in rep.warnings]
    assert {"length_bias", "length_growth", "eos_falling"} <= set(codes)
    assert codes.count("length_growth") == 1  # raised once, not every step
    msg = dict((c, m) for c, m in mon_messages(mon))
    assert "eos_falling" in msg


def mon_messages(mon):
    return [(c, m) for c, m in mon._conditions().items()]


def test_monitor_warning_clears_and_reraises():
    mon = HackingMonitor()
    _observe(mon, 1, lengths=[10] * 8, scores=[0.0] * 8)
    raised = []
    for step in range(2, 2 + WINDOW):
        raised += _observe(mon, step, lengths=[10] * 8, scores=[0.0] * 8, eos=[False] * 8).warnings
    assert [c for c, _ in raised] == ["eos_falling"]
    for step in range(2 + WINDOW, 2 + 2 * WINDOW):
        assert _observe(mon, step, lengths=[10] * 8, scores=[0.0] * 8).warnings == []
    assert "eos_falling" not in mon.active
    raised = []
    for step in range(2 + 2 * WINDOW, 2 + 3 * WINDOW):
        raised += _observe(mon, step, lengths=[10] * 8, scores=[0.0] * 8, eos=[False] * 8).warnings
    assert [c for c, _ in raised] == ["eos_falling"]


def test_monitor_spread_rising_and_gold_diverging():
    mon = HackingMonitor()
    codes = []
    for step in range(1, 1 + 2 * WINDOW):
        up = step / 10
        rep = _observe(mon, step, lengths=[10] * 8, scores=[up] * 8, spreads=[0.1 * step] * 8,
                       gold=[1.0 - up + 0.01 * i for i in range(8)])
        codes += [c for c, _ in rep.warnings]
    assert "spread_rising" in codes
    assert "gold_diverging" in codes
    text = dict(mon_messages(mon))["gold_diverging"]
    assert "gold score fell" in text


def test_monitor_repetition_warning():
    mon = HackingMonitor()
    mon.observe(1, scores=[0.0] * 4, lengths=[6] * 4, eos=[True] * 4, tokens=[[1, 2, 3, 4, 5, 6]] * 4)
    rep = None
    for step in range(2, 4):
        rep = mon.observe(step, scores=[0.0] * 4, lengths=[12] * 4, eos=[True] * 4, tokens=[[7, 8, 9] * 4] * 4)
    assert "repetition" in mon.active
    assert rep.metrics["diag/repeated_3gram"] > 0.5


def test_monitor_state_roundtrip_and_resume_replaces_steps():
    mon = HackingMonitor()
    for step in range(1, 4):
        _observe(mon, step, lengths=[10 + step] * 8, scores=[0.0] * 8)
    import json

    state = json.loads(json.dumps(mon.state_dict()))  # survives JSON (checkpoint format)
    other = HackingMonitor()
    other.load_state_dict(state)
    assert other.state_dict() == mon.state_dict()
    # resuming from step 2 re-observes step 3: no duplicate in history
    other.load_state_dict(state)
    _observe(other, 3, lengths=[13] * 8, scores=[0.0] * 8)
    assert [s["step"] for s in other.steps] == [1, 2, 3]


def test_monitor_fits_gold_curve_once_enough_steps():
    import math

    mon = HackingMonitor()
    alpha, beta = 1.0, 0.5
    for step in range(1, 8):
        kl = float((step - 1) ** 2) / 4  # step 1 is the reference policy: KL 0, gold 0.1
        d = math.sqrt(kl)
        g = 0.1 + (d * (alpha - beta * math.log(d)) if d > 0 else 0.0)
        rep = mon.observe(step, scores=[0.0] * 4, lengths=[5] * 4, eos=[True] * 4, tokens=[[1, 2]] * 4,
                          gold=[g] * 4, kls=[kl] * 4)
        if step < 5:
            assert "diag/gold_fit_alpha" not in rep.metrics
    assert rep.metrics["diag/gold_fit_alpha"] == pytest.approx(alpha, rel=1e-3)
    assert rep.metrics["diag/gold_peak_kl"] == pytest.approx(math.e**2, rel=1e-2)


def test_health_warnings_after_warm_up():
    """A critic worse than a constant and a policy that stopped moving are named, after the warm-up only."""
    from tuilab.diagnostics.monitor import HEALTH_WARMUP

    mon = HackingMonitor()
    raised = []
    for step in range(1, HEALTH_WARMUP + 6):
        stalled = step > HEALTH_WARMUP
        health = {"explained_variance": -2.0, "approx_kl": 2e-6 if stalled else 1e-2,
                  "clipfrac": 0.0 if stalled else 0.05}
        rep = mon.observe(step, scores=[0.0] * 4, lengths=[10] * 4, eos=[True] * 4, tokens=[[1, 2, 3]] * 4,
                          health=health)
        raised += [(step, code, msg) for code, msg in rep.warnings]
    codes = {code: step for step, code, _ in raised}
    assert codes["critic_not_fitting"] == HEALTH_WARMUP + 1  # not during the warm-up
    noisy = next(m for _, c, m in raised if c == "critic_not_fitting")
    assert "explained variance -2.00" in noisy and "mostly noise" in noisy
    assert codes["policy_stalled"] == HEALTH_WARMUP + 1
    healthy = HackingMonitor()
    for step in range(1, 10):
        rep = healthy.observe(step, scores=[0.0] * 4, lengths=[10] * 4, eos=[True] * 4, tokens=[[1, 2, 3]] * 4,
                              health={"explained_variance": 0.3, "approx_kl": 3e-3, "clipfrac": 0.04})
        assert not rep.warnings


def test_a_near_constant_critic_is_named_as_such():
    """EV a little below 0 (a critic that learnt nothing) still warns, in words that say how little it costs."""
    mon = HackingMonitor()
    raised = []
    for step in range(1, 9):
        rep = mon.observe(step, scores=[0.0] * 4, lengths=[10] * 4, eos=[True] * 4, tokens=[[1, 2, 3]] * 4,
                          health={"explained_variance": -0.03, "approx_kl": 3e-3, "clipfrac": 0.04})
        raised += [m for code, m in rep.warnings if code == "critic_not_fitting"]
    assert raised and "explained variance -0.03" in raised[0]
    assert "3% of the returns' variance" in raised[0] and "mostly noise" not in raised[0]


def test_a_critic_at_zero_to_two_decimals_is_not_called_worse():
    mon = HackingMonitor()
    for step in range(1, 9):
        rep = mon.observe(step, scores=[0.0] * 4, lengths=[10] * 4, eos=[True] * 4, tokens=[[1, 2, 3]] * 4,
                          health={"explained_variance": -0.001, "approx_kl": 3e-3, "clipfrac": 0.04})
        assert "critic_not_fitting" not in [code for code, _ in rep.warnings]
