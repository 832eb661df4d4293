"""Repetition in generated text: the loops and padding a hacked policy falls into.

Works on any sequence of hashable units: token ids (what PPO has) or words
(`text.split()`, what a person reads).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def ngrams(units: Sequence[Hashable], n: int) -> list[tuple]:
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    return [tuple(units[i : i + n]) for i in range(len(units) - n + 1)]


def distinct_n(sequences: Sequence[Sequence[Hashable]], n: int = 2) -> float | None:
    """Unique n-grams ÷ all n-grams across a batch (Li et al. 2016); None if there are none.

    1.0 means no n-gram repeats anywhere in the batch; a policy collapsing onto
    one phrase drives it toward 0.
    """
    total = 0
    seen: set[tuple] = set()
    for seq in sequences:
        grams = ngrams(seq, n)
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else None


def repeated_ngram_fraction(units: Sequence[Hashable], n: int = 3) -> float:
    """Share of a sequence's n-grams that already occurred earlier in the same sequence.

    "the cat the cat the cat" with n=2 → 3 of 5 bigrams are repeats → 0.6.
    Short sequences (no n-gram) count as 0: nothing repeats.
    """
    grams = ngrams(units, n)
    if not grams:
        return 0.0
    seen: set[tuple] = set()
    repeats = 0
    for g in grams:
        if g in seen:
            repeats += 1
        else:
            seen.add(g)
    return repeats / len(grams)
