"""The pair feeder without a UI: queue fill, stored generations, side coin-flips, priority, failures, previews."""

from __future__ import annotations

import threading

import pytest

from tests.labeling.fake_source import FakeCandidateSource
from tests.tui.tuihelp import make_lab, rows, wait_for_thread
from tuilab.labeling.candidates import ModelCandidateSource, SourceSpec
from tuilab.labeling.queue import PairFeeder
from tuilab.labeling.repeats import RepeatPolicy
from tuilab.modeling.host import ModelHost


def recorder(posted: list):
    """The two callbacks a UI gives the queue, recording (kind, state) in `posted`."""
    return {"on_state": lambda s: posted.append(("state", s)), "on_pair": lambda s, _pid: posted.append(("pair", s))}


def start(feeder: PairFeeder) -> threading.Thread:
    thread = threading.Thread(target=feeder.run, daemon=True)
    thread.start()
    return thread


def test_fills_to_capacity_and_stores_every_generation(lab):
    posted = []
    feeder = PairFeeder(lab.db, FakeCandidateSource(), capacity=3, **recorder(posted), seed=1)
    thread = start(feeder)
    wait_for_thread(lambda: feeder.ready == 3)
    pairs = [feeder.take() for _ in range(3)]
    for p in pairs:
        stored = dict(rows(lab, "SELECT id, text FROM generations WHERE prompt_id = ?", (p.prompt.id,)))
        assert stored[p.left_id] == p.left.text and stored[p.right_id] == p.right.text
    assert len({p.prompt.id for p in pairs}) == 3  # distinct prompts
    assert any(kind == "pair" for kind, _ in posted)
    feeder.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert posted[-1][0] == "state" and posted[-1][1].phase == "stopped"


def test_sides_are_a_recorded_coin_flip(lab):
    feeder = PairFeeder(lab.db, FakeCandidateSource(), capacity=40, seed=3)
    thread = start(feeder)
    wait_for_thread(lambda: feeder.ready == 40, timeout=30)
    feeder.stop()
    thread.join(5)
    pairs = [feeder.take() for _ in range(40)]
    flips = [p.swapped for p in pairs]
    assert 8 < sum(flips) < 32
    for p in pairs:
        # A is the source's first (short) candidate.
        assert p.a.params["side"] == "A" and p.b.params["side"] == "B"
        assert (p.left.params["side"] == "B") == p.swapped


def test_same_seed_same_pairs(tmp_path):
    def run(root):
        lab = make_lab(root)
        feeder = PairFeeder(lab.db, FakeCandidateSource(), capacity=4, seed=7)
        thread = start(feeder)
        wait_for_thread(lambda: feeder.ready == 4)
        feeder.stop()
        thread.join(5)
        return [(p.prompt.text, p.left.text, p.swapped) for p in (feeder.take() for _ in range(4))]

    assert run(tmp_path / "a") == run(tmp_path / "b")


def test_put_front_and_regenerate_come_first(lab):
    feeder = PairFeeder(lab.db, FakeCandidateSource(), capacity=2, seed=0)
    thread = start(feeder)
    wait_for_thread(lambda: feeder.ready == 2)
    first = feeder.take()
    feeder.put_front(first)
    assert feeder.take() is first
    feeder.regenerate(first.prompt)
    wait_for_thread(lambda: any(p.prompt.id == first.prompt.id for p in list(feeder._ready)))
    again = feeder.take(prompt_id=first.prompt.id)
    assert again is not None and again.left_id not in (first.left_id, first.right_id)
    feeder.stop()
    thread.join(5)


def test_failure_halts_until_retry(lab):
    posted = []
    source = FakeCandidateSource(fail="out of memory")
    feeder = PairFeeder(lab.db, source, capacity=2, **recorder(posted))
    thread = start(feeder)
    wait_for_thread(lambda: feeder.state.phase == "failed")
    calls = source.calls
    assert feeder.state.error == "RuntimeError: out of memory"
    assert "Traceback" in feeder.state.traceback
    threading.Event().wait(0.3)
    assert source.calls == calls  # halted: no retry loop burning the CPU
    source.fail = None
    feeder.retry()
    wait_for_thread(lambda: feeder.ready == 2)
    feeder.stop()
    thread.join(5)


def test_no_prompts_then_prompts_arrive(tmp_path):
    from tuilab.store.db import open_db
    from tuilab.store.prompts import add_prompts

    lab = make_lab(tmp_path, prompts=[])
    feeder = PairFeeder(lab.db, FakeCandidateSource(), capacity=1, poll_s=0.1)
    thread = start(feeder)
    wait_for_thread(lambda: feeder.state.phase == "no_prompts")
    assert "tuilab data import" in feeder.state.error
    db = open_db(lab.db)
    add_prompts(db, ["A late prompt?"], split="train")
    db.conn.close()
    wait_for_thread(lambda: feeder.ready == 1)
    feeder.stop()
    thread.join(5)


def test_fewer_prompts_than_the_queue_repeats_rather_than_starves(tmp_path):
    lab = make_lab(tmp_path, prompts=["Only one prompt?"])
    feeder = PairFeeder(lab.db, FakeCandidateSource(), capacity=3)
    thread = start(feeder)
    wait_for_thread(lambda: feeder.ready == 3)
    feeder.stop()
    thread.join(5)


