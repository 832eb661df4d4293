"""Is this file tuilab's database? Checked before anything writes to it, and backed up safely.

`inspect_db` answers, in this order and without changing a byte of the file
(no PRAGMA that writes, no journal-mode switch, no migration): is the path a
file we may open, is it SQLite, is it a tuilab lab (or empty), is its schema
version one this code knows, are its tables all there, and — when asked —
does `PRAGMA quick_check` pass. Each refusal is a `LabDBError` whose message
is one sentence naming the file and what to do.

`backup_db` copies a live database through SQLite's online backup API, which
reads a consistent snapshot page by page while the UI and jobs keep writing.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tuilab.store.db import LabDBError, SchemaTooNew, migrations, schema_version
from tuilab.store.output import refuse_file_in_the_way

SQLITE_MAGIC = b"SQLite format 3\x00"
LAB_MARKERS = ("prompts", "runs")  # every tuilab schema has these two tables


__all__ = ["LabDBError", "DBState", "inspect_db", "run_quick_check", "backup_db", "expected_tables", "lab_summary"]


@dataclass
class DBState:
    path: Path
    exists: bool  # False: a new lab will be created there
    version: int = 0  # 0: empty (new) database
    quick_check: str | None = None  # "ok", or the first problem; None when not run


@cache
def expected_tables(version: int) -> frozenset[str]:
    """The tables a lab at schema `version` has (the migrations replayed in memory)."""
    from tuilab.store.db import _split_sql

    conn = sqlite3.connect(":memory:")
    try:
        for v, _name, sql in migrations():
            if v > version:
                break
            for statement in _split_sql(sql):
                conn.execute(statement)
        return frozenset(_tables(conn))
    finally:
        conn.close()


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [r[0] for r in rows]


def check_path(path: Path) -> bool:
    """Whether a file is there; raises when the path cannot hold a database at all."""
    refuse_file_in_the_way(path, LabDBError)
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise LabDBError(f"{path}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise LabDBError(f"{path} is a directory, not a database file; pass a file with --db")
    if not stat.S_ISREG(st.st_mode):
        raise LabDBError(f"{path} is not a regular file; a lab database is a plain file")
    return True


def _header(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(100)
    except OSError as exc:
        raise LabDBError(f"{path}: cannot read: {exc.strerror}") from None


def inspect_db(path: str | os.PathLike, *, quick_check: bool = False, allow_foreign: bool = False) -> DBState:
    """Check `path` without writing to it; raises `LabDBError` naming the first problem."""
    path = Path(path)
    if str(path) == ":memory:":
        return DBState(path, exists=False)
    if not check_path(path):
        return DBState(path, exists=False)
    if path.stat().st_size == 0:
        return DBState(path, exists=True)  # an empty file: a new lab
    # SQLite reads the header itself: no plain open()/close() of a file that this process may
    # hold open through SQLite (the UI opens the lab once per worker). Closing any descriptor of
    # a file drops every POSIX lock the process holds on it, its SQLite connections' included;
    # another process closing its last connection then believes it is alone and deletes the
    # WAL index under them, and they stop seeing what others write.
    # A plain connection that only reads: it writes nothing, and closing it removes the
    # -wal/-shm files it may have created (a read-only one would leave them behind).
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise LabDBError(f"{path}: cannot open: {exc}") from None
    try:
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = _tables(conn)
        except sqlite3.DatabaseError as exc:
            header = _header(path)  # safe now: a file SQLite cannot read is open as a database nowhere
            if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
                raise LabDBError(f"{path} is not a SQLite database (it starts with {header[:16]!r}); "
                                 "point --db at a tuilab lab database or a new file") from None
            raise LabDBError(f"{path} is damaged ({exc}); restore a backup") from None
        newest = schema_version()
        if tables and not (version > 0 and set(LAB_MARKERS) <= set(tables)):
            if allow_foreign:
                return DBState(path, exists=True, version=0)
            shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
            raise LabDBError(f"{path} is not a tuilab lab (it holds another program's tables: {shown}); "
                             "nothing was written to it. Use another --db, or `tuilab db init --force` "
                             "to add tuilab's tables to it anyway")
        if version > newest:
            raise SchemaTooNew(f"{path} has schema version {version}, but this tuilab knows only up to "
                             f"{newest}; nothing was written to it. Upgrade tuilab or open another --db")
        if tables:
            missing = sorted(expected_tables(version) - set(tables))
            if missing:
                raise LabDBError(f"{path} is a damaged tuilab lab: schema version {version} but no "
                                 f"{', '.join(missing)} table; restore a backup")
        state = DBState(path, exists=True, version=version)
        if quick_check:
            state.quick_check = run_quick_check(conn, path)
        return state
    finally:
        conn.close()


def run_quick_check(conn: sqlite3.Connection, path: Path) -> str:
    """SQLite's quick_check; raises LabDBError with its first finding unless it says "ok"."""
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as exc:
        raise LabDBError(f"{path} is damaged: quick_check failed ({exc}); restore a backup") from None
    if rows != ["ok"]:
        more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
        raise LabDBError(f"{path} is damaged: {rows[0]}{more}; restore a backup")
    return "ok"


def lab_summary(path: str | os.PathLike) -> tuple[list[tuple], dict[str, int]]:
    """(rows whose foreign key points at nothing, {table: row count}) for `tuilab db check`."""
    conn = sqlite3.connect(path)
    try:
        dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("prompts", "comparisons", "runs")}
    finally:
        conn.close()
    return dangling, counts


def backup_db(source: str | os.PathLike, target: str | os.PathLike, *, pages_per_step: int = 256) -> int:
    """Copy `source` to the new file `target` with SQLite's online backup; returns the bytes written.

    The backup reads a consistent snapshot even while other connections write
    (it restarts a step when they do). It is written to a temporary file beside
    `target` and renamed into place, so a failed backup leaves nothing.
    """
    source, target = Path(source), Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst, pages=pages_per_step)
            dst.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
        finally:
            dst.close()
        os.replace(tmp, target)
    finally:
        src.close()
        tmp.unlink(missing_ok=True)
    return target.stat().st_size
