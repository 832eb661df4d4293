"""The researcher's consistency on screen: the stats strip's intervals and self-agreement, the streamed
first pair, the data screen's agreement block, the disagreement source's reason — under the Pilot."""

from __future__ import annotations

import threading

from textual.widgets import ContentSwitcher, Static
from tuihelp import make_app, rows, wait_for

from tests.labeling.fake_source import FakeCandidateSource
from tests.labeling.pairs_lab import decided_pairs_lab
from tuilab.labeling.annotators import Rule
from tuilab.labeling.auto import auto_label
from tuilab.labeling.queue import ReadyPair
from tuilab.labeling.repeats import RepeatPolicy, pick_repeat
from tuilab.store.agreement import pairs_decided_by_others
from tuilab.store.db import open_db


def _with_repeat(root, n=30):
    """A lab with `n` human decisions (the hidden rule: shorter wins) and one repeat answered the same way."""
    import random

    from tuilab.labeling.decisions import record_decision

    paths, _ = decided_pairs_lab(root, n)
    db = open_db(paths.db)
    try:
        pair = pick_repeat(db, random.Random(0), RepeatPolicy(min_age=5), "human")
        record_decision(db, pair, "left" if len(pair.left.text) < len(pair.right.text) else "right")
    finally:
        db.conn.close()
    return paths


def _strip(app) -> str:
    return str(app.screen.query_one("#stats", Static).render())


async def test_stats_strip_shows_bias_intervals_and_self_agreement(tmp_path):
    paths = _with_repeat(tmp_path)
    app = make_app(paths)
    async with app.run_test(size=(160, 36)) as pilot:
        await wait_for(pilot, lambda: "self-agreement" in _strip(app))
        text = _strip(app)
        assert "self-agreement 100% [" in text and "on 1 repeat" in text
        assert "n=30" in text  # the count behind each bias (first decisions only: the repeat is not counted twice)
    narrow = make_app(paths)
    async with narrow.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "self 1/1" in _strip(narrow))
        assert "±" in _strip(narrow)


