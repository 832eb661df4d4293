"""The demo prompts shipped with tuilab: what the file holds and what loading it adds."""

from __future__ import annotations

import json

import pytest

from tuilab.config import LabPaths
from tuilab.store import demo
from tuilab.store.lab import open_lab_db
from tuilab.store.prompts import add_prompts, count_prompts, list_prompts


def shipped():
    text = demo.demo_prompts_text()
    if text is None:
        pytest.skip("this install has no demo prompts")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_shipped_file_holds_prompts_of_both_splits():
    rows = shipped()
    assert len(rows) > 20
    assert all(isinstance(r["prompt"], str) and r["prompt"].strip() for r in rows)
    assert {r["split"] for r in rows} == {"train", "test"}


def test_ensure_demo_prompts_is_idempotent(db):
    rows = shipped()
    assert demo.ensure_demo_prompts(db) == len({r["prompt"] for r in rows})
    assert demo.ensure_demo_prompts(db) == 0


def test_demo_prompts_are_stored_with_their_source_and_split(db):
    rows = shipped()
    demo.ensure_demo_prompts(db)
    split_of = {r["prompt"]: r["split"] for r in rows}
    prompts = list_prompts(db, limit=10_000)
    assert {p.text for p in prompts} == set(split_of)
    assert all(p.source == demo.DEMO_SOURCE and p.split == split_of[p.text] for p in prompts)


def test_a_prompt_the_user_already_has_is_not_added_again(db):
    rows = shipped()
    mine = rows[0]["prompt"]
    add_prompts(db, [mine], source="typed", split="test" if rows[0]["split"] == "train" else "train")
    added = demo.ensure_demo_prompts(db)
    assert added == len({r["prompt"] for r in rows}) - 1
    assert count_prompts(db) == added + 1
    kept = [p for p in list_prompts(db, limit=10_000) if p.text == mine]
    assert len(kept) == 1 and kept[0].source == "typed" and kept[0].split != rows[0]["split"]


def test_missing_demo_file_loads_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_FILE", "no_such_file.jsonl")
    db = open_lab_db(LabPaths.resolve(tmp_path))
    try:
        assert count_prompts(db) == 0
    finally:
        db.conn.close()


def test_missing_demo_file_text_is_none_and_adds_nothing(db, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_FILE", "no_such_file.jsonl")
    assert demo.demo_prompts_text() is None
    assert demo.ensure_demo_prompts(db) == 0
    assert count_prompts(db) == 0
