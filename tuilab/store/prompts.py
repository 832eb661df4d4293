"""Prompts: add (deduplicated by a hash of the messages), read, list, count, sample.

A prompt is the conversation up to the turn a model answers. Its `text_hash`
is the sha256 of the canonical messages JSON, so the same prompt imported
twice, or reached from many preference pairs, is one row.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlite_utils

from tuilab.records import Message, Prompt
from tuilab.store.db import transaction
from tuilab.store.formats import SPLITS, as_prompt_messages, prompt_text


class NotFound(LookupError):
    """No row with that id."""


@dataclass
class AddResult:
    """What `add_prompts` did.

    `added`: ids of the new rows; `duplicates`: indexes (into the items given)
    of items already present, in the database or earlier in the same list;
    `total`: prompts in the database afterwards; `ids`: the prompt id of every
    item, new or existing, in order.
    """

    added: list[int]
    duplicates: list[int]
    total: int
    ids: list[int] = field(default_factory=list)




def canonical_json(messages: list[Message]) -> str:
    return json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def prompt_hash(messages: list[Message]) -> str:
    """sha256 of the canonical messages JSON: the dedup key."""
    return hashlib.sha256(canonical_json(messages).encode("utf-8")).hexdigest()


def hash_split(text_hash: str) -> str:
    """A deterministic ~10 % held-out split from the hash: the same prompt lands the same way everywhere."""
    return "test" if int(text_hash[:8], 16) % 10 == 0 else "train"


def _check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")


def find_prompt(db: sqlite_utils.Database, messages: list[Message]) -> int | None:
    """The id of the prompt with exactly these messages, if stored."""
    row = db.execute(
        "SELECT id FROM prompts WHERE text_hash = ?", [prompt_hash(messages)]
    ).fetchone()
    return row[0] if row else None


def add_prompt_rows(
    db: sqlite_utils.Database,
    rows: Sequence[tuple[str | list[Message], str | None]],
    *,
    source: str = "",
) -> AddResult:
    """Like `add_prompts`, with a split per item (None → from the hash). One transaction."""
    checked = []
    for i, (item, split) in enumerate(rows):
        _check_split(split)
        try:
            checked.append((as_prompt_messages(item), split))
        except ValueError as exc:
            raise ValueError(f"prompt {i}: {exc}") from None
    added: list[int] = []
    duplicates: list[int] = []
    ids: list[int] = []
    with transaction(db):
        for i, (messages, split) in enumerate(checked):
            digest = prompt_hash(messages)
            row = db.execute("SELECT id FROM prompts WHERE text_hash = ?", [digest]).fetchone()
            if row:
                duplicates.append(i)
                ids.append(row[0])
                continue
            pid = db["prompts"].insert({
                "messages": json.dumps(messages, ensure_ascii=False), "text": prompt_text(messages),
                "text_hash": digest, "split": split or hash_split(digest), "source": source,
            }).last_rowid
            added.append(pid)
            ids.append(pid)
    return AddResult(added, duplicates, count_prompts(db), ids)


def add_prompts(
    db: sqlite_utils.Database,
    items: Sequence[str | list[Message]],
    *,
    source: str = "",
    split: str | None = None,
) -> AddResult:
    """Store prompts given as text or message lists; duplicates are reported, not doubled.

    `split` None chooses from the text hash (~10 % "test"). Raises ValueError
    (naming the item) for an empty prompt or malformed messages, before writing.
    """
    _check_split(split)
    return add_prompt_rows(db, [(item, split) for item in items], source=source)


def _prompt(row: tuple) -> Prompt:
    pid, messages, text, split, source = row
    return Prompt(id=pid, messages=json.loads(messages), text=text, split=split, source=source)


_COLUMNS = "id, messages, text, split, source"


def get_prompt(db: sqlite_utils.Database, prompt_id: int) -> Prompt:
    row = db.execute(f"SELECT {_COLUMNS} FROM prompts WHERE id = ?", [prompt_id]).fetchone()
    if row is None:
        raise NotFound(f"no prompt with id {prompt_id}")
    return _prompt(row)


def prompt_usage(db: sqlite_utils.Database, prompt_id: int) -> tuple[int, int]:
    """(responses, comparisons) recorded for one prompt."""
    return (db["generations"].count_where("prompt_id = ?", [prompt_id]),
            db["comparisons"].count_where("prompt_id = ?", [prompt_id]))


def like_pattern(search: str) -> str:
    """A LIKE pattern matching `search` anywhere, with % and _ taken literally (ESCAPE '\\')."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(split: str | None, search: str | None, source: str | None = None) -> tuple[str, list]:
    clauses, params = [], []
    if source:
        # A source names where prompts came from ("demo", "import:prompts.jsonl"):
        # PPO on one scenario's prompts must not mix in the demo set.
        clauses.append("(source = ? OR source = ?)")
        params.extend([source, f"import:{source}"])
    if split is not None:
        _check_split(split)
        clauses.append("split = ?")
        params.append(split)
    if search:
        clauses.append("text LIKE ? ESCAPE '\\'")
        params.append(like_pattern(search))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_prompts(
    db: sqlite_utils.Database,
    *,
    split: str | None = None,
    search: str | None = None,
    limit: int = 100,
    offset: int = 0,
    source: str | None = None,
) -> list[Prompt]:
    """Prompts in id order; `search` matches the display text (case-insensitive for ASCII)."""
    where, params = _where(split, search, source)
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM prompts{where} ORDER BY id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [_prompt(r) for r in rows]


def count_prompts(
    db: sqlite_utils.Database,
    split: str | None = None,
    *,
    search: str | None = None,
    source: str | None = None,
) -> int:
    where, params = _where(split, search, source)
    return db.execute(f"SELECT count(*) FROM prompts{where}", params).fetchone()[0]


def sample_prompts(
    db: sqlite_utils.Database,
    n: int,
    *,
    split: str | None = "train",
    seed: int | None = None,
    exclude_labeled: bool = False,
) -> list[Prompt]:
    """Up to `n` distinct prompts at random (reproducible with `seed`).

    `exclude_labeled` leaves out prompts that already have a comparison, so
    labeling time goes to prompts nobody has judged yet.
    """
    where, params = _where(split, None)
    if exclude_labeled:
        clause = "id NOT IN (SELECT prompt_id FROM comparisons)"
        where = f"{where} AND {clause}" if where else f" WHERE {clause}"
    ids = [
        r[0] for r in db.execute(f"SELECT id FROM prompts{where} ORDER BY id", params).fetchall()
    ]
    chosen = random.Random(seed).sample(ids, min(max(n, 0), len(ids)))
    return [get_prompt(db, pid) for pid in chosen]
