"""`labeling.auto`: fresh pairs from a candidate source, decided and stored like a person's decisions."""

from __future__ import annotations

from tests.labeling.fake_source import FakeCandidateSource
from tuilab.labeling.annotators import Rule, simulated
from tuilab.labeling.auto import auto_label, new_pairs
from tuilab.store.db import open_db


def test_new_pairs_are_stored_and_decided_with_the_annotators_name(lab):
    db = open_db(lab.db)
    try:
        pairs = new_pairs(db, FakeCandidateSource(), 6, seed=0, batch=4)
        assert len(pairs) == 6 and len({p.prompt_id for p in pairs}) == 6  # unlabeled prompts first
        stored = dict(db.execute("SELECT id, text FROM generations").fetchall())
        assert all(stored[p.a_id] == p.a_text and stored[p.b_id] == p.b_text for p in pairs)
        sims = simulated(Rule("tests.labeling.rules:brevity"), [0.0, 0.0], seed=1)
        report = auto_label(db, sims, pairs, seed=2)
        assert report.pairs == 6 and sum(report.by_annotator.values()) == 6
        rows = db.execute("SELECT annotator, origin, decision, swapped, left_id, right_id FROM comparisons").fetchall()
        assert {r[1] for r in rows} == {"auto"} and {r[0] for r in rows} <= {s.name for s in sims}
        texts = {p.a_id: p.a_text for p in pairs} | {p.b_id: p.b_text for p in pairs}
        for _, _, decision, swapped, left, right in rows:
            # The fake source's side B is longer, so brevity always picks A, wherever it was shown.
            winner = left if decision == "left" else right
            assert len(texts[winner]) <= len(texts[right if winner == left else left])
            a_left = min(left, right) == left
            assert bool(swapped) == (not a_left)
        assert "Decided 6 times on 6 pairs" in report.summary()
    finally:
        db.conn.close()
