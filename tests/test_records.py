"""records.py: one dataclass per concept. What they promise beyond their fields: the decisions are the ones
the database accepts, no two records share a list or dict, and a record the store writes carries its id."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tuilab import records
from tuilab.records import DECISIONS, Comparison, Sample
from tuilab.store import runs
from tuilab.store.comparisons import get_comparison, record_comparison
from tuilab.store.generations import add_generation
from tuilab.store.prompts import add_prompts
from tuilab.store.samples import list_samples, write_samples

REQUIRED = {  # the fields without a default, per record
    records.Prompt: {"id": 1, "messages": [], "text": "t"},
    records.Generation: {"text": "t"},
    records.Comparison: {"prompt_id": 1, "left_id": 1, "right_id": 2, "decision": "left"},
    records.PreferencePair: {"comparison_id": 1, "prompt_id": 1, "messages": [], "chosen": "a", "rejected": "b"},
    records.Sample: {"prompt": "p", "response": "r"},
    records.Run: {"id": "rm-1", "kind": "rm"},
    records.LabelStats: {},
}


def test_every_record_is_listed_here():
    found = {v for v in vars(records).values() if dataclasses.is_dataclass(v) and v.__module__ == records.__name__}
    assert found == set(REQUIRED)


def test_the_decisions_are_exactly_those_the_database_accepts(db):
    schema = db.execute("SELECT sql FROM sqlite_master WHERE name = 'comparisons'").fetchone()[0]
    allowed = re.search(r"decision\s+TEXT NOT NULL CHECK \(decision IN \(([^)]*)\)\)", schema).group(1)
    assert tuple(v.strip().strip("'") for v in allowed.split(",")) == DECISIONS


@pytest.mark.parametrize("cls", list(REQUIRED), ids=lambda c: c.__name__)
def test_no_two_records_share_a_list_or_a_dict(cls):
    a, b = cls(**REQUIRED[cls]), cls(**REQUIRED[cls])
    mutable = [f.name for f in dataclasses.fields(cls) if isinstance(getattr(a, f.name), list | dict)
               and f.name not in REQUIRED[cls]]
    for name in mutable:
        assert getattr(a, name) is not getattr(b, name), name
    if cls in (records.Generation, records.Comparison, records.Sample):
        assert a.id is None  # not written yet


def test_a_comparison_the_store_writes_carries_its_id_and_reads_back_equal(db):
    pid = add_prompts(db, ["Which is better?"], split="train").ids[0]
    left, right = add_generation(db, pid, "one"), add_generation(db, pid, "two")
    for decision in DECISIONS:
        c = Comparison(prompt_id=pid, left_id=left, right_id=right, decision=decision, strength=2, margin=1.0,
                       rationale="why", seconds=1.5, annotator="me", swapped=True)
        assert c.id is None
        cid = record_comparison(db, c)
        assert c.id == cid
        stored = get_comparison(db, cid)
        assert stored == dataclasses.replace(c, created_at=stored.created_at) and stored.created_at


def test_a_sample_the_store_writes_names_its_row_run_and_step(db):
    run_id = runs.create_run(db, "ppo", {})
    pid = add_prompts(db, ["Answer briefly: 2+2?"], split="train").ids[0]
    sample = Sample(prompt="Answer briefly: 2+2?", response="4", score=0.5, prompt_id=pid, kl=0.01, length=1,
                    eos=True, flags=["short"])
    write_samples(db, run_id, 3, [sample])
    assert isinstance(sample.id, int) and (sample.run_id, sample.step) == (run_id, 3)
    [stored] = list_samples(db, run_id)
    assert stored == dataclasses.replace(sample, created_at=stored.created_at)
