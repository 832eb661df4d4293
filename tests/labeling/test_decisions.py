"""What a labeling decision writes: the comparison as shown, an edit as a generation, undo, a note."""

from __future__ import annotations

import pytest

from tuilab.labeling.candidates import Candidate
from tuilab.labeling.decisions import add_note, record_decision, record_edit, undo_decision
from tuilab.labeling.queue import ReadyPair
from tuilab.store.comparisons import count_comparisons, get_comparison
from tuilab.store.db import open_db
from tuilab.store.generations import add_generation, get_generation
from tuilab.store.prompts import NotFound, get_prompt


@pytest.fixture
def db(lab):
    """The lab's database, with its ten prompts (the root `db` fixture is an empty one)."""
    database = open_db(lab.db)
    yield database
    database.conn.close()


def shown_pair(db, *, swapped: bool, repeat_of: int | None = None) -> ReadyPair:
    """Candidates A (short) and B (long) of the first prompt, stored, with A shown right when `swapped`."""
    prompt = get_prompt(db, db.execute("SELECT min(id) FROM prompts").fetchone()[0])
    a = Candidate("Paris.", "tiny", params={"side": "A"})
    b = Candidate("The capital of France is Paris.", "tiny", adapter="runs/ppo-1/policy", params={"side": "B"})
    a_id, b_id = (add_generation(db, prompt.id, c.text, model=c.model, adapter=c.adapter, params=c.params)
                  for c in (a, b))
    if swapped:
        return ReadyPair(prompt, b, a, b_id, a_id, True, repeat_of=repeat_of)
    return ReadyPair(prompt, a, b, a_id, b_id, False, repeat_of=repeat_of)


def test_a_decision_is_stored_as_shown_with_its_id(db):
    pair = shown_pair(db, swapped=True)
    c = record_decision(db, pair, "left", strength=2, rationale="shorter", seconds=3.5, annotator="ann")
    assert c.id is not None
    stored = get_comparison(db, c.id)
    assert (stored.prompt_id, stored.left_id, stored.right_id) == (pair.prompt.id, pair.left_id, pair.right_id)
    assert stored.swapped and get_generation(db, stored.left_id).params["side"] == "B"  # B was shown left
    assert (stored.decision, stored.strength, stored.rationale, stored.seconds, stored.annotator, stored.origin) == (
        "left", 2, "shorter", 3.5, "ann", "human")


def test_only_a_preference_can_be_much_better(db):
    pair = shown_pair(db, swapped=False)
    for decision in ("tie", "both_bad", "skip"):
        assert get_comparison(db, record_decision(db, pair, decision, strength=2).id).strength == 1
    assert get_comparison(db, record_decision(db, pair, "right", strength=2).id).strength == 2


def test_bad_decisions_are_refused_by_name_and_nothing_is_written(db):
    pair = shown_pair(db, swapped=False)
    with pytest.raises(ValueError, match="decision must be one of left, right, tie, both_bad, skip, got 'maybe'"):
        record_decision(db, pair, "maybe")
    with pytest.raises(ValueError, match="strength must be 1 .* got 3"):
        record_decision(db, pair, "left", strength=3)
    assert count_comparisons(db) == 0


def test_an_answer_to_a_repeat_is_stored_as_a_repeat_and_other_origins_are_kept(db):
    first = record_decision(db, shown_pair(db, swapped=False), "left")
    repeat = shown_pair(db, swapped=True, repeat_of=first.id)
    assert get_comparison(db, record_decision(db, repeat, "right").id).origin == "repeat"
    assert get_comparison(db, record_decision(db, repeat, "right", origin="ai").id).origin == "ai"
    assert get_comparison(db, record_decision(db, shown_pair(db, swapped=False), "tie", origin="ai").id).origin == "ai"


def test_an_edit_is_a_generation_based_on_the_side_it_started_from(db):
    pair = shown_pair(db, swapped=True)
    for side, base_id in (("left", pair.left_id), ("right", pair.right_id)):
        gid = record_edit(db, pair, f"Paris ({side}).", side)
        g = get_generation(db, gid)
        assert (g.text, g.origin, g.prompt_id, g.finished) == (f"Paris ({side}).", "edit", pair.prompt.id, True)
        assert g.params == {"based_on": base_id, "side": side}
    c = record_decision(db, pair, "left", edited_id=gid)
    assert get_comparison(db, c.id).edited_id == gid


def test_an_edit_based_on_no_side_is_refused(db):
    pair = shown_pair(db, swapped=False)
    with pytest.raises(ValueError, match="an edit is based on 'left' or 'right', got 'A'"):
        record_edit(db, pair, "Paris.", "A")
    assert db.execute("SELECT count(*) FROM generations WHERE origin = 'edit'").fetchone()[0] == 0


def test_undo_removes_the_decision_and_its_edit(db):
    pair = shown_pair(db, swapped=False)
    kept = record_decision(db, pair, "right")
    gid = record_edit(db, pair, "Paris, France.", "left")
    c = record_decision(db, pair, "left", edited_id=gid)
    undo_decision(db, c.id)
    with pytest.raises(NotFound):
        get_comparison(db, c.id)
    with pytest.raises(NotFound):  # an edit no other decision uses goes with it
        get_generation(db, gid)
    assert get_comparison(db, kept.id).decision == "right"  # nothing else touched
    assert get_generation(db, pair.left_id).text == "Paris."
    with pytest.raises(NotFound, match=f"no comparison with id {c.id}"):
        undo_decision(db, c.id)


def test_a_note_is_attached_and_replaced(db):
    c = record_decision(db, shown_pair(db, swapped=False), "left", rationale="first thought")
    add_note(db, c.id, "clearer and shorter")
    assert get_comparison(db, c.id).rationale == "clearer and shorter"
    add_note(db, c.id, "")
    assert get_comparison(db, c.id).rationale == ""
    with pytest.raises(NotFound, match="no comparison with id 999"):
        add_note(db, 999, "lost")
