"""The gold scorer rewards short correct answers; `load_gold_scorer` resolves config strings."""

from __future__ import annotations

import pytest

from tuilab.diagnostics.gold import (
    GoldScorerError,
    concise_correct,
    find_fact,
    length_penalty,
    load_gold_scorer,
)

PROMPT = "Answer briefly: What is the capital of Australia?"
FILLER = (
    " This is a question that comes up often in classrooms and in quizzes. It is worth"
    " remembering, because it appears in many different contexts. Many people find it helpful"
    " to connect facts like this to things they already know."
)


def test_ordering_concise_correct_beats_padded_beats_wrong():
    concise = concise_correct(PROMPT, "The capital of Australia is Canberra.")
    padded = concise_correct(PROMPT, "Great question! The capital of Australia is Canberra." + FILLER * 2)
    wrong = concise_correct(PROMPT, "Sydney.")
    wrong_long = concise_correct(PROMPT, "The capital of Australia is Sydney, a coastal city." + FILLER * 3)
    assert concise == pytest.approx(1.0)
    assert 0.0 <= padded < concise
    assert wrong == pytest.approx(-1.5)  # absent keyword and a known wrong answer
    assert wrong_long < wrong


def test_missing_answer_scores_minus_one_and_hedging_costs_half():
    assert concise_correct(PROMPT, "I am not sure.") == pytest.approx(-1.0)
    assert concise_correct(PROMPT, "Canberra, or maybe Sydney.") == pytest.approx(0.5)


def test_keywords_match_whole_words_case_and_accents_ignored():
    brazil = "Answer briefly: What is the capital of Brazil?"
    assert concise_correct(brazil, "BRASÍLIA") == pytest.approx(1.0)
    assert concise_correct(brazil, "Brasilia.") == pytest.approx(1.0)
    sq = "Answer briefly: What is the square root of 64?"
    assert concise_correct(sq, "It is 8.") == pytest.approx(1.0)
    assert concise_correct(sq, "It is 88.") == pytest.approx(-1.0)  # 88 is not 8
    water = "Answer briefly: What is the chemical formula for water?"
    assert concise_correct(water, "H₂O") == pytest.approx(1.0)


def test_question_is_found_inside_a_chat_template():
    templated = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "Answer briefly: what is the capital of   australia ?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert find_fact(templated).answer == "Canberra."
    assert concise_correct(templated, "Canberra") == pytest.approx(1.0)


def test_unknown_prompt_scores_only_length():
    unknown = "Write a haiku about autumn leaves."
    assert find_fact(unknown) is None
    assert concise_correct(unknown, "Red leaves fall slowly") == 0.0
    long = " ".join(["word"] * 45)
    assert concise_correct(unknown, long) == pytest.approx(-0.02 * 25)


def test_length_penalty_starts_after_twenty_words_and_is_capped():
    assert length_penalty(" ".join(["w"] * 20)) == 0.0
    assert length_penalty(" ".join(["w"] * 21)) == pytest.approx(0.02)
    assert length_penalty(" ".join(["w"] * 500)) == pytest.approx(1.0)


def test_load_gold_scorer_resolves_the_shipped_scorer():
    scorer = load_gold_scorer("tuilab.diagnostics.gold:concise_correct")
    assert scorer(PROMPT, "Canberra.") == pytest.approx(1.0)
    assert isinstance(scorer(PROMPT, "Canberra."), float)


def test_load_gold_scorer_accepts_text_only_functions():
    scorer = load_gold_scorer("tuilab.diagnostics.gold:length_penalty")
    assert scorer("ignored prompt", " ".join(["w"] * 30)) == pytest.approx(0.2)
    builtin = load_gold_scorer("builtins:len")  # one positional argument → response only
    assert builtin("prompt", "abc") == 3.0


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("", "expected 'module:function'"),
        ("tuilab.diagnostics.gold", "expected 'module:function'"),
        (":concise_correct", "expected 'module:function'"),
        ("tuilab.diagnostics.gold:", "expected 'module:function'"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("tuilab.diagnostics.gold:nope", "has no attribute 'nope'"),
        ("tuilab.diagnostics.gold:FREE_WORDS", "is not a function"),
        ("re:sub", "takes 3 required arguments"),
        ("os.path:join", None),  # (a, *p): two positional → accepted as a pair scorer
    ],
)
def test_load_gold_scorer_messages(spec, needle):
    if needle is None:
        load_gold_scorer(spec)
        return
    with pytest.raises(GoldScorerError) as info:
        load_gold_scorer(spec)
    assert needle in str(info.value)
