"""Fixtures for the UI tests (helpers live in tuihelp.py and runhelp.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tuihelp import make_lab  # noqa: E402

from tuilab.config import LabPaths  # noqa: E402


@pytest.fixture
def lab(tmp_path) -> LabPaths:
    """A lab whose database holds the ten test prompts (train split)."""
    return make_lab(tmp_path)


@pytest.fixture
def run_lab(tmp_path):
    """A lab home and its open database (closed after the test): runs are written straight into it."""
    from tuilab.store.db import open_db

    home = tmp_path / "lab"
    db = open_db(LabPaths(home).db)
    yield home, db
    db.conn.close()


@pytest.fixture
def one_torch_thread():
    """Tiny models train fastest on one thread; two threads on a busy 2-core machine crawl (measured ~20x)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
