"""Opening the lab database: WAL, foreign keys, the numbered migrations, one write transaction."""

from __future__ import annotations

import re
import sqlite3

import pytest

from tuilab.store.db import _split_sql, migrations, open_db, schema_version, transaction


def pragma(db, name):
    return db.execute(f"PRAGMA {name}").fetchone()[0]


def tables(db):
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrations_are_numbered_one_by_one_and_the_newest_is_the_schema_version():
    found = migrations()
    versions = [v for v, _, _ in found]
    assert versions == list(range(1, len(found) + 1))
    assert all(re.fullmatch(rf"{v:03d}_\w+\.sql", name) for v, name, _ in found)
    assert all("CREATE TABLE" in sql for _, _, sql in found)
    assert schema_version() == versions[-1]


def test_a_new_file_is_migrated_in_wal_mode_with_foreign_keys(tmp_path):
    path = tmp_path / "a" / "b" / "lab.db"  # missing folders are made
    db = open_db(path)
    try:
        assert path.is_file()
        assert pragma(db, "journal_mode") == "wal"
        assert pragma(db, "foreign_keys") == 1
        assert pragma(db, "synchronous") == 2  # FULL
        assert pragma(db, "user_version") == schema_version()
        assert {"prompts", "generations", "comparisons", "runs", "cancel_requests"} <= tables(db)
        # isolation_level=None: a statement outside `transaction` is committed on return
        db["prompts"].insert({"messages": "[]", "text": "x", "text_hash": "h"})
        assert not db.conn.in_transaction
    finally:
        db.conn.close()


def test_foreign_keys_are_enforced(db):
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        db["generations"].insert({"prompt_id": 12345, "text": "an answer to no prompt"})


def test_an_in_memory_database_is_migrated_without_wal():
    db = open_db(":memory:")
    try:
        assert pragma(db, "journal_mode") == "memory"
        assert pragma(db, "user_version") == schema_version()
        assert "comparisons" in tables(db)
    finally:
        db.conn.close()


def _version_one_lab(path):
    """A lab as the first schema left it, with one prompt in it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _split_sql(migrations()[0][2]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO prompts (messages, text, text_hash) VALUES ('[]', 'kept', 'h1')")
    conn.close()


def test_an_older_lab_is_migrated_on_open_and_keeps_its_rows(tmp_path):
    if schema_version() < 2:
        pytest.skip("one migration only")
    path = tmp_path / "old.db"
    _version_one_lab(path)
    old = open_db(path, migrate=False)  # read as it is
    try:
        assert pragma(old, "user_version") == 1
        assert "cancel_requests" not in tables(old)
    finally:
        old.conn.close()
    db = open_db(path)
    try:
        assert pragma(db, "user_version") == schema_version()
        assert "cancel_requests" in tables(db)
        assert [r[0] for r in db.execute("SELECT text FROM prompts")] == ["kept"]
    finally:
        db.conn.close()
    again = open_db(path)  # nothing left to apply
    try:
        assert pragma(again, "user_version") == schema_version()
    finally:
        again.conn.close()


def test_a_failed_migration_is_named_and_rolled_back(tmp_path):
    """Another program's file with a clashing `prompts` table (`db init --force`): nothing half-made."""
    path = tmp_path / "foreign.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE prompts (whatever TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match=r"migration 001_\w+\.sql failed: .*prompts already exists"):
        open_db(path, allow_foreign=True)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert names == {"prompts"}  # the first migration's other tables were rolled back
    finally:
        conn.close()


def test_transaction_commits_on_exit(db, tmp_path):
    with transaction(db):
        db["prompts"].insert({"messages": "[]", "text": "a", "text_hash": "ha"})
        assert db.conn.in_transaction
    other = open_db(tmp_path / "lab.db")
    try:
        assert other["prompts"].count == 1
    finally:
        other.conn.close()


def test_transaction_rolls_back_on_error_and_reraises(db):
    with pytest.raises(KeyError, match="boom"), transaction(db):
        db["prompts"].insert({"messages": "[]", "text": "a", "text_hash": "ha"})
        raise KeyError("boom")
    assert db["prompts"].count == 0
    assert not db.conn.in_transaction


def test_a_nested_transaction_joins_the_outer_one(db):
    with pytest.raises(ValueError), transaction(db):
        db["prompts"].insert({"messages": "[]", "text": "a", "text_hash": "ha"})
        with transaction(db):  # no BEGIN of its own: one unit with the outer block
            db["prompts"].insert({"messages": "[]", "text": "b", "text_hash": "hb"})
        assert db.conn.in_transaction  # the inner block did not commit
        raise ValueError("outer fails")
    assert db["prompts"].count == 0


def test_split_sql_keeps_trigger_bodies_whole_and_drops_comment_lines():
    sql = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE x (a INTEGER, b INTEGER);\n"
        "CREATE TRIGGER t AFTER INSERT ON x BEGIN\n"
        "  UPDATE x SET a = 1;\n"
        "  UPDATE x SET b = 2;\n"
        "END;\n"
        "CREATE INDEX i ON x(a)"  # a last statement without its semicolon
    )
    parts = _split_sql(sql)
    assert len(parts) == 3
    assert parts[0] == "CREATE TABLE x (a INTEGER, b INTEGER);"
    assert parts[1].startswith("CREATE TRIGGER") and parts[1].endswith("END;") and parts[1].count(";") == 3
    assert parts[2] == "CREATE INDEX i ON x(a)"
    assert not any("comment" in p for p in parts)


def test_two_threads_opening_a_brand_new_database_both_succeed(tmp_path):
    """Both connections race to migrate; the loser sees the new version and skips."""
    import threading

    from tuilab.store.db import open_db, schema_version

    path = tmp_path / "race.db"
    errors, versions = [], []
    barrier = threading.Barrier(4)

    def opener():
        barrier.wait()
        try:
            db = open_db(path)
            versions.append(db.execute("PRAGMA user_version").fetchone()[0])
            db.conn.close()
        except Exception as exc:  # pragma: no cover - the failure being tested
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and versions == [schema_version()] * 4
