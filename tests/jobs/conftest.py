"""A fresh lab for job tests (files that need pairs, prompts or threads set define their own `lab`)."""

from __future__ import annotations

import pytest

from tuilab.config import LabPaths
from tuilab.store.db import open_db


@pytest.fixture
def lab(tmp_path):
    paths = LabPaths.resolve(tmp_path / "lab")
    db = open_db(paths.db)
    yield paths, db
    db.conn.close()
