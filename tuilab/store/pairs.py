"""Comparisons → trainable preference pairs: the one place this rule lives.

Reward-model training and TRL/HH export both call `preference_pairs`, so what
a user exports is exactly what the lab trains on.
"""

from __future__ import annotations

import json

import sqlite_utils

from tuilab.records import PreferencePair
from tuilab.store.formats import SPLITS

TIES = ("skip", "half")


def pair_margin(margin: float | None, strength: int) -> float | None:
    """The stored margin when given, else 1.0 for "much better" (strength 2), else none."""
    if margin is not None:
        return float(margin)
    return 1.0 if strength == 2 else None


def preference_pairs(
    db: sqlite_utils.Database, *, ties: str = "skip", split: str | None = None
) -> list[PreferencePair]:
    """Every trainable (prompt, chosen, rejected), in comparison order.

    - left / right: the picked side is chosen, the other rejected (label 1.0);
    - tie: kept with label 0.5 when `ties="half"`, else left out;
    - both_bad and skip: the pair itself is left out;
    - an edit (`edited_id`) adds edited ≻ left and edited ≻ right, whatever the
      decision (a rewrite usually follows "both bad"), except for skip;
    - pairs whose two texts are equal teach nothing and are left out;
    - a self-consistency repeat (origin "repeat") is left out: the labeler's
      first decision on that pair already counts, and a pair must not count twice.
    `split` keeps only pairs whose prompt is in that split.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    sql = (
        "SELECT c.id, c.prompt_id, c.decision, c.strength, c.margin, p.messages, p.split,"
        " l.text, r.text, e.text"
        " FROM comparisons c JOIN prompts p ON p.id = c.prompt_id"
        " JOIN generations l ON l.id = c.left_id JOIN generations r ON r.id = c.right_id"
        " LEFT JOIN generations e ON e.id = c.edited_id"
        " WHERE c.decision != 'skip' AND c.origin != 'repeat'"
    )
    params: list = []
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
        sql += " AND p.split = ?"
        params.append(split)
    out: list[PreferencePair] = []
    for (
        cid,
        pid,
        decision,
        strength,
        margin,
        messages_json,
        psplit,
        left,
        right,
        edited,
    ) in db.execute(sql + " ORDER BY c.id", params):
        messages = json.loads(messages_json)
        m = pair_margin(margin, strength)
        found: list[tuple[str, str, float, float | None]] = []
        if decision == "left":
            found.append((left, right, 1.0, m))
        elif decision == "right":
            found.append((right, left, 1.0, m))
        elif decision == "tie" and ties == "half":
            found.append((left, right, 0.5, None))
        if edited is not None:
            found += [(edited, left, 1.0, m), (edited, right, 1.0, m)]
        for chosen, rejected, label, pm in found:
            if chosen != rejected:
                out.append(PreferencePair(cid, pid, messages, chosen, rejected, pm, label, psplit))
    return out
