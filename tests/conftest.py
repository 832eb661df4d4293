"""Shared fixtures: a temporary lab home, an open database, a tiny chat model folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def lab_home(tmp_path, monkeypatch):
    """An empty lab folder, also set as TUILAB_HOME so CLI calls land in it."""
    home = tmp_path / "lab"
    home.mkdir()
    monkeypatch.setenv("TUILAB_HOME", str(home))
    return home


@pytest.fixture
def db(tmp_path):
    from tuilab.store.db import open_db

    database = open_db(tmp_path / "lab.db")
    yield database
    database.conn.close()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama with SmolLM2's tokenizer conventions, saved as an HF folder."""
    from tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")
