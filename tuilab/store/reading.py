"""Reading a data file as text, line by line: one format per file, text that is text, sane sizes.

The checks that need the whole file run here, streaming (memory is one line,
not the file): the path is a regular, readable file; every line is UTF-8
with no NUL or other control bytes (tab, newline, carriage return and form
feed are text); no field is longer than `max_chars`; a CSV's quotes close; and,
when the format is detected, every line is the same kind of row as the first
(a prompts row, a TRL pair, an HH pair, a comparison, or plain text). The
first line that breaks a rule is an error at that line.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

JSON_EXTENSIONS = (".jsonl", ".json", ".ndjson")
MAX_FIELD_CHARS = 100_000
# Control characters that are not text: all C0 but tab, newline, form feed, carriage return; and DEL.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_HH_MARK = re.compile(r"\n\n(Human|Assistant):")
KIND_NAMES = {
    "text": "plain text",
    "prompts": "a prompt row (prompt/messages)",
    "trl": "a TRL pair (chosen/rejected)",
    "hh": "an Anthropic HH pair (Human/Assistant transcripts)",
    "comparisons": "a comparison (left/right/decision)",
    None: "an object with none of the keys tuilab reads",
}


class FormatError(ValueError):
    """A file that does not parse; `str()` is `FILE:LINE: message`."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


def lines(text: str) -> list[str]:
    """Split on newlines only: str.splitlines would also cut at U+2028, form feeds and the
    like, which JSON strings written with ensure_ascii=False may hold raw."""
    return text.replace("\r\n", "\n").split("\n")


def max_line_bytes(max_chars: int) -> int:
    """A raw line may hold several fields of up to 4 UTF-8 bytes per character."""
    return max(8 << 20, 24 * max_chars)


def check_source(path: str | os.PathLike) -> Path:
    """A regular file we can read, or FormatError saying what it is instead."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FormatError(path, None, "no such file") from None
    except OSError as exc:
        raise FormatError(path, None, f"cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise FormatError(path, None, "is a directory; name a file to import")
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(path, None, "is not a regular file (a FIFO, device or socket); import a file")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise FormatError(path, None, "cannot read: permission denied") from None
    except OSError as exc:
        raise FormatError(path, None, f"cannot read: {exc.strerror}") from None
    return path


def control_char(text: str) -> str | None:
    """A description of the first control character in `text`, or None."""
    m = _CONTROL.search(text)
    if m is None:
        return None
    code = ord(m.group())
    name = "a NUL byte" if code == 0 else f"control character U+{code:04X}"
    return f"{name} at character {m.start() + 1}"


def check_field(value: str, what: str, max_chars: int) -> None:
    """Raise ValueError if a text field holds a NUL character or is over the size limit.

    Raw control bytes are refused line by line (`iter_lines`); a JSON-escaped
    control character inside a string is the writer's deliberate choice (the
    lab's own exports escape what models generate), except NUL, which no text holds.
    """
    nul = value.find("\x00")
    if nul >= 0:
        raise ValueError(f"{what} holds a NUL character (at character {nul + 1}); text holds none")
    if len(value) > max_chars:
        raise ValueError(f"{what} is {len(value):,} characters long, over the limit of {max_chars:,} "
                         "(raise it with --max-field-chars N)")


def iter_lines(path: str | os.PathLike, *, max_chars: int = MAX_FIELD_CHARS) -> Iterator[tuple[int, str]]:
    """(line number, text without its newline), streaming; FormatError at the first bad line."""
    path = Path(path)
    limit = max_line_bytes(max_chars)
    with open(path, "rb") as fh:
        n = 0
        while True:
            raw = fh.readline(limit + 1)
            if not raw:
                return
            n += 1
            if len(raw) > limit and not raw.endswith(b"\n"):
                raise FormatError(path, n, f"the line is longer than {limit:,} bytes, over the limit for "
                                           f"fields of {max_chars:,} characters (raise it with --max-field-chars N)")
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            m = _CONTROL_BYTES.search(raw)
            if m is not None:
                what = "a NUL byte" if m.group() == b"\x00" else f"control byte 0x{m.group()[0]:02X}"
                raise FormatError(path, n, f"{what} at byte {m.start() + 1}; this is not a text file "
                                           "(text holds no control characters other than tab and newline)")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FormatError(path, n, f"not UTF-8 text (byte {exc.start + 1} of the line); "
                                           "save the file as UTF-8") from None
            yield n, text.rstrip("\n").removesuffix("\r")


def row_kind(obj: dict) -> str | None:
    """Which format a JSON object belongs to, from its keys alone."""
    keys = set(obj)
    if "decision" in keys or {"left", "right"} & keys:
        return "comparisons"
    if {"chosen", "rejected"} & keys:
        chosen = obj.get("chosen")
        if "prompt" not in keys and isinstance(chosen, str) and _HH_MARK.search(chosen):
            return "hh"
        return "trl"
    if "prompt" in keys or "messages" in keys:
        return "prompts"
    return None


def line_kind(text: str) -> tuple[str | None, list[str], str]:
    """(kind, keys, what a JSON file would say) of one non-blank line: "text" unless a JSON object."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return "text", [], f"bad JSON: {exc.msg} (column {exc.colno})"
    if not isinstance(obj, dict):
        what = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(obj), "a number")
        return "text", [], f"expected a JSON object per line, got {what}"
    return row_kind(obj), sorted(obj), ""


