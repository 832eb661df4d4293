"""Opening a lab's database (with demo prompts on first use) and counting what is in it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlite_utils

from tuilab.config import LabPaths
from tuilab.store.db import open_db
from tuilab.store.demo import ensure_demo_prompts
from tuilab.store.pairs import preference_pairs

TABLES = ("prompts", "generations", "comparisons", "runs", "metrics", "samples", "checkpoints")


def open_lab_db(paths: LabPaths) -> sqlite_utils.Database:
    """Open `paths.db`; a brand-new database with no prompts gets the shipped demo prompts."""
    path = paths.db
    brand_new = not path.exists() or path.stat().st_size == 0
    db = open_db(path)
    if brand_new and db["prompts"].count == 0:
        ensure_demo_prompts(db)
    return db


@dataclass
class DataStats:
    """What `tuilab data stats` prints."""

    tables: dict[str, int] = field(default_factory=dict)
    prompts_by_split: dict[str, int] = field(default_factory=dict)
    prompts_by_source: dict[str, int] = field(default_factory=dict)
    generations_by_origin: dict[str, int] = field(default_factory=dict)
    comparisons_by_decision: dict[str, int] = field(default_factory=dict)
    comparisons_by_origin: dict[str, int] = field(default_factory=dict)
    pairs_by_split: dict[str, int] = field(default_factory=dict)  # trainable pairs, ties skipped
    # Prompts equal to another ignoring case and spacing (exact copies cannot
    # exist: the hash is unique). Each group lists its prompt ids.
    near_duplicates: list[list[int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self.__dict__))


def _grouped(db: sqlite_utils.Database, sql: str) -> dict[str, int]:
    return {str(k): n for k, n in db.execute(sql).fetchall()}


def data_stats(db: sqlite_utils.Database) -> DataStats:
    stats = DataStats()
    stats.tables = {t: db[t].count for t in TABLES}
    stats.prompts_by_split = {"train": 0, "test": 0} | _grouped(
        db, "SELECT split, count(*) FROM prompts GROUP BY split ORDER BY split"
    )
    stats.prompts_by_source = _grouped(
        db, "SELECT source, count(*) FROM prompts GROUP BY source ORDER BY source"
    )
    stats.generations_by_origin = _grouped(
        db, "SELECT origin, count(*) FROM generations GROUP BY origin ORDER BY origin"
    )
    stats.comparisons_by_decision = _grouped(
        db, "SELECT decision, count(*) FROM comparisons GROUP BY decision ORDER BY decision"
    )
    stats.comparisons_by_origin = _grouped(
        db, "SELECT origin, count(*) FROM comparisons GROUP BY origin ORDER BY origin"
    )
    for pair in preference_pairs(db):
        stats.pairs_by_split[pair.split] = stats.pairs_by_split.get(pair.split, 0) + 1
    groups: dict[str, list[int]] = {}
    for pid, messages in db.execute("SELECT id, messages FROM prompts ORDER BY id"):
        key = json.dumps(
            [(m["role"], " ".join(m["content"].lower().split())) for m in json.loads(messages)]
        )
        groups.setdefault(key, []).append(pid)
    stats.near_duplicates = [ids for ids in groups.values() if len(ids) > 1]
    return stats
