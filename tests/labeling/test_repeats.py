"""Self-consistency repeats: older decisions come back sides swapped, unmarked, never the latest few."""

from __future__ import annotations

import random
import threading

import pytest

from tests.labeling.fake_source import FakeCandidateSource
from tests.labeling.pairs_lab import decided_pairs_lab
from tests.tui.tuihelp import make_lab, wait_for_thread
from tuilab.labeling.consistency import consistency
from tuilab.labeling.decisions import record_decision
from tuilab.labeling.queue import PairFeeder
from tuilab.labeling.repeats import RepeatPolicy, pick_repeat
from tuilab.store.comparisons import get_comparison
from tuilab.store.db import open_db


def test_pick_repeat_swaps_sides_and_skips_the_latest(tmp_path):
    paths, truth = decided_pairs_lab(tmp_path, 25)
    db = open_db(paths.db)
    try:
        policy = RepeatPolicy(share=0.5, min_age=20)
        seen = set()
        for seed in range(40):
            pair = pick_repeat(db, random.Random(seed), policy, "human")
            first = get_comparison(db, next(cid for cid, _ in truth if (
                {get_comparison(db, cid).left_id, get_comparison(db, cid).right_id} == {pair.left_id, pair.right_id})))
            seen.add(first.id)
            # Shown the other way round: what was left is now right, and A changed side with it.
            assert (pair.left_id, pair.right_id) == (first.right_id, first.left_id)
            assert pair.swapped == (not first.swapped)
            assert pair.left.text and pair.prompt.id == first.prompt_id
        oldest = {cid for cid, _ in truth[:5]}
        assert seen == oldest  # only the 5 decisions older than the latest 20
        # Once repeated, a pair is not asked a third time.
        record_decision(db, pair, "left")
        again = {pick_repeat(db, random.Random(s), policy, "human").left_id for s in range(30)}
        assert pair.left_id not in again and pair.right_id not in again
        assert pick_repeat(db, random.Random(0), policy, "someone-else") is None
        assert pick_repeat(db, random.Random(0), RepeatPolicy(min_age=26), "human") is None  # 26 decisions now
    finally:
        db.conn.close()


def test_a_repeat_answered_the_same_way_counts_as_self_agreement(tmp_path):
    paths, truth = decided_pairs_lab(tmp_path, 30)
    db = open_db(paths.db)
    try:
        pair = pick_repeat(db, random.Random(1), RepeatPolicy(min_age=5), "human")
        # The hidden rule again: the shorter answer wins, wherever it is shown.
        record_decision(db, pair, "left" if len(pair.left.text) < len(pair.right.text) else "right")
        human = consistency(db, resamples=50).labelers["human"]
    finally:
        db.conn.close()
    assert human.repeats == 1 and human.self_agreement.agree == 1
    assert human.decisions == 30  # the repeat is not a second first decision


def test_feeder_serves_repeats_among_fresh_pairs(tmp_path):
    paths, truth = decided_pairs_lab(tmp_path, 40)
    decided = {frozenset(get(paths, cid)) for cid, _ in truth}
    feeder = PairFeeder(paths.db, FakeCandidateSource(), capacity=30, seed=2, repeats=RepeatPolicy(0.5, 10))
    thread = threading.Thread(target=feeder.run, daemon=True)
    thread.start()
    wait_for_thread(lambda: feeder.ready >= 30, timeout=30)
    feeder.stop()
    thread.join(5)
    pairs = [feeder.take() for _ in range(30)]
    repeats = [p for p in pairs if frozenset((p.left_id, p.right_id)) in decided]
    assert 5 <= len(repeats) <= 25
    assert all(p.source == pairs[0].source for p in pairs)  # unmarked: same source label as fresh pairs
    assert len({frozenset((p.left_id, p.right_id)) for p in repeats}) == len(repeats)


def get(paths, cid):
    db = open_db(paths.db)
    try:
        c = get_comparison(db, cid)
        return c.left_id, c.right_id
    finally:
        db.conn.close()


def test_repeats_do_not_change_fresh_pairs_and_bad_shares_are_refused(tmp_path):
    def sides(root, policy):
        lab = make_lab(root)
        feeder = PairFeeder(lab.db, FakeCandidateSource(), capacity=6, seed=5, repeats=policy)
        thread = threading.Thread(target=feeder.run, daemon=True)
        thread.start()
        wait_for_thread(lambda: feeder.ready == 6)
        feeder.stop()
        thread.join(5)
        return [(p.prompt.id, p.swapped) for p in (feeder.take() for _ in range(6))]

    # No decisions yet: nothing to repeat, and the fresh pairs are those of a feeder without repeats.
    assert sides(tmp_path / "a", RepeatPolicy()) == sides(tmp_path / "b", RepeatPolicy(share=0.0))
    with pytest.raises(ValueError, match="repeat share"):
        PairFeeder(tmp_path / "x.db", FakeCandidateSource(), repeats=RepeatPolicy(share=0.9))


def test_a_persons_answer_to_a_repeat_is_stored_apart(tmp_path):
    paths, _ = decided_pairs_lab(tmp_path, 25)
    db = open_db(paths.db)
    try:
        pair = pick_repeat(db, random.Random(3), RepeatPolicy(min_age=20), "human")
        assert pair.repeat_of is not None
        cid = record_decision(db, pair, "left").id
        assert get_comparison(db, cid).origin == "repeat"
        human = consistency(db, resamples=20).labelers["human"]  # still the same labeler
        assert human.repeats == 1 and human.decisions == 25
        assert set(consistency(db).labelers) == {"human"}
    finally:
        db.conn.close()
