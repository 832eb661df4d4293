"""Rendering conversations to token ids exactly as the policy sees them and the RM scores them."""

from __future__ import annotations

from typing import Any

Message = dict[str, str]


def prompt_ids(tokenizer: Any, messages: list[Message]) -> list[int]:
    """Chat template with the generation prompt: what generation starts from."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    if isinstance(out, dict) or hasattr(out, "input_ids"):
        out = out["input_ids"]
    return list(out)


def scored_ids(tokenizer: Any, messages: list[Message], response: str | list[int]) -> list[int]:
    """Prompt + response + EOS: the sequence a reward model is trained on and PPO scores.

    A reward model is only trustworthy on what it was trained on, so it is
    trained on exactly what PPO will score: the same template, the response
    tokens, and the end-of-turn token, scored at that last token.
    """
    ids = prompt_ids(tokenizer, messages)
    if isinstance(response, str):
        ids += tokenizer.encode(response, add_special_tokens=False)
    else:
        ids += list(response)
    ids.append(tokenizer.eos_token_id)
    return ids


def as_messages(prompt: str | list[Message]) -> list[Message]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return prompt
