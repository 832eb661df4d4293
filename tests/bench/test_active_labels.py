"""bench/active_labels.py: the pool and held-out set it builds, how it counts labels to a target, its summary, and
one tiny run end to end (no timings asserted)."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "active_labels.py"


def load():
    spec = importlib.util.spec_from_file_location("active_labels", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["active_labels"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_pool_is_dominated_by_the_common_kind_and_the_held_out_set_is_balanced():
    al = load()
    shares = al.pool_shares(8, 0.72)
    assert shares[0] == 0.72 and shares[1:] == pytest.approx([0.04] * 7) and sum(shares) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="--kinds"):
        al.pool_shares(1, 0.5)
    with pytest.raises(ValueError, match="--common"):
        al.pool_shares(4, 1.0)
    pool = al.make_pool(2000, shares, random.Random(0))
    assert 0.68 < sum(it.kind == 0 for it in pool) / 2000 < 0.76
    test = al.make_test(5, 8, random.Random(0))
    assert [sum(it.kind == k for it in test) for k in range(8)] == [5] * 8
    for it in pool[:50] + test:
        pos, neg = al.VERDICTS[it.kind]
        # The two answers differ only in the verdict word, the better one ends in the positive word.
        assert it.better.rsplit(" ", 1) == [it.worse.rsplit(" ", 1)[0], pos] and it.worse.endswith(" " + neg)


def curve(al, accs, step=8):
    return al.Curve("x", [al.Round(step * (i + 1), a, a) for i, a in enumerate(accs)])


def test_labels_to_reach_counts_from_where_accuracy_stays_at_the_target():
    al = load()
    c = curve(al, [0.5, 0.92, 0.85, 0.9, 0.95])
    assert al.labels_to_reach(c, 0.9) == 32  # the lucky round at 16 labels is not counted …
    assert al.labels_to_reach(c, 0.9, stay=False) == 16  # … unless asked where it first got there
    assert al.labels_to_reach(curve(al, [0.5, 0.8]), 0.9) is None
    mixed = al.Curve("x", [al.Round(8, 0.5, 0.96), al.Round(16, 0.6, 0.99)])
    assert al.labels_to_reach(mixed, 0.97, pool_like=True) == 16 and al.labels_to_reach(mixed, 0.97) is None
    assert al.ratio(32, 16, 96, 8) == (2.0, "")
    assert al.ratio(None, 48, 96, 8) == (104 / 48, "≥")  # random never got there: at least this ratio
    assert al.ratio(48, None, 96, 8) == (48 / 104, "≤")
    assert al.ratio(None, None, 96, 8)[1] == "neither"


def test_summary_gives_each_seed_and_the_median_ratios():
    al = load()
    results = {
        0: {"random": curve(al, [0.5, 0.7, 0.9, 0.9]), "disagreement": curve(al, [0.5, 0.9, 0.95, 0.97])},
        1: {"random": curve(al, [0.5, 0.9, 0.7, 0.8]), "disagreement": curve(al, [0.5, 0.7, 0.9, 0.95])},
        2: {"random": curve(al, [0.9, 0.9, 0.9, 0.9]), "disagreement": curve(al, [0.9, 0.9, 0.9, 0.9])},
    }
    lines = al.summary(results, 0.9, 32, 8, pool_target=0.95)
    assert lines[0].startswith("seed 0: labels to 0.90 — random 24, disagreement 16 (1.50x)")
    assert lines[1].strip().startswith("first reached — random 24, disagreement 16 (1.50x); pool-like to 0.95")
    assert "random >32, disagreement 24 (≥1.67x)" in lines[2]
    assert "first reached — random 16, disagreement 24 (0.67x)" in lines[3]
    assert "(1.00x)" in lines[4]
    # One ratio is a lower bound (random never got there), so the median is one too.
    assert lines[6].startswith("median ratio over 3 seeds: ≥1.50x") and "1.50, ≥1.67, 1.00" in lines[6]
    assert lines[7].startswith("median ratio over 3 seeds: 1.00x") and "first reach" in lines[7]  # all exact
    assert "pool-like" in lines[8]
    results[3] = {"random": curve(al, [0.5, 0.5, 0.5, 0.5]), "disagreement": curve(al, [0.5, 0.5, 0.5, 0.5])}
    assert al.summary(results, 0.9, 32, 8)[-1].endswith("neither queue reached it with seed 3")


def test_a_tiny_run_prints_both_curves_and_the_summary(capsys):
    al = load()
    import torch

    threads = torch.get_num_threads()
    try:
        assert al.main(["--pool", "40", "--kinds", "2", "--common", "0.8", "--test-per-kind", "4", "--step", "8",
                        "--labels", "16", "--ensemble", "2", "--seeds", "0"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "random       labels    8" in out and "disagreement labels   16" in out
    assert "next 8:" in out and "of the rare kinds" in out and "per kind: accuracy" in out
    assert "seed 0: labels to 0.90" in out and "load average" in out
