"""Comparisons: record, read, update, delete, list with filters, label stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tuilab.records import Comparison
from tuilab.store.comparisons import (
    count_comparisons,
    db_timestamp,
    delete_comparison,
    get_comparison,
    label_stats,
    list_comparisons,
    record_comparison,
    update_comparison,
)
from tuilab.store.generations import add_generation, get_generation
from tuilab.store.prompts import NotFound, add_prompts


@pytest.fixture
def lab(db):
    """Two prompts with responses: short/long answers to a sky question, two to a limerick."""
    p1, p2 = add_prompts(db, ["Why is the sky blue?", "Write a limerick."]).added
    g = {
        "short": add_generation(db, p1, "Scattering.", n_tokens=2),
        "long": add_generation(db, p1, "Sunlight scatters off air molecules, blue most of all.", n_tokens=12),
        "cat": add_generation(db, p2, "A cat sat."),
        "dog": add_generation(db, p2, "There once was a dog from Peru."),
    }
    return db, p1, p2, g


def test_record_and_get(lab):
    db, p1, _, g = lab
    cid = record_comparison(db, Comparison(
        p1, g["short"], g["long"], "left", swapped=True, strength=2, rationale="concise",
        seconds=3.25, annotator="ana",
    ))  # fmt: skip
    c = get_comparison(db, cid)
    assert (c.id, c.prompt_id, c.left_id, c.right_id, c.decision) == (cid, p1, g["short"], g["long"], "left")
    assert (c.swapped, c.strength, c.margin, c.rationale, c.seconds, c.annotator, c.origin) == (
        True, 2, None, "concise", 3.25, "ana", "human",
    )  # fmt: skip
    assert c.created_at.endswith("Z") and c.edited_id is None and not db.conn.in_transaction


def test_created_at_can_be_given(lab):
    db, p1, _, g = lab
    cid = record_comparison(db, Comparison(p1, g["short"], g["long"], "tie"), created_at="2026-01-02T03:04:05.678Z")
    assert get_comparison(db, cid).created_at == "2026-01-02T03:04:05.678Z"


@pytest.mark.parametrize(
    "change,message",
    [
        ({"decision": "A"}, "decision must be one of"),
        ({"strength": 3}, "strength must be 1"),
        ({"right_id": "short"}, "same generation"),
        ({"right_id": "cat"}, "answers prompt"),
        ({"edited_id": 999}, "no such generation"),
    ],
)
def test_bad_comparisons_are_refused(lab, change, message):
    db, p1, _, g = lab
    fields = {"prompt_id": p1, "left_id": g["short"], "right_id": g["long"], "decision": "left"}
    fields.update({k: g.get(v, v) if isinstance(v, str) and k.endswith("_id") else v for k, v in change.items()})
    with pytest.raises(ValueError, match=message):
        record_comparison(db, Comparison(**fields))
    assert count_comparisons(db) == 0


def test_update(lab):
    db, p1, _, g = lab
    cid = record_comparison(db, Comparison(p1, g["short"], g["long"], "left"))
    update_comparison(db, cid, decision="right", rationale="changed my mind", strength=2, swapped=True)
    c = get_comparison(db, cid)
    assert (c.decision, c.rationale, c.strength, c.swapped) == ("right", "changed my mind", 2, True)
    with pytest.raises(ValueError, match="cannot update prompt_id"):
        update_comparison(db, cid, prompt_id=2)
    with pytest.raises(ValueError, match="decision must be"):
        update_comparison(db, cid, decision="maybe")
    with pytest.raises(ValueError, match="answers prompt"):
        update_comparison(db, cid, left_id=g["cat"])
    with pytest.raises(NotFound):
        update_comparison(db, 999, decision="tie")
    assert get_comparison(db, cid).decision == "right"


def test_delete_takes_its_unused_edit_along(lab):
    db, p1, _, g = lab
    edit = add_generation(db, p1, "Rayleigh scattering.", origin="edit")
    cid = record_comparison(db, Comparison(p1, g["short"], g["long"], "both_bad", edited_id=edit))
    delete_comparison(db, cid)
    with pytest.raises(NotFound):
        get_comparison(db, cid)
    with pytest.raises(NotFound):
        get_generation(db, edit)
    assert get_generation(db, g["short"]).text == "Scattering."  # originals stay
    with pytest.raises(NotFound):
        delete_comparison(db, cid)


def test_list_filters_search_and_order(lab):
    db, p1, p2, g = lab
    edit = add_generation(db, p2, "A limerick about a zebra.", origin="edit")
    ids = [
        record_comparison(db, Comparison(p1, g["short"], g["long"], "left")),
        record_comparison(db, Comparison(p1, g["long"], g["short"], "tie")),
        record_comparison(db, Comparison(p2, g["cat"], g["dog"], "both_bad", edited_id=edit)),
    ]
    views = list_comparisons(db)
    assert [v.id for v in views] == ids[::-1]  # newest first
    v = views[-1]
    assert (v.prompt_text, v.left_text, v.right_text, v.edited_text) == (
        "Why is the sky blue?", "Scattering.", "Sunlight scatters off air molecules, blue most of all.", None,
    )  # fmt: skip
    assert (v.left_tokens, v.right_tokens, v.split, v.decision) == (2, 12, v.split, "left")
    assert v.messages == [{"role": "user", "content": "Why is the sky blue?"}]
    assert [v.id for v in list_comparisons(db, decision="tie")] == [ids[1]]
    assert [v.id for v in list_comparisons(db, decision=["left", "tie"], newest_first=False)] == ids[:2]
    assert [v.id for v in list_comparisons(db, search="SKY")] == [ids[1], ids[0]]  # prompt text
    assert [v.id for v in list_comparisons(db, search="peru")] == [ids[2]]  # a response
    assert [v.id for v in list_comparisons(db, search="zebra")] == [ids[2]]  # the edit
    assert list_comparisons(db, search="molecules", decision="both_bad") == []
    assert [v.id for v in list_comparisons(db, limit=1, offset=1)] == [ids[1]]
    assert count_comparisons(db) == 3 and count_comparisons(db, search="scatter") == 2
    with pytest.raises(ValueError):
        list_comparisons(db, decision="meh")


def test_label_stats(lab):
    db, p1, p2, g = lab
    rec = lambda left, right, decision, **kw: record_comparison(  # noqa: E731
        db, Comparison(p1 if left in ("short", "long") else p2, g[left], g[right], decision, **kw)
    )
    empty = label_stats(db)
    assert (empty.total, empty.left_share, empty.longer_share, empty.median_seconds) == (0, None, None, None)
    rec("short", "long", "left", seconds=2.0)  # left pick, shorter (by tokens)
    rec("long", "short", "left", seconds=4.0)  # left pick, longer
    rec("short", "long", "right", seconds=10.0)  # right pick, longer
    rec("cat", "dog", "left")  # no token counts: characters decide; "A cat sat." is shorter
    rec("cat", "dog", "tie", seconds=1.0)
    rec("cat", "dog", "left", origin="import")  # programmatic: not in the shares
    s = label_stats(db)
    assert s.total == 6 and s.session == 6
    assert s.by_decision == {"left": 4, "right": 1, "tie": 1, "both_bad": 0, "skip": 0}
    assert s.left_share == pytest.approx(3 / 4)
    assert s.longer_share == pytest.approx(2 / 4)
    assert s.median_seconds == pytest.approx(3.0)


def test_session_counts_since_a_time(lab):
    db, p1, _, g = lab
    record_comparison(db, Comparison(p1, g["short"], g["long"], "left"), created_at="2026-01-01T00:00:00.000Z")
    record_comparison(db, Comparison(p1, g["short"], g["long"], "right"))
    start = datetime.now(UTC) - timedelta(minutes=5)
    s = label_stats(db, since=start.isoformat())
    assert (s.session, s.total) == (1, 2)
    assert label_stats(db, since="2025-12-31T23:00:00Z").session == 2
    # Another offset means the same instant.
    assert label_stats(db, since="2026-01-01T01:00:00+01:00").session == 2
    assert label_stats(db, since="2026-01-01T01:00:00.001+01:00").session == 1


def test_db_timestamp():
    assert db_timestamp("2026-11-29T06:27:01.123456+00:00") == "2026-11-29T06:27:01.123Z"
    assert db_timestamp("2026-11-29T07:27:01+01:00") == "2026-11-29T06:27:01.000Z"
    assert db_timestamp(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000Z"
