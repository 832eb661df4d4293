"""The length-bias scenario's committed files, read once per module for the tests under tests/data/."""

from __future__ import annotations

import pytest

from tests.data.scenario_files import read_jsonl


@pytest.fixture(scope="module")
def facts():
    return read_jsonl("facts.jsonl")


@pytest.fixture(scope="module")
def prompts():
    return read_jsonl("prompts.jsonl")


@pytest.fixture(scope="module")
def prefs():
    return read_jsonl("preferences.jsonl")
