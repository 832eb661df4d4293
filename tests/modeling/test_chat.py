"""Conversations to token ids: what generation starts from and what a reward model scores."""

from __future__ import annotations

import pytest
from tiny import build_tokenizer

from tuilab.modeling.chat import as_messages, prompt_ids, scored_ids

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_prompt_ids_are_the_chat_template_with_the_generation_prompt(tok):
    ids = prompt_ids(tok, MESSAGES)
    assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
    text = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert ids == tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids).endswith("What is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    assert tok.decode(ids).startswith("<|im_start|>system\n")  # the template's default system turn


def test_a_system_message_replaces_the_default_one(tok):
    ids = prompt_ids(tok, [{"role": "system", "content": "Be brief."}, *MESSAGES])
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>") and "SmolLM" not in text


def test_scored_ids_are_prompt_answer_and_one_eos(tok):
    answer = "Paris is the capital."
    ids = scored_ids(tok, MESSAGES, answer)
    prompt = prompt_ids(tok, MESSAGES)
    assert ids[: len(prompt)] == prompt
    assert ids[len(prompt):-1] == tok.encode(answer, add_special_tokens=False)
    assert ids[-1] == tok.eos_token_id and ids.count(tok.eos_token_id) == prompt.count(tok.eos_token_id) + 1
    # Scored at the end-of-turn token itself: no newline after it.
    assert tok.decode(ids).endswith("assistant\nParis is the capital.<|im_end|>")


def test_scored_ids_take_answer_tokens_as_they_are(tok):
    tokens = [100, 120, 140]
    ids = scored_ids(tok, MESSAGES, tokens)
    assert ids == prompt_ids(tok, MESSAGES) + tokens + [tok.eos_token_id]
    assert tokens == [100, 120, 140]  # the caller's list is not extended in place
    text = "sea wind good"
    assert scored_ids(tok, MESSAGES, text) == scored_ids(tok, MESSAGES, tok.encode(text, add_special_tokens=False))


def test_an_empty_answer_is_scored_at_the_eos_after_the_prompt(tok):
    assert scored_ids(tok, MESSAGES, "") == prompt_ids(tok, MESSAGES) + [tok.eos_token_id]


def test_as_messages_wraps_a_plain_prompt_as_one_user_turn():
    assert as_messages("Hi there") == [{"role": "user", "content": "Hi there"}]
    assert as_messages(MESSAGES) is MESSAGES
