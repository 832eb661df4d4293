"""Simulated and AI annotators: rules, comparators, noise, and the two-order judge on a tiny real model."""

from __future__ import annotations

import pytest

from tuilab.labeling.annotators import (
    AnnotatorError,
    Compare,
    Judge,
    Noisy,
    Rule,
    Shown,
    parse_annotator,
    simulated,
)
from tuilab.modeling.host import ModelHost


def _shown(left: str, right: str, prompt: str = "What is the capital of France?") -> Shown:
    return Shown(prompt=prompt, messages=[{"role": "user", "content": prompt}], left=left, right=right)


def test_rule_picks_the_higher_score_and_ties_on_equal():
    rule = Rule("tests.labeling.rules:brevity")
    assert rule.name == "rule:tests.labeling.rules:brevity"
    assert rule.decide([_shown("short", "much longer"), _shown("much longer", "short"), _shown("ab", "cd")]) == [
        "left", "right", "tie"]


def test_gold_annotator_uses_the_gold_scorer():
    gold = parse_annotator("gold")
    assert gold.name == "gold:tuilab.diagnostics.gold:concise_correct"
    # Correct and short beats wrong.
    assert gold.decide([_shown("Paris.", "Lyon, I believe.")]) == ["left"]


def test_compare_accepts_words_and_numbers():
    assert Compare("tests.labeling.rules:shorter_of").decide([_shown("a", "bbb"), _shown("bbb", "a")]) == [
        "left", "right"]
    with pytest.raises(AnnotatorError, match="returned 'perhaps'"):
        Compare("tests.labeling.rules:says_nonsense").decide([_shown("a", "b")])
    with pytest.raises(AnnotatorError, match=r"takes \(a, b\)"):
        Compare("tests.labeling.rules:brevity")


def test_noise_flips_about_p_and_keeps_ties():
    rule = Rule("tests.labeling.rules:brevity")
    pairs = [_shown("x", "yy")] * 2000 + [_shown("ab", "cd")] * 50
    out = Noisy(rule, 0.3, seed=1).decide(pairs)
    flipped = sum(d == "right" for d in out[:2000]) / 2000
    assert abs(flipped - 0.3) < 0.04
    assert set(out[2000:]) == {"tie"}
    assert Noisy(rule, 0.0).decide(pairs[:5]) == ["left"] * 5
    with pytest.raises(AnnotatorError, match="between 0 and 1"):
        Noisy(rule, 1.5)


def test_simulated_annotators_have_their_own_names_and_streams():
    sims = simulated(Rule("tests.labeling.rules:brevity"), [0.25, 0.25], seed=0)
    assert len({s.name for s in sims}) == 2
    pairs = [_shown("x", "yy")] * 200
    assert sims[0].decide(pairs) != sims[1].decide(pairs)


def test_judge_asks_both_orders_so_a_swap_mirrors_the_verdict(tiny_model_dir, tmp_path):
    judge = Judge(ModelHost(tmp_path, str(tiny_model_dir)), batch_size=3)
    assert judge.name == "judge:tiny-llama"
    pairs = [_shown("Paris.", "Rome, a city in Italy."), _shown("Yes", "no maybe"),
             _shown("The sea.", "A long grey shore and wind."), _shown("1 2 3", "one")]
    forward = judge.decide(pairs)
    backward = judge.decide([_shown(p.right, p.left, p.prompt) for p in pairs])
    mirror = {"left": "right", "right": "left", "tie": "tie"}
    assert set(forward) <= {"left", "right", "tie"}
    assert backward == [mirror[d] for d in forward]
    probs = judge.prefer_first([(p.prompt, p.left, p.right) for p in pairs])
    assert all(0.0 < q < 1.0 for q in probs)


def test_unknown_kinds_are_refused_with_the_choices():
    with pytest.raises(AnnotatorError, match="expected one of rule"):
        parse_annotator("oracle")
    with pytest.raises(AnnotatorError, match="rule:module:function"):
        parse_annotator("rule")
