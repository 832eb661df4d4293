"""The demo prompts shipped with tuilab, so a new lab has something to label at once."""

from __future__ import annotations

from importlib import resources

import sqlite_utils

from tuilab.store.formats import parse_prompts_jsonl
from tuilab.store.prompts import add_prompt_rows
from tuilab.store.reading import numbered_text

DEMO_FILE = "demo_prompts.jsonl"
DEMO_SOURCE = "demo"


def demo_prompts_text() -> str | None:
    """The shipped `tuilab/data/demo_prompts.jsonl`, or None when this install has none."""
    entry = resources.files("tuilab").joinpath("data", DEMO_FILE)
    try:
        return entry.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


def ensure_demo_prompts(db: sqlite_utils.Database) -> int:
    """Add the demo prompts (source "demo", split as in the file) and return how many were new.

    Safe to call again: prompts already stored are skipped. A missing file loads nothing.
    """
    text = demo_prompts_text()
    if text is None:
        return 0
    path = f"tuilab/data/{DEMO_FILE}"
    records = list(parse_prompts_jsonl(path, numbered_text(path, text)))
    result = add_prompt_rows(db, [(r.messages, r.split) for r in records], source=DEMO_SOURCE)
    return len(result.added)
