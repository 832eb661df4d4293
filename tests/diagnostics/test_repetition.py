"""Token n-grams: distinct-n across answers and the repeated share inside one."""

import pytest

from tuilab.diagnostics.repetition import distinct_n, ngrams, repeated_ngram_fraction


def test_ngrams_and_distinct():
    assert ngrams([1, 2, 3], 2) == [(1, 2), (2, 3)]
    assert distinct_n([[1, 2, 3], [1, 2, 4]], 2) == pytest.approx(3 / 4)
    assert distinct_n([[1]], 2) is None
    assert distinct_n([["the", "cat", "sat"], ["the", "cat", "ran"]], 1) == pytest.approx(4 / 6)


def test_repeated_ngram_fraction():
    assert repeated_ngram_fraction(["the", "cat", "the", "cat", "the", "cat"], 2) == pytest.approx(3 / 5)
    assert repeated_ngram_fraction([1, 2, 3, 4], 2) == 0.0
    assert repeated_ngram_fraction([1], 3) == 0.0
    with pytest.raises(ValueError):
        repeated_ngram_fraction([1, 2], 0)
