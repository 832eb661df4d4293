"""`tuilab db check | backup | init`."""

from __future__ import annotations

import sqlite3
import threading

from tuilab.cli import main
from tuilab.store.db import open_db
from tuilab.store.prompts import add_prompts


def test_check_passes_on_a_healthy_lab(lab_home, capsys):
    db = open_db(lab_home / "db" / "lab.db")
    add_prompts(db, ["one", "two"], source="t", split="train")
    db.conn.close()
    assert main(["db", "check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and "quick_check ok" in out and "2 prompts" in out


def test_backup_while_another_connection_writes(lab_home, tmp_path, capsys):
    """The online backup copies a consistent snapshot while writes go on."""
    path = lab_home / "db" / "lab.db"
    db = open_db(path)
    add_prompts(db, [f"prompt {i}" for i in range(200)], source="t", split="train")
    db.conn.close()
    stop = threading.Event()

    def writer() -> None:
        w = open_db(path)
        i = 0
        while not stop.is_set():
            add_prompts(w, [f"more {i}"], source="t", split="train")
            i += 1
        w.conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert main(["db", "backup", str(tmp_path / "copy.db")]) == 0
    finally:
        stop.set()
        thread.join()
    assert "quick_check ok" in capsys.readouterr().out
    copy = sqlite3.connect(tmp_path / "copy.db")
    n = copy.execute("SELECT count(*) FROM prompts").fetchone()[0]
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    copy.close()
    assert n >= 200
    assert main(["db", "backup", str(tmp_path / "copy.db")]) == 1  # exists
    assert "--force" in capsys.readouterr().err
    assert main(["db", "backup", str(tmp_path / "copy.db"), "--force"]) == 0


def test_init_refuses_a_foreign_file_unless_forced(tmp_path, capsys):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.close()
    assert main(["--db", str(other), "db", "init"]) == 1
    assert "not a tuilab lab" in capsys.readouterr().err
    assert main(["--db", str(other), "db", "init", "--force"]) == 0
    assert "initialised" in capsys.readouterr().out
    assert main(["--db", str(other), "db", "check"]) == 0
    conn = sqlite3.connect(other)
    assert {"contacts", "prompts", "runs"} <= {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()


def test_check_on_a_missing_database_creates_nothing(tmp_path, capsys):
    path = tmp_path / "none" / "lab.db"
    assert main(["--db", str(path), "db", "check"]) == 1
    assert "db init" in capsys.readouterr().err
    assert not path.parent.exists()