def test_capacity_must_be_positive(lab):
    with pytest.raises(ValueError, match="at least 1"):
        PairFeeder(lab.db, FakeCandidateSource(), capacity=0)


def _write_audits(lab, step: int, n: int = 2) -> list:
    """What a PPO run does at an audited checkpoint: `n` audit pairs written through its own connection."""
    from tuilab.store import runs
    from tuilab.store.audits import queue_audit_pair
    from tuilab.store.db import open_db
    from tuilab.store.prompts import add_prompts

    db = open_db(lab.db)
    try:
        if not db.execute("SELECT 1 FROM runs WHERE id = 'ppo-live'").fetchone():
            runs.create_run(db, "ppo", {}, run_id="ppo-live")
            add_prompts(db, [f"Held-out {i}?" for i in range(n)], source="test", split="test")
        pids = [r[0] for r in db.execute("SELECT id FROM prompts WHERE split = 'test' ORDER BY id")][:n]
        return [queue_audit_pair(db, "ppo-live", step, pid, {"text": f"policy {step} {pid}"},
                                 {"text": f"reference {step} {pid}"}) for pid in pids]
    finally:
        db.conn.close()


def test_audit_pairs_written_after_the_queue_filled_are_served_next(lab):
    from tuilab.labeling.repeats import RepeatPolicy
    from tuilab.store.db import open_db

    feeder = PairFeeder(lab.db, FakeCandidateSource(), capacity=3, seed=2, repeats=RepeatPolicy(0.0))
    thread = start(feeder)
    wait_for_thread(lambda: feeder.ready == 3)
    generated = list(feeder._ready)
    audits = _write_audits(lab, step=4)
    ui_db = open_db(lab.db)  # the label screen's own connection
    try:
        first, second = feeder.take(db=ui_db), feeder.take(db=ui_db)
        # Served straight from the database, oldest first, without touching the pairs generated before.
        assert [(p.is_audit, {p.left_id, p.right_id}) for p in (first, second)] == [
            (True, {a.policy_id, a.reference_id}) for a in audits]
        assert first.source == "audit pair · ppo-live step 4" and feeder.ready == 3
        # Handed out but not decided yet (still pending in the database): never served twice.
        assert feeder.take(db=ui_db) is generated[0]
        wait_for_thread(lambda: feeder.ready == 3)  # the worker refilled the slot with a generated pair
        assert not any(p.is_audit for p in feeder._ready)
        # Audits of a later step come first again, then the generated pairs in their order.
        later = _write_audits(lab, step=8, n=1)
        assert {feeder.take(db=ui_db).left_id} <= {later[0].policy_id, later[0].reference_id}
        assert feeder.take(db=ui_db) is generated[1] and feeder.take(db=ui_db) is generated[2]
    finally:
        feeder.stop()
        thread.join(5)
        ui_db.conn.close()


def test_audit_pairs_the_worker_queued_come_before_older_generated_pairs(lab):
    from tuilab.labeling.repeats import RepeatPolicy

    feeder = PairFeeder(lab.db, FakeCandidateSource(), capacity=3, seed=5, repeats=RepeatPolicy(0.0))
    thread = start(feeder)
    wait_for_thread(lambda: feeder.ready == 3)
    audits = _write_audits(lab, step=2, n=1)
    first = feeder.take()  # without a connection: the worker's own check fills the free slot
    assert not first.is_audit
    wait_for_thread(lambda: any(p.is_audit for p in list(feeder._ready)))
    queued = list(feeder._ready)
    assert queued[-1].is_audit  # it joined the back …
    served = feeder.take()
    assert served.is_audit and {served.left_id, served.right_id} == {audits[0].policy_id, audits[0].reference_id}
    assert feeder.take() is queued[0]  # … and was served before the pairs ahead of it
    # A pair given back by undo (put_front) still comes back first.
    feeder.put_front(first)
    _write_audits(lab, step=3, n=1)
    assert feeder.take() is first
    feeder.stop()
    thread.join(5)


def test_feeder_publishes_the_preview_on_the_side_it_will_be_shown(tiny_model_dir, lab, tmp_path):
    host = ModelHost(tmp_path, str(tiny_model_dir))
    states = []
    source = ModelCandidateSource(host, SourceSpec(max_new_tokens=16, seed=1))
    feeder = PairFeeder(lab.db, source, capacity=1, seed=4, on_state=states.append, repeats=RepeatPolicy(0.0))
    thread = threading.Thread(target=feeder.run, daemon=True)
    thread.start()
    wait_for_thread(lambda: feeder.ready == 1, timeout=60)
    feeder.stop()
    thread.join(10)
    pair = feeder.take()
    previews = [s for s in states if s.preview_left or s.preview_right]
    assert previews and all(s.preview_prompt.id == pair.prompt.id for s in previews)
    for s in previews:
        assert pair.left.text.startswith(s.preview_left) and pair.right.text.startswith(s.preview_right)
    # Cleared once the pair is queued.
    after = [s for s in states if s.ready == 1]
    assert after and not after[0].preview_left and after[0].preview_prompt is None
