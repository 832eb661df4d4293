"""The lab App and a database that is not (or no longer) a healthy tuilab lab."""

from __future__ import annotations

import hashlib
import sqlite3

from tuilab.config import LabPaths
from tuilab.tui.app import TuilabApp, _startup_checks


def test_startup_refuses_a_foreign_file_untouched(tmp_path):
    other = tmp_path / "other-app.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.close()
    before = hashlib.sha256(other.read_bytes()).hexdigest()
    problem = _startup_checks(LabPaths(tmp_path / "lab", db_override=other))
    assert problem is not None and "not a tuilab lab" in problem and "\n" not in problem
    assert hashlib.sha256(other.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-app.db"]


async def test_a_database_error_mid_session_ends_with_a_sentence(tmp_path, capfd):
    app = TuilabApp(LabPaths(tmp_path / "lab"), start_feeder=False, mode="data")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app._handle_exception(sqlite3.DatabaseError("database disk image is malformed"))
    assert app.return_code == 1
    assert app.errors[-1].where == "Database" and "malformed" in app.errors[-1].summary
    captured = capfd.readouterr()
    shown = " ".join((captured.out + captured.err).split())
    assert "database disk image is malformed" in shown and "Traceback" not in shown  # a sentence, no traceback
