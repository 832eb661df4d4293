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


def test_ngram_size_must_be_positive_and_short_sequences_have_none():
    with pytest.raises(ValueError, match="^n must be ≥ 1, got 0$"):
        ngrams([1, 2, 3], 0)
    with pytest.raises(ValueError, match="got -2"):
        distinct_n([[1, 2, 3]], -2)
    assert ngrams([1, 2], 3) == [] and ngrams([1, 2, 3], 1) == [(1,), (2,), (3,)]
    assert distinct_n([]) is None


def test_a_batch_collapsing_onto_one_phrase_drives_distinct_n_down():
    varied = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    collapsed = [[1, 2, 3, 4]] * 3
    assert distinct_n(varied) == 1.0
    assert distinct_n(collapsed) == pytest.approx(3 / 9)
