"""Fixtures for the training screens: a lab folder with pairs, runs written straight into its database."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def lab(tmp_path):
    """A lab home and its open database (closed after the test)."""
    from tuilab.config import LabPaths
    from tuilab.store.db import open_db

    home = tmp_path / "lab"
    paths = LabPaths(home)
    db = open_db(paths.db)
    yield home, db
    db.conn.close()


@pytest.fixture
def one_torch_thread():
    """Tiny models train fastest on one thread; two threads on a busy 2-core machine crawl (measured ~20×)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
