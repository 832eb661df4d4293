"""Fixtures for the UI tests (helpers live in tuihelp.py)."""

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
