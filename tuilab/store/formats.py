"""Data file formats: detect, parse and render. Pure functions over text, no database.

Records stream from the file line by line (`iter_records`; the lines come
from `reading.iter_lines`, which refuses what is not text), so a file of any
length parses in the memory of one line. One format per file: detection reads
every line (`reading.detect_kind`), and a line of another kind is an error at
that line, as is any record that does not parse: `FILE:LINE: what was wrong`.
Formats:

- `prompts`: JSONL (`prompt` string or `messages` list, optional `split`),
  CSV with a prompt column, or plain text (one prompt per line);
- `trl`: TRL preference pairs, standard (strings) or conversational (message
  lists), explicit or implicit prompt, optional numeric `margin`;
- `hh`: Anthropic HH-RLHF full transcripts (`\\n\\nHuman: … \\n\\nAssistant: …`);
- `comparisons`: tuilab's own lossless dump of every comparison field.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuilab.records import DECISIONS, Comparison, Generation, Message
from tuilab.store.reading import (
    JSON_EXTENSIONS,
    MAX_FIELD_CHARS,
    FormatError,
    check_record,
    check_source,
    csv_rows,
    detect_kind,
    iter_lines,
    line_kind,
    lines,
    numbered_text,
)

FORMATS = ("prompts", "trl", "hh", "comparisons")
EXPORT_FORMATS = ("trl", "hh", "comparisons", "prompts")
ROLES = ("system", "user", "assistant", "tool")
SPLITS = ("train", "test")
PROMPT_COLUMNS = ("prompt", "text", "question", "instruction")
__all__ = ["FormatError", "JSON_EXTENSIONS", "MAX_FIELD_CHARS", "lines"]  # re-exported from reading


class _Bad(ValueError):
    """A problem inside one record; the caller adds file and line."""


# ---------------------------------------------------------------- records


@dataclass
class PromptRecord:
    line: int
    messages: list[Message]
    split: str | None = None


@dataclass
class PairRecord:
    """One preference: `chosen` ≻ `rejected` for the conversation `messages`."""

    line: int
    messages: list[Message]
    chosen: str
    rejected: str
    margin: float | None = None


@dataclass
class ComparisonRecord:
    """One line of the `comparisons` format: a comparison with its prompt and generations inline.

    The file carries no database ids: `comparison.prompt_id`, `left_id` and
    `right_id` are 0 and every `Generation.id` is None until an import writes them.
    """

    line: int
    messages: list[Message]
    left: Generation
    right: Generation
    comparison: Comparison
    edited: Generation | None = None
    split: str | None = None
    prompt_source: str | None = None  # None: not in the file (the importer names the source)


Record = PromptRecord | PairRecord | ComparisonRecord


@dataclass
class ParsedFile:
    path: str
    format: str
    records: list[Record]


# ---------------------------------------------------------------- messages


def check_messages(value: Any, what: str = "messages") -> list[Message]:
    """A validated copy of a message list: dicts with string `role` and `content` only."""
    if not isinstance(value, list):
        raise _Bad(f"{what} must be a list of {{role, content}} messages, got {_kind(value)}")
    if not value:
        raise _Bad(f"{what} is an empty list")
    out: list[Message] = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise _Bad(f"{what}[{i}] must be an object with role and content, got {_kind(msg)}")
        for key in ("role", "content"):
            if key not in msg:
                raise _Bad(f"{what}[{i}] has no {key!r}")
            if not isinstance(msg[key], str):
                raise _Bad(f"{what}[{i}].{key} must be a string, got {_kind(msg[key])}")
        if msg["role"] not in ROLES:
            raise _Bad(f"{what}[{i}].role {msg['role']!r} is not one of {', '.join(ROLES)}")
        out.append({"role": msg["role"], "content": msg["content"]})
    return out


def check_prompt_messages(value: Any, what: str = "prompt") -> list[Message]:
    """Messages that end with the user turn a model should answer."""
    msgs = check_messages(value, what)
    if msgs[-1]["role"] != "user":
        raise _Bad(f"{what} must end with a user message, not {msgs[-1]['role']!r}")
    if not msgs[-1]["content"].strip():
        raise _Bad(f"{what}: the last user message is empty")
    return msgs


def prompt_text(messages: list[Message]) -> str:
    """The flat text shown and searched: the last user turn (or everything, if none)."""
    for msg in reversed(messages):
        if msg["role"] == "user":
            return msg["content"]
    return "\n".join(m["content"] for m in messages)


def as_prompt_messages(item: Any, *, ends_with_user: bool = True) -> list[Message]:
    """A prompt given as text or as messages, validated (raises ValueError).

    TRL's explicit prompts are any conversation so far (`ends_with_user=False`).
    """
    if isinstance(item, str):
        if not item.strip():
            raise _Bad("prompt is empty")
        return [{"role": "user", "content": item}]
    if isinstance(item, list):
        return check_prompt_messages(item) if ends_with_user else check_messages(item, "prompt")
    raise _Bad(f"prompt must be a string or a list of messages, got {_kind(item)}")


# ---------------------------------------------------------------- reading

Numbered = Iterator[tuple[int, str]]


def _json_lines(path: str, numbered: Numbered) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line."""
    first = True
    for n, raw in numbered:
        if not raw.strip():
            continue
        if first and raw.lstrip().startswith("["):
            raise FormatError(
                path,
                n,
                "a JSON array; tuilab reads JSON Lines, one object per line "
                f"(convert with: jq -c '.[]' {Path(path).name} > {Path(path).stem}.jsonl)",
            )
        first = False
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FormatError(path, n, f"bad JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise FormatError(path, n, f"expected a JSON object per line, got {_kind(obj)}")
        yield n, obj


def detect_format(path: str | Path, text: str) -> str:
    """The format of an in-memory text, by the same whole-file rule as a file (`reading.detect_kind`)."""
    return detect_kind(path, numbered_text(path, text))


def _numbered(path: Path, text: str | None, max_chars: int) -> Numbered:
    return iter_lines(path, max_chars=max_chars) if text is None else numbered_text(path, text)


def resolve_format(path: str | Path, fmt: str = "auto", text: str | None = None, *,
                   max_chars: int = MAX_FIELD_CHARS) -> str:
    """`fmt`, or the file's one format detected from every line; checks the file is readable text."""
    path = Path(path)
    if text is None:
        check_source(path)
    if fmt == "auto":
        fmt = detect_kind(path, _numbered(path, text, max_chars))
    if fmt not in FORMATS:
        raise FormatError(path, None, f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return fmt


def iter_records(path: str | Path, fmt: str, text: str | None = None, *,
                 max_chars: int = MAX_FIELD_CHARS) -> Iterator[Record]:
    """Stream the records of a file in a resolved format; FormatError at the first bad line.

    Memory is one line (or one CSV row): a file of any length streams.
    """
    path = Path(path)
    parser = {
        "prompts": parse_prompts,
        "trl": parse_trl,
        "hh": parse_hh,
        "comparisons": parse_comparisons,
    }[fmt]
    for record in parser(str(path), _numbered(path, text, max_chars)):
        check_record(path, record, max_chars)
        yield record


def parse_file(path: str | Path, fmt: str = "auto", text: str | None = None, *,
               max_chars: int = MAX_FIELD_CHARS) -> ParsedFile:
    """Read and parse a whole file into memory; raises FormatError naming the first bad line."""
    fmt = resolve_format(path, fmt, text, max_chars=max_chars)
    records = list(iter_records(path, fmt, text, max_chars=max_chars))
    if not records:
        raise FormatError(path, None, "no records in the file")
    return ParsedFile(str(path), fmt, records)


# ---------------------------------------------------------------- prompts


def parse_prompts(path: str, numbered: Numbered) -> Iterator[PromptRecord]:
    """Prompts from CSV (by extension), JSON lines (if the first line is an object) or plain text."""
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".tsv"):
        yield from parse_prompts_csv(path, numbered, delimiter="\t" if suffix == ".tsv" else ",")
        return
    if suffix in JSON_EXTENSIONS:
        yield from parse_prompts_jsonl(path, numbered)
        return
    head: list[tuple[int, str]] = []
    if suffix != ".txt":
        for n, raw in numbered:
            head.append((n, raw))
            if raw.strip():
                break
    is_json = bool(head) and head[-1][1].strip() != "" and line_kind(head[-1][1])[0] != "text"
    rest = itertools.chain(head, numbered)
    yield from (parse_prompts_jsonl if is_json else parse_prompts_text)(path, rest)


def _split_value(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if value not in SPLITS:
        raise _Bad(f"split must be 'train' or 'test', got {value!r}")
    return value


def parse_prompts_jsonl(path: str, numbered: Numbered) -> Iterator[PromptRecord]:
    for n, obj in _json_lines(path, numbered):
        try:
            if "prompt" in obj:
                messages = as_prompt_messages(obj["prompt"])
            elif "messages" in obj:
                messages = check_prompt_messages(obj["messages"], "messages")
            else:
                raise _Bad(
                    f"no 'prompt' or 'messages' key (keys: {', '.join(sorted(obj)) or 'none'})"
                )
            record = PromptRecord(n, messages, _split_value(obj.get("split")))
        except _Bad as exc:
            raise FormatError(path, n, str(exc)) from None
        yield record


def parse_prompts_csv(path: str, numbered: Numbered, delimiter: str = ",") -> Iterator[PromptRecord]:
    """A header naming a prompt column, then one prompt per row (strict quoting)."""
    rows = csv_rows(path, numbered, delimiter)
    try:
        _, header = next(rows)
    except StopIteration:
        return
    names = [h.strip().lower() for h in header]
    column = next((names.index(c) for c in PROMPT_COLUMNS if c in names), None)
    if column is None:
        raise FormatError(
            path,
            1,
            f"no prompt column in the header {header}; name one of: {', '.join(PROMPT_COLUMNS)}",
        )
    split_col = names.index("split") if "split" in names else None
    for n, row in rows:
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            if column >= len(row):
                raise _Bad(f"only {len(row)} columns; the prompt column is number {column + 1}")
            # Quoted cells keep the file's line endings; store plain newlines.
            messages = as_prompt_messages(row[column].replace("\r\n", "\n"))
            split = (
                _split_value(row[split_col].strip())
                if split_col is not None and split_col < len(row)
                else None
            )
        except _Bad as exc:
            raise FormatError(path, n, str(exc)) from None
        yield PromptRecord(n, messages, split)


def parse_prompts_text(path: str, numbered: Numbered) -> Iterator[PromptRecord]:
    """One prompt per line; blank lines ignored, surrounding spaces dropped."""
    for n, raw in numbered:
        if raw.strip():
            yield PromptRecord(n, [{"role": "user", "content": raw.strip()}])


def render_prompt(messages: list[Message], split: str) -> dict:
    """A prompts-JSONL line: plain `prompt` text for a single user turn, else `messages`."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return {"prompt": messages[0]["content"], "split": split}
    return {"messages": messages, "split": split}


# ---------------------------------------------------------------- TRL


def _response(value: Any, what: str) -> tuple[list[Message], str]:
    """A TRL completion: a string, or a message list ending with the assistant's turn.

    Returns (leading messages before that turn, the turn's text).
    """
    if isinstance(value, str):
        text = value
        lead: list[Message] = []
    elif isinstance(value, list):
        msgs = check_messages(value, what)
        last = msgs[-1]
        if last["role"] != "assistant":
            raise _Bad(f"{what} must end with an assistant message, not {last['role']!r}")
        lead, text = msgs[:-1], last["content"]
    else:
        raise _Bad(f"{what} must be a string or a list of messages, got {_kind(value)}")
    if not text.strip():
        raise _Bad(f"{what} is empty")
    return lead, text


def _margin(obj: dict) -> float | None:
    if "margin" not in obj or obj["margin"] is None:
        return None
    value = obj["margin"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"margin must be a number, got {_kind(value)}")
    if value != value or value in (float("inf"), float("-inf")):
        raise _Bad("margin must be finite")
    return float(value)


def split_shared_text(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Implicit-prompt strings: (prompt, chosen rest, rejected rest).

    The prompt is the shared leading text, backed off to the last whitespace so
    no word is cut (TRL's extract_prompt does the same when the split lands
    right after a space: the space goes to the responses).
    """
    n = 0
    limit = min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    cut = n
    if n < len(chosen) or n < len(rejected):
        back = max(chosen.rfind(" ", 0, n + 1), chosen.rfind("\n", 0, n + 1))
        if 0 < back <= n:
            cut = back
    return chosen[:cut], chosen[cut:], rejected[cut:]


def parse_trl_record(obj: dict) -> tuple[list[Message], str, str, float | None]:
    """One TRL preference object → (prompt messages, chosen, rejected, margin). Raises _Bad."""
    for key in ("chosen", "rejected"):
        if key not in obj:
            raise _Bad(f"no {key!r} key (keys: {', '.join(sorted(obj))})")
    margin = _margin(obj)
    chosen, rejected = obj["chosen"], obj["rejected"]
    if "prompt" in obj and obj["prompt"] is not None:
        messages = as_prompt_messages(obj["prompt"], ends_with_user=False)
        c_lead, c_text = _response(chosen, "chosen")
        r_lead, r_text = _response(rejected, "rejected")
        if c_lead != r_lead:
            raise _Bad("chosen and rejected differ before their last assistant message")
        messages = messages + c_lead
    elif isinstance(chosen, list) and isinstance(rejected, list):
        # Implicit conversational: everything but the last assistant turn is the prompt.
        c_lead, c_text = _response(chosen, "chosen")
        r_lead, r_text = _response(rejected, "rejected")
        if c_lead != r_lead:
            raise _Bad(
                "chosen and rejected differ before their last assistant message (implicit prompt)"
            )
        if not c_lead:
            raise _Bad(
                "implicit prompt is empty: chosen has only the assistant message; add a 'prompt'"
            )
        messages = c_lead
    elif isinstance(chosen, str) and isinstance(rejected, str):
        shared, c_text, r_text = split_shared_text(chosen, rejected)
        if not shared.strip():
            raise _Bad(
                "chosen and rejected share no leading text, so there is no implicit prompt; add a 'prompt'"
            )
        messages = [{"role": "user", "content": shared}]
        if not c_text.strip():
            raise _Bad("chosen is empty after the shared prompt")
        if not r_text.strip():
            raise _Bad("rejected is empty after the shared prompt")
    else:
        raise _Bad(
            f"chosen and rejected must both be strings or both message lists "
            f"(got {_kind(chosen)} and {_kind(rejected)})"
        )
    messages = check_prompt_messages(messages, "prompt")
    if c_text == r_text:
        raise _Bad("chosen and rejected are the same text")
    return messages, c_text, r_text, margin


def parse_trl(path: str, numbered: Numbered) -> Iterator[PairRecord]:
    for n, obj in _json_lines(path, numbered):
        try:
            messages, chosen, rejected, margin = parse_trl_record(obj)
        except _Bad as exc:
            raise FormatError(path, n, str(exc)) from None
        yield PairRecord(n, messages, chosen, rejected, margin)


def render_trl(messages: list[Message], chosen: str, rejected: str, margin: float | None) -> dict:
    """TRL conversational, explicit prompt: what RewardTrainer / DPOTrainer read."""
    out: dict[str, Any] = {
        "prompt": messages,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }
    if margin is not None:
        out["margin"] = margin
    return out


# ---------------------------------------------------------------- Anthropic HH

_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")
_HH_ROLE = {"Human": "user", "Assistant": "assistant"}
_HH_NAME = {"user": "Human", "assistant": "Assistant"}


def parse_hh_transcript(text: str, what: str = "transcript") -> tuple[list[Message], str]:
    """`\\n\\nHuman: …\\n\\nAssistant: …` → (messages before the last Assistant turn, its text)."""
    last = text.rfind("\n\nAssistant:")
    if last < 0:
        raise _Bad(f"{what} has no '\\n\\nAssistant:' turn")
    head = text[:last]
    response = text[last + len("\n\nAssistant:") :]
    response = response.removeprefix(" ")
    if not head.startswith("\n\n"):
        head = "\n\n" + head.lstrip()
    parts = _HH_TURN.split(head)
    # parts = [before first marker, role, content, role, content, ...]
    if parts[0].strip():
        raise _Bad(f"{what} does not start with a '\\n\\nHuman:' turn")
    messages = [
        {"role": _HH_ROLE[parts[i]], "content": parts[i + 1]} for i in range(1, len(parts), 2)
    ]
    if not messages:
        raise _Bad(f"{what} has no Human turn before the last Assistant turn")
    if messages[-1]["role"] != "user":
        raise _Bad(f"{what}: the turn before the last Assistant turn is not a Human turn")
    return messages, response


def render_hh_transcript(messages: list[Message], response: str) -> str:
    turns = [f"\n\n{_HH_NAME[m['role']]}: {m['content']}" for m in messages]
    return "".join(turns) + f"\n\nAssistant: {response}"


def hh_can_render(messages: list[Message]) -> bool:
    """HH has only Human and Assistant turns: no system or tool messages."""
    return all(m["role"] in _HH_NAME for m in messages)


def parse_hh(path: str, numbered: Numbered) -> Iterator[PairRecord]:
    for n, obj in _json_lines(path, numbered):
        try:
            for key in ("chosen", "rejected"):
                if key not in obj:
                    raise _Bad(f"no {key!r} key (keys: {', '.join(sorted(obj))})")
                if not isinstance(obj[key], str):
                    raise _Bad(f"{key} must be a transcript string, got {_kind(obj[key])}")
            c_msgs, chosen = parse_hh_transcript(obj["chosen"], "chosen")
            r_msgs, rejected = parse_hh_transcript(obj["rejected"], "rejected")
            if c_msgs != r_msgs:
                raise _Bad("chosen and rejected transcripts differ before the last Assistant turn")
            if not chosen.strip():
                raise _Bad("chosen's last Assistant turn is empty")
            if not rejected.strip():
                raise _Bad("rejected's last Assistant turn is empty")
            if chosen == rejected:
                raise _Bad("chosen and rejected are the same text")
            messages = check_prompt_messages(c_msgs, "prompt")
            margin = _margin(obj)
        except _Bad as exc:
            raise FormatError(path, n, str(exc)) from None
        yield PairRecord(n, messages, chosen, rejected, margin)


def render_hh(messages: list[Message], chosen: str, rejected: str) -> dict:
    return {
        "chosen": render_hh_transcript(messages, chosen),
        "rejected": render_hh_transcript(messages, rejected),
    }


# ---------------------------------------------------------------- comparisons dump

_GEN_KEYS = (
    "text",
    "model",
    "adapter",
    "origin",
    "n_tokens",
    "finished",
    "step",
    "params",
    "run_id",
)


def render_generation(g: Generation) -> dict:
    """A generation as the `comparisons` format carries it: every field but the database ids."""
    return {
        "text": g.text,
        "model": g.model,
        "adapter": g.adapter,
        "origin": g.origin,
        "n_tokens": g.n_tokens,
        "finished": g.finished,
        "step": g.step,
        "params": g.params,
        "run_id": g.run_id,
    }


def render_comparison(r: ComparisonRecord) -> dict:
    """One `comparisons` line: every field, ids left out (they are the database's business)."""
    c = r.comparison
    return {
        "prompt": r.messages,
        "split": r.split,
        "prompt_source": r.prompt_source,
        "left": render_generation(r.left),
        "right": render_generation(r.right),
        "decision": c.decision,
        "swapped": c.swapped,
        "strength": c.strength,
        "margin": c.margin,
        "rationale": c.rationale,
        "edited": render_generation(r.edited) if r.edited is not None else None,
        "seconds": c.seconds,
        "annotator": c.annotator,
        "origin": c.origin,
        "run_id": c.run_id,
        "created_at": c.created_at or None,
    }


def _typed(obj: dict, key: str, types: tuple, default: Any, what: str = "") -> Any:
    if key not in obj or obj[key] is None:
        if default is _REQUIRED:
            raise _Bad(f"no {what}{key!r}")
        return default
    value = obj[key]
    if isinstance(value, bool) and bool not in types:
        raise _Bad(f"{what}{key} must be {_names(types)}, got a boolean")
    if not isinstance(value, types):
        raise _Bad(f"{what}{key} must be {_names(types)}, got {_kind(value)}")
    return value


_REQUIRED = object()


def _generation(value: Any, what: str) -> Generation:
    if isinstance(value, str):
        value = {"text": value}
    if not isinstance(value, dict):
        raise _Bad(f"{what} must be an object with 'text', got {_kind(value)}")
    unknown = set(value) - set(_GEN_KEYS)
    if unknown:
        raise _Bad(f"{what} has unknown keys: {', '.join(sorted(unknown))}")
    text = _typed(value, "text", (str,), _REQUIRED, f"{what}.")
    if not text.strip():
        raise _Bad(f"{what}.text is empty")
    return Generation(
        text=text,
        model=_typed(value, "model", (str,), "", f"{what}."),
        adapter=_typed(value, "adapter", (str,), "", f"{what}."),
        origin=_typed(value, "origin", (str,), "model", f"{what}."),
        n_tokens=_typed(value, "n_tokens", (int,), None, f"{what}."),
        finished=_typed(value, "finished", (bool,), None, f"{what}."),
        step=_typed(value, "step", (int,), None, f"{what}."),
        params=_typed(value, "params", (dict,), {}, f"{what}."),
        run_id=_typed(value, "run_id", (str,), None, f"{what}."),
    )


def parse_comparison_record(n: int, obj: dict) -> ComparisonRecord:
    prompt = obj.get("prompt")
    if prompt is None:
        raise _Bad("no 'prompt'")
    messages = as_prompt_messages(prompt)
    for key in ("left", "right", "decision"):
        if key not in obj:
            raise _Bad(f"no {key!r}")
    decision = obj["decision"]
    if decision not in DECISIONS:
        raise _Bad(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    strength = _typed(obj, "strength", (int,), 1)
    if strength not in (1, 2):
        raise _Bad(f"strength must be 1 or 2, got {strength}")
    seconds = _typed(obj, "seconds", (int, float), None)
    margin = _margin(obj)
    edited = obj.get("edited")
    swapped = _typed(obj, "swapped", (bool, int), False)
    if swapped not in (0, 1):
        raise _Bad(f"swapped must be true or false, got {swapped!r}")
    comparison = Comparison(
        prompt_id=0,
        left_id=0,
        right_id=0,
        decision=decision,
        swapped=bool(swapped),
        strength=strength,
        margin=margin,
        rationale=_typed(obj, "rationale", (str,), ""),
        seconds=float(seconds) if seconds is not None else None,
        annotator=_typed(obj, "annotator", (str,), ""),
        origin=_typed(obj, "origin", (str,), "human"),
        run_id=_typed(obj, "run_id", (str,), None),
        created_at=_typed(obj, "created_at", (str,), ""),
    )
    return ComparisonRecord(
        line=n,
        messages=messages,
        left=_generation(obj["left"], "left"),
        right=_generation(obj["right"], "right"),
        comparison=comparison,
        edited=_generation(edited, "edited") if edited is not None else None,
        split=_split_value(obj.get("split")),
        prompt_source=_typed(obj, "prompt_source", (str,), None),
    )


def parse_comparisons(path: str, numbered: Numbered) -> Iterator[ComparisonRecord]:
    for n, obj in _json_lines(path, numbered):
        try:
            record = parse_comparison_record(n, obj)
        except _Bad as exc:
            raise FormatError(path, n, str(exc)) from None
        yield record


# ---------------------------------------------------------------- writing


def dumps_jsonl(rows: list[dict]) -> str:
    """JSON lines, UTF-8 kept readable; the same rows always give the same bytes."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _names(types: tuple) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true/false",
        dict: "an object",
    }
    return " or ".join(names.get(t, t.__name__) for t in types)
