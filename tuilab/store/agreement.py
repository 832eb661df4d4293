"""Reads for labeler consistency: every decision with the facts agreement and bias need, and pairs to re-decide.

A *labeler* is the comparison's `annotator` when set, else its `origin`
("human" for the label screen's default — also for its answers to repeats,
stored with origin "repeat" — "import", ...). Comparisons marked
from hacked samples are left out: a program chose their sides. A *repeat* is a
later decision by the same labeler on the same two generations (in either
order); consistency figures count each labeler's first decision on a pair once.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

# A person's answer to a self-consistency repeat has origin "repeat": the same labeler as their first decision.
LABELER = ("CASE WHEN c.annotator != '' THEN c.annotator WHEN c.origin = 'repeat' THEN 'human' "
           "ELSE c.origin END")


@dataclass(frozen=True)
class DecisionRow:
    """One non-skip decision with the lengths of the two answers as shown."""

    id: int
    labeler: str
    origin: str
    prompt_id: int
    left_id: int
    right_id: int
    decision: str
    left_len: int  # tokens when both counts are known, else characters
    right_len: int

    @property
    def key(self) -> tuple[int, int]:
        """The pair of generations, whichever side each was shown on."""
        return (min(self.left_id, self.right_id), max(self.left_id, self.right_id))


def decision_rows(db: sqlite_utils.Database) -> list[DecisionRow]:
    """Every non-skip decision except hacked-sample marks, oldest first."""
    rows = db.execute(
        f"SELECT c.id, {LABELER}, c.origin, c.prompt_id, c.left_id, c.right_id, c.decision,"
        " l.n_tokens, r.n_tokens, length(l.text), length(r.text)"
        " FROM comparisons c JOIN generations l ON l.id = c.left_id JOIN generations r ON r.id = c.right_id"
        " WHERE c.decision != 'skip' AND c.origin != 'hacked' ORDER BY c.id"
    ).fetchall()
    out = []
    for cid, labeler, origin, pid, left, right, decision, ltok, rtok, lchars, rchars in rows:
        a, b = (ltok, rtok) if ltok is not None and rtok is not None else (lchars, rchars)
        out.append(DecisionRow(cid, labeler, origin, pid, left, right, decision, int(a), int(b)))
    return out


@dataclass(frozen=True)
class PairToDecide:
    """Two stored generations of one prompt, in a neutral order (lower id first)."""

    prompt_id: int
    messages_json: str
    prompt_text: str
    a_id: int
    a_text: str
    b_id: int
    b_text: str


def pairs_decided_by_others(
    db: sqlite_utils.Database, names: list[str], *, limit: int | None = None
) -> list[PairToDecide]:
    """Generation pairs some other labeler decided (not a skip) and none of `names` has: what an AI
    or simulated annotator re-decides so its agreement with people can be measured. Oldest first."""
    sql = (
        "WITH decided AS ("
        f"  SELECT min(c.left_id, c.right_id) AS a, max(c.left_id, c.right_id) AS b, c.prompt_id AS pid,"
        f"         max({LABELER} IN ({', '.join('?' for _ in names)})) AS mine, min(c.id) AS first"
        "  FROM comparisons c WHERE c.decision != 'skip' AND c.origin != 'hacked'"
        "  GROUP BY a, b)"
        " SELECT d.pid, p.messages, p.text, d.a, ga.text, d.b, gb.text FROM decided d"
        " JOIN prompts p ON p.id = d.pid JOIN generations ga ON ga.id = d.a JOIN generations gb ON gb.id = d.b"
        " WHERE d.mine = 0 ORDER BY d.first"
    )
    params: list = list(names)
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [PairToDecide(*row) for row in db.execute(sql, params).fetchall()]


def labelers(db: sqlite_utils.Database) -> dict[str, int]:
    """Labeler → number of (non-skip, non-hacked) decisions, most first."""
    return dict(
        db.execute(
            f"SELECT {LABELER} AS who, count(*) FROM comparisons c WHERE c.decision != 'skip'"
            " AND c.origin != 'hacked' GROUP BY who ORDER BY count(*) DESC, who"
        ).fetchall()
    )


@dataclass(frozen=True)
class RepeatCandidate:
    """A first decision that may come back as a self-consistency repeat."""

    comparison_id: int
    prompt_id: int
    left_id: int
    right_id: int
    swapped: bool

    @property
    def key(self) -> tuple[int, int]:
        return (min(self.left_id, self.right_id), max(self.left_id, self.right_id))


def repeat_candidates(db: sqlite_utils.Database, labeler: str, *, min_age: int) -> list[RepeatCandidate]:
    """`labeler`'s decisions that can be shown again: not a skip, an edit or a hacked mark, not among their
    `min_age` latest decisions (a repeat must not be recognisable), and on a pair they decided only once."""
    rows = db.execute(
        f"SELECT c.id, c.prompt_id, c.left_id, c.right_id, c.swapped, c.decision, c.edited_id FROM comparisons c"
        f" WHERE {LABELER} = ? AND c.origin != 'hacked' ORDER BY c.id",
        [labeler],
    ).fetchall()
    seen: dict[tuple[int, int], int] = {}
    for _, _, left, right, _, _, _ in rows:
        key = (min(left, right), max(left, right))
        seen[key] = seen.get(key, 0) + 1
    old = rows[: max(len(rows) - max(min_age, 0), 0)]
    return [
        RepeatCandidate(cid, pid, left, right, bool(swapped))
        for cid, pid, left, right, swapped, decision, edited in old
        if decision != "skip" and edited is None and seen[(min(left, right), max(left, right))] == 1
    ]
