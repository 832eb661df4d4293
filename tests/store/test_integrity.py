"""Only tuilab's database, checked before any write; quick_check; the online backup."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys

import pytest

from tuilab.store import runs
from tuilab.store.db import LabDBError, SchemaTooNew, open_db
from tuilab.store.integrity import backup_db, inspect_db


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.close()
    before = digest(other)
    with pytest.raises(LabDBError, match="not a tuilab lab.*contacts"):
        open_db(other)
    assert digest(other) == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]
    open_db(other, allow_foreign=True).conn.close()  # db init --force
    assert inspect_db(other).version >= 1


def test_a_newer_schema_is_refused_before_the_wal_switch(tmp_path):
    path = tmp_path / "lab.db"
    open_db(path).conn.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = digest(path)
    with pytest.raises(SchemaTooNew, match="schema version 99"):
        open_db(path)
    assert digest(path) == before
    assert path.read_bytes()[18:20] == b"\x01\x01"  # still a rollback-journal file, not WAL


def test_not_sqlite_damaged_and_missing_tables(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 40)
    with pytest.raises(LabDBError, match="not a SQLite database"):
        open_db(text)
    lab = tmp_path / "lab.db"
    open_db(lab).conn.close()
    conn = sqlite3.connect(lab)
    conn.execute("DROP TABLE samples")
    conn.close()
    with pytest.raises(LabDBError, match="no samples table"):
        open_db(lab)
    with pytest.raises(LabDBError, match="is a file, not a folder"):
        open_db(text / "lab.db")


def test_quick_check_finds_a_corrupt_page(tmp_path, db):
    path = tmp_path / "lab.db"
    db.execute("INSERT INTO prompts (messages, text, text_hash) VALUES ('[]', 'x', 'h')")
    db.conn.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'prompts'").fetchone()[0]
    conn.close()
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * page)
        fh.write(b"\xa5" * page)
    with pytest.raises(LabDBError, match="damaged"):
        inspect_db(path, quick_check=True)


def test_backup_is_a_checked_standalone_copy(tmp_path, db):
    db.execute("INSERT INTO prompts (messages, text, text_hash) VALUES ('[]', 'x', 'h')")
    size = backup_db(tmp_path / "lab.db", tmp_path / "copy.db")
    assert size == (tmp_path / "copy.db").stat().st_size
    assert inspect_db(tmp_path / "copy.db", quick_check=True).quick_check == "ok"
    assert not list(tmp_path.glob(".copy.db.*"))


WRITER = """
import sys
from tuilab.store.db import open_db
from tuilab.store import runs
db = open_db(sys.argv[1])
runs.create_run(db, "rm", {}, run_id="rm-20261201-0000-abcd")
print("written", flush=True)
sys.stdin.read()  # stay open (no checkpoint on close) until the test is done
"""


def test_a_process_that_opens_the_lab_twice_still_sees_another_process_write(tmp_path):
    """Opening the lab again in a process that holds a connection must not blind it to other processes.

    POSIX drops every lock a process holds on a file when any descriptor of that
    file is closed. Were `inspect_db` to read the header with a plain open/close,
    a process opening the lab a second time (the UI does, for each worker) would
    lose its connections' locks; the next process to close its inspecting
    connection would then find itself alone, checkpoint and delete the WAL and its
    index under the first, which from then on never sees what others write.
    """
    path = tmp_path / "db" / "lab.db"
    first = open_db(path)
    runs.create_run(first, "rm", {}, run_id="rm-20261201-0000-0001")
    second = open_db(path)  # this process opens the lab again while `first` is open
    second.conn.close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "written"
        seen = {r.id for r in runs.list_runs(first)}
        assert seen == {"rm-20261201-0000-0001", "rm-20261201-0000-abcd"}, seen
        third = open_db(path)
        assert {r.id for r in runs.list_runs(third)} == seen
        third.conn.close()
    finally:
        writer.communicate("", timeout=30)
        first.conn.close()
