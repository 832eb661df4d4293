"""The runs screen's gold-audit panel: the interval bar, the panel's text, and the panel reading a lab's database."""

from __future__ import annotations

import pytest
from tuihelp import wait_for

from tuilab.diagnostics.intervals import wilson
from tuilab.labeling.audits import AuditPoint
from tuilab.records import Comparison
from tuilab.store import runs as runs_store
from tuilab.store.audits import queue_audit_pair
from tuilab.store.comparisons import record_comparison
from tuilab.store.prompts import add_prompts
from tuilab.tui.widgets.audits import SCALE, AuditView, audit_text, interval_bar, planned_text

from .hosting import Host


def test_interval_bar_draws_interval_estimate_and_the_half_mark():
    bar = interval_bar(0.0, 0.0, 0.5, width=11)
    assert bar.plain == "●━━━━━·····"  # the interval covers ½: no ┆
    assert interval_bar(0.8, 0.9, 1.0, width=11).plain == "·····┆··━●━"
    assert len(interval_bar(0.2, 0.3, 0.4).plain) == SCALE
    # Out-of-range values are clamped to the scale, never drawn outside it.
    assert interval_bar(-0.5, 1.5, 2.0, width=5).plain == "━━━━●"
    styles = {span.style for span in bar.spans}
    assert {"bold", "cyan", "dim"} <= styles


def test_the_panel_says_what_a_self_auditing_run_will_audit():
    text = planned_text({"audit_pairs": 4, "checkpoint_every": 5, "audit_every": 0}, "running").plain
    assert "4 audit pairs at each checkpoint (every 5 updates)" in text and "none yet" in text
    assert "every 10 updates" in planned_text({"audit_pairs": 2, "checkpoint_every": 5, "audit_every": 10},
                                              "paused").plain
    assert planned_text({"audit_pairs": 0}, "running") is None  # audits off
    assert planned_text({"audit_pairs": 2, "checkpoint_every": 5}, "completed") is None  # it never got to one


def test_the_panel_says_where_pending_pairs_come_from():
    assert "4 audit pairs from 2 checkpoints (steps 5–10) wait" in audit_text("r", [], 4, "", [5, 10]).plain
    assert "2 audit pairs from 1 checkpoint (step 5) wait" in audit_text("r", [], 2, "", [5]).plain


def _point(step, wins, losses, ties=0, both_bad=0, **numbers) -> AuditPoint:
    return AuditPoint(step, wins, losses, ties, both_bad, wilson(wins, wins + losses), **numbers)


def test_audit_text_shows_a_row_per_audited_step_then_the_peak():
    points = [_point(5, 3, 0, proxy=0.1, sqrt_kl=0.3), _point(10, 1, 3, ties=1, both_bad=1, proxy=1.2, gold=0.4,
                                                              sqrt_kl=0.8)]
    lines = audit_text("ppo-x", points, 0, "human win rate peaks at step 5 — keep step 5").plain.split("\n")
    assert lines[0] == "Human audits (blind: policy vs reference, 95% interval)"
    assert lines[1].startswith(" step     5 ") and "100% [44–100%]" in lines[1]
    assert lines[1].endswith("  W3 L0 T0  proxy 0.10  √KL 0.30")  # no gold scorer: no gold column
    assert "25% [5–70%]" in lines[2] and lines[2].endswith("  W1 L3 T2  proxy 1.20  gold 0.40  √KL 0.80")
    assert lines[3] == "human win rate peaks at step 5 — keep step 5"
    assert len(lines) == 4  # nothing pending: no line about pairs waiting


def test_a_step_with_only_ties_has_no_rate_and_pending_pairs_are_counted():
    points = [_point(5, 0, 0, ties=2, both_bad=1)]
    text = audit_text("ppo-x", points, 3, "no audit pairs decided yet").plain
    assert "only ties / both bad so far" in text and "W0 L0 T3" in text and "%" not in text.split("\n")[1]
    assert text.endswith("no audit pairs decided yet · 3 audit pairs still wait on F1")


def test_audit_text_before_any_decision():
    assert audit_text("ppo-x", [], 0, "").plain.endswith(
        "\nno audit pairs yet: `tuilab label audit ppo-x` queues some from its checkpoints")
    assert audit_text("ppo-x", [], 2, "").plain.endswith("\n2 audit pairs wait to be labeled on F1")


