"""Preference data with a learnable rule, as `PreferencePair`s or as rows in a lab database.

The rule: the chosen answer ends in "good", the rejected one in "bad"; the rest
of both answers is the same random words, so only the rule separates them.
"""

from __future__ import annotations

import random

from tuilab.records import PreferencePair

WORDS = ["sea", "wind", "poem", "rain", "shore", "answer", "question", "long", "short", "yes", "no"]


def rule_texts(n: int, seed: int = 0, prompts: int = 16) -> list[tuple[str, str, str]]:
    """(prompt, chosen, rejected) triples."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        stem = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
        out.append((f"Say something about item {i % prompts}.", f"{stem} good", f"{stem} bad"))
    return out


def make_pairs(n: int = 64, seed: int = 0, prompts: int = 16, split: str = "train") -> list[PreferencePair]:
    return [
        PreferencePair(
            comparison_id=i + 1,
            prompt_id=(i % prompts) + 1,
            messages=[{"role": "user", "content": p}],
            chosen=c,
            rejected=r,
            split=split,
        )
        for i, (p, c, r) in enumerate(rule_texts(n, seed, prompts))
    ]


def insert_pairs(db, n: int = 32, *, seed: int = 0, decision_mix: dict[str, int] | None = None) -> None:
    """Store `n` decided comparisons (left = chosen half the time) plus optional ties / both-bad / skips."""
    from tuilab.records import Comparison
    from tuilab.store.comparisons import record_comparison
    from tuilab.store.generations import add_generation
    from tuilab.store.prompts import add_prompts, find_prompt

    rng = random.Random(seed)
    extra = [d for d, k in (decision_mix or {}).items() for _ in range(k)]
    triples = rule_texts(n + len(extra), seed)
    for i, (prompt, chosen, rejected) in enumerate(triples):
        messages = [{"role": "user", "content": prompt}]
        add_prompts(db, [messages], split="train")
        pid = find_prompt(db, messages)
        a = add_generation(db, pid, chosen)
        b = add_generation(db, pid, rejected)
        if i < n:
            left_first = rng.random() < 0.5
            left, right = (a, b) if left_first else (b, a)
            decision = "left" if left_first else "right"
        else:
            left, right, decision = a, b, extra[i - n]
        record_comparison(db, Comparison(prompt_id=pid, left_id=left, right_id=right, decision=decision))
