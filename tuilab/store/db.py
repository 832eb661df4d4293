"""Opening the lab database: WAL, foreign keys, numbered migrations, schema version check.

One connection per thread (sqlite3's default): the UI, the label writer and each
training job open their own with `open_db`.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import sqlite_utils

# What SQLite raises for a damaged or unreadable database (for layers that do not import sqlite3).
DatabaseError = sqlite3.DatabaseError


class LabDBError(RuntimeError):
    """The file is not a database this tuilab may open (foreign, too new, damaged); one sentence."""


class SchemaTooNew(LabDBError):
    """The database was written by a newer tuilab; opening it could corrupt it."""


def migrations() -> list[tuple[int, str, str]]:
    """(version, filename, sql) for every `NNN_name.sql`, in order."""
    found = []
    for entry in resources.files("tuilab.store").joinpath("migrations").iterdir():
        m = re.match(r"^(\d+)_.*\.sql$", entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text()))
    found.sort()
    return found


def schema_version() -> int:
    """The newest schema this code knows."""
    return migrations()[-1][0]


def _connect(path: str | os.PathLike) -> sqlite3.Connection:
    # isolation_level=None: we open transactions ourselves (BEGIN … COMMIT), so a
    # write is on disk when the function that made it returns.
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def open_db(path: str | os.PathLike, *, migrate: bool = True, allow_foreign: bool = False) -> sqlite_utils.Database:
    """Open (creating if needed) the database at `path`, in WAL mode, migrated to the newest schema.

    First, writing nothing, `integrity.inspect_db` checks that the file is SQLite,
    a tuilab lab (or empty), of a schema this code knows, with its tables
    (`LabDBError` otherwise); `allow_foreign` lets `tuilab db init --force` add the
    lab's tables to another program's SQLite file.
    """
    path = Path(path)
    if str(path) != ":memory:":
        from tuilab.store.integrity import inspect_db

        inspect_db(path, allow_foreign=allow_foreign)
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path)
    if str(path) != ":memory:":
        _set_wal(conn)
        # WAL + NORMAL survives a process kill (only an OS crash can lose the last commit);
        # FULL also survives power loss and is still cheap at labeling rates.
        conn.execute("PRAGMA synchronous = FULL")
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    newest = schema_version()
    if current > newest:
        conn.close()
        raise SchemaTooNew(
            f"{path} has schema version {current}, but this tuilab knows only up to {newest}. "
            "Upgrade tuilab (pip install -U tuilab) or open another database with --db."
        )
    if migrate and current < newest:
        _migrate(conn, current)
    return sqlite_utils.Database(conn)


def _set_wal(conn: sqlite3.Connection, wait_s: float = 10.0) -> None:
    """Switch to WAL, waiting for a connection that holds the file. SQLite answers "database is
    locked" at once here, without its busy handler, while another connection is creating or
    converting the same new file (4 threads opening one new lab: 16 of 600 opens failed)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _migrate(conn: sqlite3.Connection, current: int) -> None:
    for version, name, sql in migrations():
        if version <= current:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            # Another connection may have migrated while we waited for the write lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                conn.execute("COMMIT")
                continue
            # executescript would COMMIT first; run statement by statement inside our transaction.
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise RuntimeError(f"migration {name} failed: {exc}") from exc


def _split_sql(sql: str) -> list[str]:
    """Split a migration into statements (no semicolons inside our string literals or triggers)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    parts = []
    buf = ""
    for line in lines:
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            if buf.strip():
                parts.append(buf.strip())
            buf = ""
    if buf.strip():
        parts.append(buf.strip())
    return parts


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """One write transaction (BEGIN IMMEDIATE … COMMIT), rolled back on any error.

    Connections are opened with isolation_level=None, so without this every
    statement commits on its own. Nested use joins the outer transaction.
    """
    conn = db.conn
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
