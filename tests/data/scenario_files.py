"""Where the length-bias scenario's committed files are, and how to read its JSONL ones."""

from __future__ import annotations

import json
from pathlib import Path

import tuilab

SCENARIO = Path(tuilab.__file__).parent / "data" / "scenarios" / "length_bias"


def read_jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (SCENARIO / name).read_text(encoding="utf-8").splitlines()]
