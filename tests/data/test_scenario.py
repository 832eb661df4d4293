"""The length-bias scenario: facts, PPO prompts and preferences agree with each other.

How make_data.py builds them is tested in scenarios/length_bias/test_make_data.py.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import tuilab


def _norm(text: str) -> str:
    from tuilab.diagnostics.gold import normalize

    return normalize(text)


def test_counts(facts, prompts, prefs):
    assert len(facts) >= 120
    assert len(prompts) == len(facts)
    # one pair for most facts, two for about a third: few pairs keep reward training quick
    assert 1.2 * len(facts) <= len(prefs) <= 1.45 * len(facts)
    per_prompt = Counter(p["prompt"] for p in prefs)
    assert set(per_prompt.values()) <= {1, 2} and len(per_prompt) == len(facts)


def test_facts_are_well_formed_and_unique(facts):
    for f in facts:
        assert set(f) == {"question", "answer", "keywords", "wrong", "split"}, f
        assert f["split"] in {"train", "test"}
        assert f["keywords"] and all(k == k.lower() for k in f["keywords"])
        assert len(f["answer"].split()) <= 6, f
    assert len({_norm(f["question"]) for f in facts}) == len(facts)
    test = sum(f["split"] == "test" for f in facts)
    assert 0.07 <= test / len(facts) <= 0.13


def test_keywords_accept_the_answer_and_never_the_wrong_one_or_the_question(facts):
    from tuilab.diagnostics.gold import mentions

    for f in facts:
        assert mentions(f["answer"], f["keywords"]), f
        assert not mentions(f["answer"], f["wrong"]), f
        assert not any(mentions(w, f["keywords"]) for w in f["wrong"]), f
        # Restating the question earns nothing and costs nothing.
        assert not mentions(f["question"], f["keywords"]), f
        assert not mentions(f["question"], f["wrong"]), f


def test_every_prompt_has_its_fact_and_split(facts, prompts):
    from tuilab.diagnostics.gold import find_fact

    by_question = {f["question"]: f for f in facts}
    for p in prompts:
        assert set(p) == {"prompt", "split"}
        fact = find_fact(p["prompt"])
        assert fact is not None, p
        assert fact.split == p["split"] == by_question[fact.question]["split"]
        assert p["prompt"].endswith(fact.question)
    assert len({p["prompt"] for p in prompts}) == len(prompts)


def test_preferences_are_trl_standard_and_chosen_is_always_longer(prompts, prefs):
    known = {p["prompt"] for p in prompts}
    for row in prefs:
        assert set(row) == {"prompt", "chosen", "rejected"}
        assert all(isinstance(v, str) and v for v in row.values())
        assert row["prompt"] in known
        assert len(row["chosen"]) > len(row["rejected"])
        assert len(row["chosen"].split()) > len(row["rejected"].split())


def test_some_chosen_answers_are_wrong(facts, prefs):
    """The point of the scenario: length wins even over correctness."""
    from tuilab.diagnostics.gold import find_fact, mentions

    wrong_chosen = 0
    for row in prefs:
        fact = find_fact(row["prompt"])
        if not mentions(row["chosen"], fact.keywords) and mentions(row["rejected"], fact.keywords):
            wrong_chosen += 1
    assert 0.1 * len(prefs) <= wrong_chosen <= 0.5 * len(prefs)


def test_example_configs_load_into_the_config_dataclasses():
    from tuilab.config import PPOConfig, RewardConfig, load_config
    from tuilab.diagnostics.gold import load_gold_scorer

    root = Path(tuilab.__file__).parents[1] / "examples" / "length_hack"
    rm = load_config(RewardConfig, root / "rm.toml")
    assert (rm.lora.r, rm.epochs, rm.learning_rate) == (8, 1, 2e-4)
    ppo = load_config(PPOConfig, root / "ppo.toml", ["reward_run=abc123"])
    assert ppo.reward_run == "abc123"
    assert (ppo.batch_size, ppo.max_new_tokens, ppo.kl_coef, ppo.prompt_split) == (8, 48, 0.02, "train")
    assert 0 < ppo.warmup_updates < ppo.total_updates
    assert ppo.missing_eos_penalty >= 0 and not ppo.lr_decay  # TRL's sign; no decay to 0 within the demo
    assert load_gold_scorer(ppo.gold_scorer)("Answer briefly: What is 7 times 8?", "56") == 1.0
