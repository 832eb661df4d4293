"""Comparisons → trainable pairs: the single rule training and export share."""

from __future__ import annotations

import pytest

from tuilab.records import Comparison
from tuilab.store.comparisons import record_comparison
from tuilab.store.generations import add_generation
from tuilab.store.pairs import pair_margin, preference_pairs
from tuilab.store.prompts import add_prompts


@pytest.fixture
def lab(db):
    p_train = add_prompts(db, ["Train prompt"], split="train").added[0]
    p_test = add_prompts(db, ["Test prompt"], split="test").added[0]
    gens = {name: add_generation(db, p_train, name) for name in ("A", "B", "E")}
    gens |= {name: add_generation(db, p_test, name) for name in ("X", "Y")}

    def rec(left, right, decision, prompt=p_train, **kw):
        return record_comparison(db, Comparison(prompt, gens[left], gens[right], decision, **kw))

    return db, rec, gens, p_train, p_test


def triples(pairs):
    return [(p.chosen, p.rejected, p.label, p.margin) for p in pairs]


def test_left_right_tie_both_bad_skip(lab):
    db, rec, *_ = lab
    rec("A", "B", "left")
    rec("A", "B", "right")
    rec("A", "B", "tie")
    rec("A", "B", "both_bad")
    rec("A", "B", "skip")
    assert triples(preference_pairs(db)) == [("A", "B", 1.0, None), ("B", "A", 1.0, None)]
    assert triples(preference_pairs(db, ties="half")) == [
        ("A", "B", 1.0, None), ("B", "A", 1.0, None), ("A", "B", 0.5, None),
    ]  # fmt: skip


def test_edits_are_preferred_over_both_sides(lab):
    db, rec, gens, p_train, _ = lab
    rec("A", "B", "left", edited_id=gens["E"])
    rec("A", "B", "both_bad", edited_id=gens["E"], strength=2)
    rec("A", "B", "skip", edited_id=gens["E"])
    assert triples(preference_pairs(db)) == [
        ("A", "B", 1.0, None), ("E", "A", 1.0, None), ("E", "B", 1.0, None),
        ("E", "A", 1.0, 1.0), ("E", "B", 1.0, 1.0),
    ]  # fmt: skip


def test_margins(lab):
    db, rec, *_ = lab
    rec("A", "B", "left", strength=2)
    rec("A", "B", "left", margin=0.25, strength=2)
    rec("A", "B", "right", margin=3.0)
    assert [p.margin for p in preference_pairs(db)] == [1.0, 0.25, 3.0]
    assert pair_margin(None, 1) is None


def test_pair_fields_and_split_filter(lab):
    db, rec, _, p_train, p_test = lab
    cid = rec("A", "B", "left")
    rec("X", "Y", "right", prompt=p_test)
    train = preference_pairs(db, split="train")
    assert len(train) == 1
    p = train[0]
    assert (p.comparison_id, p.prompt_id, p.split) == (cid, p_train, "train")
    assert p.messages == [{"role": "user", "content": "Train prompt"}]
    assert triples(preference_pairs(db, split="test")) == [("Y", "X", 1.0, None)]
    with pytest.raises(ValueError):
        preference_pairs(db, split="dev")
    with pytest.raises(ValueError, match="ties"):
        preference_pairs(db, ties="keep")


def test_equal_texts_teach_nothing(lab):
    db, rec, gens, p_train, _ = lab
    same = add_generation(db, p_train, "A")
    record_comparison(db, Comparison(p_train, gens["A"], same, "left"))
    assert preference_pairs(db) == []


def test_a_repeat_does_not_count_the_pair_twice(lab):
    """A self-consistency repeat (sides swapped, origin "repeat") trains and exports nothing more."""
    db, rec, *_ = lab
    rec("A", "B", "left")
    rec("B", "A", "right", swapped=True, origin="repeat")
    assert triples(preference_pairs(db)) == [("A", "B", 1.0, None)]
