"""Opening a lab (demo prompts on first use) and the counts `tuilab data stats` prints."""

from __future__ import annotations

import json

import pytest

from tuilab.config import LabPaths
from tuilab.store import demo
from tuilab.store.db import open_db
from tuilab.store.importing import import_file
from tuilab.store.lab import data_stats, open_lab_db
from tuilab.store.prompts import add_prompts, count_prompts, list_prompts


def shipped():
    text = demo.demo_prompts_text()
    if text is None:
        pytest.skip("this install has no demo prompts")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_new_lab_gets_the_demo_prompts(tmp_path):
    rows = shipped()
    db = open_lab_db(LabPaths.resolve(tmp_path))
    try:
        prompts = list_prompts(db, limit=10_000)
        assert len(prompts) == len({r["prompt"] for r in rows})
        assert all(p.source == "demo" for p in prompts)
        split_of = {r["prompt"]: r["split"] for r in rows}
        assert all(p.split == split_of[p.text] for p in prompts)
        assert count_prompts(db, "test") == sum(1 for r in rows if r["split"] == "test")
    finally:
        db.conn.close()


def test_demo_prompts_are_loaded_once(tmp_path):
    shipped()
    paths = LabPaths.resolve(tmp_path)
    db = open_lab_db(paths)
    db.execute("DELETE FROM prompts")
    db.conn.close()
    db = open_lab_db(paths)  # not brand-new any more: the user's deletion stands
    try:
        assert count_prompts(db) == 0
    finally:
        db.conn.close()


def test_an_existing_empty_database_is_left_alone(tmp_path):
    paths = LabPaths.resolve(tmp_path)
    open_db(paths.db).conn.close()
    db = open_lab_db(paths)
    try:
        assert count_prompts(db) == 0
    finally:
        db.conn.close()


def test_data_stats(db, data_dir):
    import_file(db, data_dir / "comparisons.jsonl")
    add_prompts(db, ["why is the SKY   blue?"], split="test", source="typed")
    s = data_stats(db)
    assert s.tables["comparisons"] == 6 and s.tables["prompts"] == 5 and s.tables["runs"] == 0
    assert s.prompts_by_split == {"train": 3, "test": 2}
    assert s.prompts_by_source == {"demo": 3, "import:x.csv": 1, "typed": 1}
    assert s.comparisons_by_decision == {"both_bad": 1, "left": 2, "right": 1, "skip": 1, "tie": 1}
    assert s.comparisons_by_origin == {"human": 5, "import": 1}
    assert s.generations_by_origin == {"edit": 1, "import": 2, "model": 7}
    assert s.pairs_by_split == {"train": 5}
    assert len(s.near_duplicates) == 1 and len(s.near_duplicates[0]) == 2
    assert json.loads(json.dumps(s.to_dict()))["tables"]["comparisons"] == 6
