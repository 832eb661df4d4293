"""Fixtures for the labeling engine: a lab whose database holds the ten test prompts."""

from __future__ import annotations

import pytest

from tests.tui.tuihelp import make_lab
from tuilab.config import LabPaths


@pytest.fixture
def lab(tmp_path) -> LabPaths:
    return make_lab(tmp_path)