def numbered_text(path: str | os.PathLike, text: str) -> Iterator[tuple[int, str]]:
    """The lines of an in-memory text, with the checks `iter_lines` makes on a file."""
    for n, line in enumerate(lines(text.removeprefix("\ufeff")), 1):
        bad = control_char(line)
        if bad:
            raise FormatError(path, n, f"{bad}; this is not a text file (text holds no control "
                                       "characters other than tab and newline)")
        yield n, line


def detect_kind(path: str | os.PathLike, numbered: Iterator[tuple[int, str]]) -> str:
    """The file's one format, from every line: all rows must be the kind the first one is.

    `.csv`/`.tsv` are prompts. A JSON object's kind comes from its keys
    (`decision`/`left`/`right` → comparisons; `chosen`/`rejected` → trl, or hh
    for `\\n\\nHuman:` transcripts without a `prompt`; `prompt`/`messages` →
    prompts); any other line is plain text, one prompt per line.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "prompts"
    json_file = suffix in JSON_EXTENSIONS
    first: tuple[int, str] | None = None
    for n, text in numbered:
        if not text.strip():
            continue
        kind, keys, json_error = line_kind(text)
        if json_file and kind == "text":
            if first is None and text.lstrip().startswith("["):
                raise FormatError(path, n, "a JSON array; tuilab reads JSON Lines, one object per line "
                                           f"(convert with: jq -c '.[]' {path.name} > {path.stem}.jsonl)")
            raise FormatError(path, n, json_error)
        if first is None:
            if kind is None:
                raise FormatError(path, n, f"cannot tell the format from the keys {keys}; "
                                           "name it with --format prompts|trl|hh|comparisons")
            if kind != "text" and suffix == ".txt":
                raise FormatError(path, n, "a JSON object in a .txt file (plain text, one prompt per line); "
                                           "rename it .jsonl, or name the format with --format")
            first = (n, kind)
            continue
        if kind is not None and kind != first[1]:  # (unknown keys: the parser names what is missing)
            raise FormatError(path, n, f"this line is {KIND_NAMES[kind]}, but line {first[0]} is "
                                       f"{KIND_NAMES[first[1]]}: one format per file "
                                       "(fix the line, or split the file)")
    if first is None:
        raise FormatError(path, None, "no records in the file")
    return "prompts" if first[1] == "text" else first[1]


def csv_rows(path: str | os.PathLike, numbered: Iterator[tuple[int, str]],
             delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(first line of the row, cells), strict: an unterminated or stray quote is an error at its row."""
    current = 0

    def feed() -> Iterator[str]:
        nonlocal current
        for n, text in numbered:
            current = n
            yield text + "\n"

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            detail = "a quoted field is never closed" if "end of data" in str(exc) else str(exc)
            raise FormatError(path, start, f"bad CSV: {detail} (the row starting on line {start}); "
                                           "check the quote marks") from None
        yield start, row
        start = current + 1


def scan(path: str | os.PathLike, fmt: str = "auto", *, max_chars: int = MAX_FIELD_CHARS) -> str:
    """Check that `path` is a readable file and return its format: `fmt`, or detected from every line.

    Detection streams the whole file (memory: one line) and raises FormatError
    at the first line that is not text, too long, or of another kind than the
    first line.
    """
    path = check_source(path)
    if fmt != "auto":
        return fmt
    return detect_kind(path, iter_lines(path, max_chars=max_chars))


def record_fields(record) -> Iterator[tuple[str, str]]:
    """(name, text) of every free-text field of a parsed record, named as the file names them."""
    messages = getattr(record, "messages", None) or []
    for i, msg in enumerate(messages):
        yield ("prompt" if len(messages) == 1 else f"prompt message {i + 1}"), msg["content"]
    comparison = getattr(record, "comparison", None)
    for name in ("chosen", "rejected", "rationale", "annotator"):
        value = getattr(record, name, getattr(comparison, name, None))
        if isinstance(value, str):
            yield name, value
    for name in ("left", "right", "edited"):
        gen = getattr(record, name, None)
        if gen is not None and isinstance(getattr(gen, "text", None), str):
            yield f"{name}.text", gen.text


def check_record(path: str | os.PathLike, record, max_chars: int = MAX_FIELD_CHARS) -> None:
    """FormatError at a record with a control character or an over-long text field."""
    for what, value in record_fields(record):
        try:
            check_field(value, what, max_chars)
        except ValueError as exc:
            raise FormatError(path, record.line, str(exc)) from None
