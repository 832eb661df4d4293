"""Writing a file the user named: what check_target refuses, and the atomic write."""

from __future__ import annotations

import os

import pytest

from tuilab.store.integrity import LabDBError, check_path
from tuilab.store.output import UnsafeTarget, check_target, refuse_file_in_the_way, write_text


def test_a_file_where_a_folder_should_be_is_named(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    with pytest.raises(UnsafeTarget, match=f"{blocker} is a file, not a folder"):
        check_target(blocker / "sub" / "out.jsonl")
    with pytest.raises(LabDBError, match=f"{blocker} is a file, not a folder"):
        check_path(blocker / "lab.db")
    refuse_file_in_the_way(tmp_path / "new" / "out.jsonl", UnsafeTarget)  # nothing in the way: no error


def test_check_target_refuses_a_directory_and_the_lab_database(tmp_path):
    with pytest.raises(UnsafeTarget, match="is a directory"):
        check_target(tmp_path)
    db = tmp_path / "lab.db"
    db.write_bytes(b"")
    with pytest.raises(UnsafeTarget, match="lab's database"):
        check_target(tmp_path / "lab.db-wal", protect=(db,), force=True)


def test_write_text_replaces_a_file_and_keeps_its_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_text(check_target(target), "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert target.stat().st_mode & 0o777 == 0o640
