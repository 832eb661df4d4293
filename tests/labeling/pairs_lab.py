"""A lab whose database holds `n` pairs decided by a "human" who follows a hidden rule (shorter wins)."""

from __future__ import annotations

import random

from tests.tui.tuihelp import make_lab
from tuilab.records import Comparison
from tuilab.store.comparisons import record_comparison
from tuilab.store.db import open_db, transaction
from tuilab.store.generations import add_generation

WORDS = ["the", "a", "sea", "wind", "answer", "long", "short", "good", "bad", "paris", "rome", "light", "rain", "cat", "purr", "egg"]


def decided_pairs_lab(root, n: int, *, seed: int = 0, annotator: str = "") -> tuple:
    """(paths, [(comparison id, shorter generation id)]): every pair decided by the hidden rule."""
    paths = make_lab(root)
    rng = random.Random(seed)
    db = open_db(paths.db)
    out = []
    try:
        _fill(db, rng, n, annotator, out)
    finally:
        db.conn.close()
    return paths, out


def _fill(db, rng, n, annotator, out) -> None:
    with transaction(db):
        pids = [r[0] for r in db.execute("SELECT id FROM prompts ORDER BY id")]
        for i in range(n):
            pid = pids[i % len(pids)]
            ta = tb = ""
            while len(ta) == len(tb):  # distinct lengths: the rule never ties
                wa, wb = rng.sample(range(2, 40), 2)
                ta, tb = (" ".join(rng.choice(WORDS) for _ in range(k)) for k in (wa, wb))
            la, lb = len(ta), len(tb)
            a = add_generation(db, pid, ta, n_tokens=la)
            b = add_generation(db, pid, tb, n_tokens=lb)
            swapped = rng.random() < 0.5
            left, right = (b, a) if swapped else (a, b)
            left_len, right_len = (lb, la) if swapped else (la, lb)
            decision = "left" if left_len < right_len else "right"
            cid = record_comparison(db, Comparison(prompt_id=pid, left_id=left, right_id=right, decision=decision,
                                                   swapped=swapped, annotator=annotator))
            out.append((cid, a if la < lb else b))