def test_planned_text_only_for_a_live_self_auditing_run():
    every = planned_text({"audit_pairs": "3", "checkpoint_every": 4, "audit_every": 8}, "pending").plain
    assert "3 audit pairs every 8 updates; none yet" in every
    assert "at each checkpoint (every 4 updates)" in planned_text({"audit_pairs": 3, "checkpoint_every": 4},
                                                                  "running").plain
    assert planned_text({}, "running") is None and planned_text({"audit_pairs": None}, "running") is None
    for status in ("failed", "cancelled", "completed"):
        assert planned_text({"audit_pairs": 3, "checkpoint_every": 4}, status) is None


def _ppo_run(db, run_id: str, config: dict, status: str = "running") -> None:
    runs_store.create_run(db, "ppo", config, run_id=run_id)
    runs_store.set_run_status(db, run_id, status)


def _audit(db, run_id: str, step: int, prompt_ids: list[int], policy_wins: int) -> None:
    """One audit pair per prompt at `step`; the policy wins the first `policy_wins`, the last stays undecided."""
    for i, pid in enumerate(prompt_ids):
        pair = queue_audit_pair(db, run_id, step, pid, {"text": f"policy {step} {pid}"},
                                {"text": f"reference {step} {pid}"})
        if i < len(prompt_ids) - 1:
            decision = "left" if i < policy_wins else "right"
            record_comparison(db, Comparison(prompt_id=pid, left_id=pair.policy_id, right_id=pair.reference_id,
                                             decision=decision))


@pytest.fixture
def audit_lab(run_lab):
    home, db = run_lab
    pids = add_prompts(db, ["Held-out one?", "Held-out two?", "Held-out three?", "Held-out four?"],
                       source="test", split="test").added
    _ppo_run(db, "ppo-plan", {"audit_pairs": 2, "checkpoint_every": 5})
    _ppo_run(db, "ppo-none", {}, status="completed")
    _ppo_run(db, "ppo-aud", {"audit_pairs": 4, "checkpoint_every": 5})
    runs_store.write_metrics(db, "ppo-aud", [(5, "objective/scores", 0.5), (5, "objective/kl", 0.25)])
    _audit(db, "ppo-aud", 5, pids, policy_wins=3)
    return home, db, pids


async def test_the_view_reads_the_database_for_the_highlighted_ppo_run(audit_lab):
    home, db, pids = audit_lab
    view = AuditView(id="audits")
    app = Host(view, home=home)
    async with app.run_test(size=(120, 20)) as pilot:
        await pilot.pause()
        assert not view.display
        view.show_run("ppo-aud", "ppo")
        await wait_for(pilot, lambda: view.has_class("-shown"))
        text = str(view.render())
        assert " step     5 " in text and "100% [44–100%]" in text and "W3 L0 T0" in text and "√KL 0.50" in text
        assert "peaks at step 5" in text and "1 audit pairs still wait on F1" in text
        view.show_run("rm-1", "rm")  # a reward-model run has no audits: the panel goes
        assert not view.has_class("-shown")
        view.show_run("ppo-plan", "ppo")
        await wait_for(pilot, lambda: view.has_class("-shown"))
        assert "2 audit pairs at each checkpoint (every 5 updates)" in str(view.render())
        view.show_run("ppo-none", "ppo")  # no audits asked, none made
        await wait_for(pilot, lambda: not view.has_class("-shown"))
        view.show_run(None, "ppo")
        assert not view.has_class("-shown")


async def test_the_view_rereads_the_same_run_only_after_a_pause(audit_lab):
    home, db, pids = audit_lab
    view = AuditView()
    view.REFRESH_S = 60.0  # a slow machine must not reach the real pause between the two asks
    app = Host(view, home=home)
    async with app.run_test(size=(120, 20)) as pilot:
        view.show_run("ppo-aud", "ppo")
        await wait_for(pilot, lambda: "W3 L0" in str(view.render()))
        # A decision arrives for the pending pair; the view asked again at once does not re-read.
        _audit(db, "ppo-aud", 10, pids, policy_wins=0)
        view.show_run("ppo-aud", "ppo")
        await pilot.pause(0.2)
        assert "step    10" not in str(view.render())
        view.REFRESH_S = 0.0
        view.show_run("ppo-aud", "ppo")
        await wait_for(pilot, lambda: "step    10" in str(view.render()))
        assert "W0 L3" in str(view.render())
