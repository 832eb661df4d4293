"""The shipped demo prompts: valid lines, enough of them, every category, a fixed ~10% test split."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import tuilab

DEMO = Path(tuilab.__file__).parent / "data" / "demo_prompts.jsonl"
CATEGORIES = {"explanation", "advice", "coding", "creative", "factual", "math", "refusal", "sycophancy"}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    out = []
    for n, line in enumerate(DEMO.read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"blank line {n}"
        out.append(json.loads(line))
    return out


def test_every_line_has_the_three_fields(rows):
    for row in rows:
        assert set(row) == {"prompt", "split", "category"}, row
        assert isinstance(row["prompt"], str) and row["prompt"].strip() == row["prompt"] != ""
        assert row["split"] in {"train", "test"}
        assert row["category"] in CATEGORIES, row


def test_enough_prompts_and_every_category(rows):
    assert len(rows) >= 220
    counts = Counter(r["category"] for r in rows)
    assert set(counts) == CATEGORIES
    assert 8 <= counts["refusal"] <= 15
    assert 8 <= counts["sycophancy"] <= 15


def test_no_duplicates_even_ignoring_case_and_spacing(rows):
    keys = [" ".join(r["prompt"].lower().split()) for r in rows]
    dupes = [k for k, c in Counter(keys).items() if c > 1]
    assert not dupes


def test_about_ten_percent_test_spread_across_categories(rows):
    test = [r for r in rows if r["split"] == "test"]
    assert 0.07 <= len(test) / len(rows) <= 0.13
    by_cat = Counter(r["category"] for r in test)
    assert set(by_cat) == CATEGORIES


def test_prompts_are_short_to_medium(rows):
    assert all(3 <= len(r["prompt"].split()) <= 60 for r in rows)
