"""Fixtures for the store tests: sample data files and a whole-database snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parents[1] / "fixtures" / "data"

TABLES = ("prompts", "generations", "comparisons", "runs", "metrics", "samples", "checkpoints")


def db_snapshot(db) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order: equal snapshots mean nothing was written."""
    return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def snapshot():
    return db_snapshot


@pytest.fixture
def fresh_db(tmp_path):
    """A factory of empty databases (for round-trips through a second lab)."""
    from tuilab.store.db import open_db

    opened = []

    def make(name: str = "other.db"):
        database = open_db(tmp_path / name)
        opened.append(database)
        return database

    yield make
    for database in opened:
        database.conn.close()
