"""Reads for labeler consistency: who decided what, pairs others decided, decisions that may come back as repeats."""

from __future__ import annotations

import pytest

from tuilab.records import Comparison
from tuilab.store.agreement import (
    DecisionRow,
    decision_rows,
    labelers,
    pairs_decided_by_others,
    repeat_candidates,
)
from tuilab.store.comparisons import record_comparison
from tuilab.store.generations import add_generation
from tuilab.store.prompts import add_prompts


@pytest.fixture
def lab(db):
    """Two prompts with three answers each: ids in `lab["gens"][prompt index]`."""
    pids = add_prompts(db, ["first question?", "second question?"]).ids
    gens = [
        [add_generation(db, pid, text, n_tokens=n) for text, n in (("short", 1), ("a longer one", 3), ("mid size", 2))]
        for pid in pids
    ]
    return {"pids": pids, "gens": gens}


def decide(db, pid, left, right, decision="left", **kw):
    return record_comparison(db, Comparison(pid, left, right, decision, **kw))


def test_decision_rows_name_the_labeler_and_leave_out_skips_and_hacked_marks(db, lab):
    pid, (a, b, c) = lab["pids"][0], lab["gens"][0]
    first = decide(db, pid, a, b)  # a person at the label screen
    decide(db, pid, a, c, "skip")
    repeat = decide(db, pid, b, a, "right", origin="repeat")  # their answer to a repeat: still "human"
    judged = decide(db, pid, a, c, "tie", origin="ai", annotator="judge:small")
    imported = decide(db, pid, b, c, "both_bad", origin="import")
    decide(db, pid, b, c, origin="hacked")
    rows = decision_rows(db)
    assert [(r.id, r.labeler, r.origin, r.decision) for r in rows] == [
        (first, "human", "human", "left"),
        (repeat, "human", "repeat", "right"),
        (judged, "judge:small", "ai", "tie"),
        (imported, "import", "import", "both_bad"),
    ]
    assert rows[1].key == rows[0].key == (a, b)  # the same pair, whichever side each was shown on


def test_decision_rows_measure_tokens_when_both_are_known_else_characters(db, lab):
    pid, (a, b, _) = lab["pids"][0], lab["gens"][0]
    no_count = add_generation(db, pid, "seventeen letters")  # n_tokens unknown
    decide(db, pid, b, a)
    decide(db, pid, a, no_count)
    tokens, chars = decision_rows(db)
    assert (tokens.left_len, tokens.right_len) == (3, 1)
    assert (chars.left_len, chars.right_len) == (len("short"), len("seventeen letters"))
    assert isinstance(tokens, DecisionRow) and tokens.prompt_id == pid


def test_no_decisions_no_rows(db, lab):
    assert decision_rows(db) == [] and labelers(db) == {} and pairs_decided_by_others(db, ["human"]) == []


def test_labelers_count_decisions_most_first(db, lab):
    pid, (a, b, c) = lab["pids"][0], lab["gens"][0]
    for left, right in ((a, b), (a, c), (b, c)):
        decide(db, pid, left, right)
    decide(db, pid, a, b, origin="repeat")
    decide(db, pid, a, b, annotator="judge:x", origin="ai")
    decide(db, pid, a, c, annotator="alice")  # a named person is their own labeler
    decide(db, pid, b, c, annotator="alice")
    decide(db, pid, a, b, "skip", annotator="bob")
    decide(db, pid, a, b, origin="hacked")
    assert list(labelers(db).items()) == [("human", 4), ("alice", 2), ("judge:x", 1)]


def test_pairs_decided_by_others_come_once_in_a_neutral_order(db, lab):
    (p1, p2), ((a, b, c), (d, e, _)) = lab["pids"], lab["gens"]
    decide(db, p1, b, a)  # shown b | a: the pair comes back as a (lower id) then b
    decide(db, p1, a, b, "right")  # the same pair again: still one pair
    decide(db, p2, d, e, annotator="judge:x", origin="ai")
    decide(db, p1, a, c, "skip")  # a skip decides nothing
    decide(db, p1, b, c, origin="hacked")  # a program chose these sides
    todo = pairs_decided_by_others(db, ["judge:y"])
    assert [(t.prompt_id, t.a_id, t.b_id) for t in todo] == [(p1, a, b), (p2, d, e)]
    assert (todo[0].prompt_text, todo[0].a_text, todo[0].b_text) == ("first question?", "short", "a longer one")
    assert '"first question?"' in todo[0].messages_json
    # what the annotator already decided is left out, as is what any of the names decided
    assert [t.a_id for t in pairs_decided_by_others(db, ["judge:x"])] == [a]
    assert pairs_decided_by_others(db, ["judge:x", "human"]) == []
    assert [t.a_id for t in pairs_decided_by_others(db, ["judge:y"], limit=1)] == [a]


def test_repeat_candidates_are_old_single_decisions(db, lab):
    pid, (a, b, c) = lab["pids"][0], lab["gens"][0]
    p2, (d, e, f) = lab["pids"][1], lab["gens"][1]
    oldest = decide(db, pid, a, b, swapped=True)
    decide(db, pid, a, c, "skip")  # a skip is never repeated
    edited = add_generation(db, pid, "my rewrite", origin="edit")
    decide(db, pid, b, c, edited_id=edited)  # nor an edit
    twice = decide(db, p2, d, e)
    decide(db, p2, e, d, origin="repeat")  # already repeated: decided twice
    other = decide(db, p2, d, f, annotator="judge:x", origin="ai")  # someone else's
    recent = decide(db, p2, e, f)
    got = repeat_candidates(db, "human", min_age=1)  # the latest decision is too fresh to repeat
    assert [r.comparison_id for r in got] == [oldest]
    assert got[0].swapped is True and got[0].key == (a, b) and got[0].prompt_id == pid
    assert [r.comparison_id for r in repeat_candidates(db, "human", min_age=0)] == [oldest, recent]
    assert repeat_candidates(db, "human", min_age=100) == []
    assert [r.comparison_id for r in repeat_candidates(db, "judge:x", min_age=0)] == [other]
    assert twice not in [r.comparison_id for r in repeat_candidates(db, "human", min_age=0)]