class StreamingFake(FakeCandidateSource):
    """The fake source, streaming a partial first pair and then waiting until released."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.preview = None
        self.release = threading.Event()

    def pairs(self, prompts):
        if self.preview is not None:
            self.preview("partial answer A", "partial answer B")
        self.release.wait(10)
        return [self.pair(p) for p in prompts]


async def test_first_pair_streams_onto_the_screen_and_keys_wait_for_it(lab):
    source = StreamingFake()
    app = make_app(lab, source=source)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        left = screen.query_one("#left")
        await wait_for(pilot, lambda: "partial answer" in str(left.query_one(Static).render()))
        assert screen.query_one("#body", ContentSwitcher).current == "pair"
        assert left.border_subtitle == "generating…" and screen.current is None
        await pilot.press("1")  # nothing to decide yet: nothing recorded
        assert rows(lab, "SELECT count(*) FROM comparisons") == [(0,)]
        source.release.set()
        await wait_for(pilot, lambda: screen.current is not None)
        shown = str(left.query_one(Static).render())
        assert shown.strip() == screen.current.left.text.strip() and left.border_subtitle != "generating…"


async def test_data_screen_shows_agreement_between_labelers(tmp_path):
    paths = _with_repeat(tmp_path)
    db = open_db(paths.db)
    try:
        rule = Rule("tests.labeling.rules:brevity")
        auto_label(db, [rule], pairs_decided_by_others(db, [rule.name]), seed=0)
    finally:
        db.conn.close()
    app = make_app(paths, start_feeder=False, mode="data")
    async with app.run_test(size=(160, 40)) as pilot:
        block = app.screen.query_one("#cmp-agreement", Static)
        await wait_for(pilot, lambda: block.display and "vs" in str(block.render()))
        text = str(block.render())
        assert "human vs rule:tests.labeling.rules:brevity: 100%" in text and "κ 1.00" in text
        assert "self-agreement 100%" in text and "on 30 pairs both decided" in text


async def test_reveal_says_why_the_disagreement_source_asked(lab):
    app = make_app(lab)
    async with app.run_test(size=(160, 36)) as pilot:
        await wait_for(pilot, lambda: app.screen.current is not None)
        screen = app.screen
        pair = screen.current
        why = "chosen because the 3 reward models disagree on it: P(A better) spread 0.30 around 0.50"
        left = type(pair.left)(**{**pair.left.__dict__, "params": {**pair.left.params, "why": why}})
        screen.current = ReadyPair(pair.prompt, left, pair.right, pair.left_id, pair.right_id, pair.swapped)
        await pilot.press("1")
        await wait_for(pilot, lambda: "reward models disagree" in str(screen.query_one("#status").render()))


def test_snapshot_stats_strip_with_intervals(tmp_path, snap_compare):
    paths = _with_repeat(tmp_path)

    async def run_before(pilot):
        app = pilot.app
        await wait_for(pilot, lambda: app.screen.current is not None and app.feeder.ready == app.feeder.capacity
                       and app.feed_state.phase == "idle" and "self-agreement" in _strip(app))

    assert snap_compare(make_app(paths), terminal_size=(160, 30), run_before=run_before)


def _audited_run(root):
    """A lab with a PPO run whose audit pairs were decided: the policy wins at step 5, loses at step 10."""
    from tests.tui.tuihelp import make_lab
    from tuilab.records import Comparison
    from tuilab.store import runs
    from tuilab.store.audits import queue_audit_pair
    from tuilab.store.comparisons import record_comparison
    from tuilab.store.prompts import add_prompts

    paths = make_lab(root)
    db = open_db(paths.db)
    try:
        add_prompts(db, ["Held-out one?", "Held-out two?", "Held-out three?"], source="test", split="test")
        runs.create_run(db, "ppo", {}, run_id="ppo-aud")
        runs.set_run_status(db, "ppo-aud", "completed")
        runs.write_metrics(db, "ppo-aud", [(5, "objective/scores", 0.1), (5, "objective/kl", 0.09),
                                           (10, "objective/scores", 1.2), (10, "objective/kl", 0.64)])
        pids = [r[0] for r in db.execute("SELECT id FROM prompts WHERE split = 'test' ORDER BY id")]
        for step, policy_wins in ((5, True), (10, False)):
            for pid in pids:
                pair = queue_audit_pair(db, "ppo-aud", step, pid, {"text": f"policy {step} {pid}"},
                                        {"text": f"reference {step} {pid}"})
                winner = pair.policy_id if policy_wins else pair.reference_id
                record_comparison(db, Comparison(prompt_id=pid, left_id=pair.policy_id, right_id=pair.reference_id,
                                                 decision="left" if winner == pair.policy_id else "right"))
        queue_audit_pair(db, "ppo-aud", 15, pids[0], {"text": "policy 15"}, {"text": "reference 15"})  # pending
    finally:
        db.conn.close()
    return paths


async def test_runs_screen_shows_the_human_win_rate_per_audited_step(tmp_path):
    paths = _audited_run(tmp_path)
    app = make_app(paths, start_feeder=False, mode="runs")
    async with app.run_test(size=(140, 45)) as pilot:
        panel = app.screen.query_one("#runs-audits")
        await wait_for(pilot, lambda: panel.has_class("-shown"))
        text = str(panel.render())
        assert "step     5" in text and "100% [44–100%]" in text and "W3 L0" in text
        assert "step    10" in text and "0% [0–56%]" in text and "√KL 0.80" in text
        assert "peaks at step 5" in text and "keep step 5" in text and "1 audit pairs still wait" in text


def test_interval_bar_marks_estimate_interval_and_half():
    from tuilab.tui.widgets.audits import interval_bar

    bar = interval_bar(0.25, 0.5, 0.75, width=9).plain
    assert bar == "··━━●━━··"
    assert interval_bar(0.0, 0.1, 0.2, width=11).plain == "━●━··┆·····"  # 0.1 → column 1 of 0..10


def test_snapshot_audit_panel(tmp_path, snap_compare):
    from textual.app import App

    from tuilab.labeling.audits import peak_message, win_rate_curve
    from tuilab.store.audits import pending_audit_pairs
    from tuilab.tui.widgets.audits import audit_text

    paths = _audited_run(tmp_path)
    db = open_db(paths.db)
    try:
        points = win_rate_curve(db, "ppo-aud")
        text = audit_text("ppo-aud", points, len(pending_audit_pairs(db)), peak_message(points))
    finally:
        db.conn.close()

    class Panel(App):
        def compose(self):
            yield Static(text)

    assert snap_compare(Panel(), terminal_size=(110, 8))


async def test_repeat_share_reaches_the_queue(lab):
    for share in (0.0, 0.2):
        app = make_app(lab, repeat_share=share)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda app=app: app.feeder is not None)
            assert app.feeder.repeats.share == share and app.feeder.labeler == "human"


async def test_audit_pairs_come_first_on_the_label_screen_marked_and_blind(tmp_path):
    paths = _audited_run(tmp_path)  # one audit pair (step 15) still pending
    app = make_app(paths)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.current is not None)
        screen = app.screen
        assert screen.query_one("#prompt").border_subtitle == "audit pair · ppo-aud step 15"
        texts = {screen.current.left.text, screen.current.right.text}
        assert texts == {"policy 15", "reference 15"}
        assert "ppo" not in screen.query_one("#left").border_title.lower()  # nothing says which is which
        await pilot.press("1")
        await wait_for(pilot, lambda: screen.query_one("#prompt").border_subtitle != "audit pair · ppo-aud step 15")
    db = open_db(paths.db)
    try:
        from tuilab.store.audits import audit_verdicts, pending_audit_pairs

        assert pending_audit_pairs(db) == [] and len(audit_verdicts(db, "ppo-aud")) == 7
    finally:
        db.conn.close()


async def test_settings_choose_the_disagreement_queue(lab):
    from textual.widgets import RadioButton, Select

    from tuilab.labeling.candidates import SourceSpec
    from tuilab.tui.screens.settings import SettingsScreen

    folder = lab.models / "runs" / "rm-1"
    folder.mkdir(parents=True)
    (folder / "reward.json").write_text("{}")
    built: list[SourceSpec] = []

    def factory(spec: SourceSpec):
        built.append(spec)
        return FakeCandidateSource(label=f"fake {spec.mode}")

    app = make_app(lab, source=None, source_factory=factory)
    async with app.run_test(size=(100, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.current is not None)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        dialog = app.screen
        assert dialog.query_one("#reward-run", Select).disabled
        dialog.query_one("#mode-disagreement", RadioButton).value = True
        await pilot.pause()
        assert not dialog.query_one("#reward-run", Select).disabled
        await pilot.press("ctrl+s")  # no reward model chosen yet: refused with the reason
        assert app.screen is dialog and "needs a reward model" in str(dialog.query_one("#settings-error").render())
        dialog.query_one("#reward-run", Select).value = "runs/rm-1"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert (built[-1].mode, built[-1].reward_run, built[-1].samples) == ("disagreement", "runs/rm-1", 4)
    assert SourceSpec(mode="disagreement", reward_run="runs/rm-1").describe("m") == (
        "m: the most disputed of 4 samples by runs/rm-1")
