"""Consistency figures from a real database: repeats, self-agreement, side and length bias, pairwise agreement."""

from __future__ import annotations

import pytest

from tests.tui.tuihelp import make_lab
from tuilab.labeling.consistency import consistency, labeler_agreement, split_repeats
from tuilab.records import Comparison
from tuilab.store.agreement import decision_rows, labelers, pairs_decided_by_others
from tuilab.store.comparisons import record_comparison
from tuilab.store.db import open_db
from tuilab.store.generations import add_generation


@pytest.fixture
def db(tmp_path):
    paths = make_lab(tmp_path)
    database = open_db(paths.db)
    yield database
    database.conn.close()


def _pair(db, short="Yes.", long="A much longer answer with detail."):
    pid = db.execute("SELECT min(id) FROM prompts").fetchone()[0]
    a = add_generation(db, pid, short, n_tokens=2)
    b = add_generation(db, pid, long, n_tokens=9)
    return pid, a, b


def _decide(db, pid, left, right, decision, annotator="", origin="human"):
    return record_comparison(db, Comparison(prompt_id=pid, left_id=left, right_id=right, decision=decision,
                                            annotator=annotator, origin=origin))


def test_a_repeat_is_the_same_pair_by_the_same_labeler_in_either_order(db):
    pid, a, b = _pair(db)
    first = _decide(db, pid, a, b, "left")
    again = _decide(db, pid, b, a, "right")  # shown swapped, same answer (a) wins
    other = _decide(db, pid, b, a, "left", annotator="judge:x", origin="auto")
    firsts, repeats = split_repeats(decision_rows(db))
    assert [r.id for r in firsts] == [first, other]
    assert [(f.id, r.id) for f, r in repeats] == [(first, again)]
    report = consistency(db)
    human = report.labelers["human"]
    assert human.repeats == 1 and human.self_agreement.agree == 1 and human.self_agreement.n == 1
    # judge:x picked b: disagrees with the human on the one shared pair.
    (a_name, b_name, agr) = report.pairwise[0]
    assert {a_name, b_name} == {"human", "judge:x"} and agr.n == 1 and agr.agree == 0
    assert labelers(db) == {"human": 2, "judge:x": 1}


def test_self_agreement_counts_flips_and_has_an_interval(db):
    for i in range(20):
        pid, a, b = _pair(db, short=f"s{i}", long=f"a longer answer {i}")
        _decide(db, pid, a, b, "left")
        # 15 of 20 repeats keep the same winner (sides swapped), 5 change their mind.
        _decide(db, pid, b, a, "right" if i < 15 else "left")
    agr = consistency(db, resamples=200).labelers["human"].self_agreement
    assert (agr.n, agr.agree) == (20, 15)
    assert agr.percent.low < 0.75 < agr.percent.high


def test_position_and_length_bias_over_first_decisions(db):
    for i in range(10):
        pid, a, b = _pair(db, short=f"s{i}", long=f"a longer answer {i}")
        # Always picks the left answer; the longer one is on the left in 4 of 10.
        left, right = (b, a) if i < 4 else (a, b)
        _decide(db, pid, left, right, "left")
    human = consistency(db).labelers["human"]
    assert human.position.estimate == 1.0 and human.position.n == 10
    assert human.length.estimate == pytest.approx(0.4) and human.length.n == 10
    assert "left picked 100%" in consistency(db).lines()[0]


def test_skips_and_hacked_marks_are_left_out(db):
    pid, a, b = _pair(db)
    _decide(db, pid, a, b, "skip")
    _decide(db, pid, a, b, "left", origin="hacked")
    assert decision_rows(db) == []
    assert consistency(db).lines() == []


def test_pairs_decided_by_others_skips_what_the_annotator_decided(db):
    pid, a, b = _pair(db)
    pid2, c, d = _pair(db, "x", "yy")
    _decide(db, pid, a, b, "left")
    _decide(db, pid2, c, d, "right")
    _decide(db, pid2, d, c, "left", annotator="rule:r", origin="auto")
    todo = pairs_decided_by_others(db, ["rule:r"])
    assert [(p.a_id, p.b_id) for p in todo] == [(a, b)]
    assert pairs_decided_by_others(db, ["other"], limit=1)[0].a_id == a
    agr = labeler_agreement(db, "human", "rule:r")
    assert (agr.n, agr.agree) == (1, 1)
