"""Reading a data file line by line: text that is text, sane sizes, one format per file, errors at FILE:LINE."""

from __future__ import annotations

import os

import pytest

from tuilab.store.formats import PairRecord, PromptRecord
from tuilab.store.reading import (
    MAX_FIELD_CHARS,
    FormatError,
    check_field,
    check_record,
    check_source,
    control_char,
    csv_rows,
    detect_kind,
    iter_lines,
    line_kind,
    lines,
    max_line_bytes,
    numbered_text,
    record_fields,
    row_kind,
    scan,
)


def write(tmp_path, name, data: bytes | str):
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def U(c):
    return {"role": "user", "content": c}


def test_format_error_names_file_and_line():
    err = FormatError("data/p.jsonl", 3, "bad JSON")
    assert str(err) == "data/p.jsonl:3: bad JSON"
    assert (err.path, err.line, err.message) == ("data/p.jsonl", 3, "bad JSON")
    assert str(FormatError("data/p.jsonl", None, "no records in the file")) == "data/p.jsonl: no records in the file"
    assert isinstance(err, ValueError)


def test_lines_split_on_newlines_only():
    # U+2028, U+0085 and form feed are text a JSON string may hold raw; str.splitlines would cut there.
    assert lines("a\u2028b\r\nc\x0cd\ne\u0085f") == ["a\u2028b", "c\x0cd", "e\u0085f"]
    assert lines("one\n") == ["one", ""]


def test_max_line_bytes_has_a_floor_and_grows_with_the_field_limit():
    assert max_line_bytes(10) == 8 << 20
    assert max_line_bytes(MAX_FIELD_CHARS) == max(8 << 20, 24 * MAX_FIELD_CHARS)
    assert max_line_bytes(1_000_000) == 24_000_000


def test_check_source_returns_a_readable_file(tmp_path):
    path = write(tmp_path, "p.txt", "hello\n")
    assert check_source(str(path)) == path


def test_check_source_says_what_the_path_is_instead(tmp_path):
    with pytest.raises(FormatError, match=r"nope\.txt: no such file$"):
        check_source(tmp_path / "nope.txt")
    with pytest.raises(FormatError, match="is a directory; name a file to import"):
        check_source(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match=r"is not a regular file \(a FIFO, device or socket\)"):
        check_source(fifo)


def test_control_char_allows_tab_newline_cr_and_form_feed():
    assert control_char("tab\there\r\nform\x0cfeed") is None
    assert control_char("ab\x00c") == "a NUL byte at character 3"
    assert control_char("\x1b[31mred") == "control character U+001B at character 1"
    assert control_char("del\x7f") == "control character U+007F at character 4"


def test_check_field_refuses_nul_and_over_long_text():
    check_field("x" * 5, "prompt", 5)  # exactly the limit is fine
    with pytest.raises(ValueError, match=r"^chosen holds a NUL character \(at character 2\); text holds none$"):
        check_field("a\x00b", "chosen", 100)
    with pytest.raises(ValueError) as err:
        check_field("x" * 1234, "rejected", 1000)
    assert str(err.value) == ("rejected is 1,234 characters long, over the limit of 1,000 "
                              "(raise it with --max-field-chars N)")
    check_field("escaped \x1b is the writer's choice", "prompt", 100)  # only NUL is refused here


def test_iter_lines_numbers_lines_and_strips_bom_and_crlf(tmp_path):
    path = write(tmp_path, "p.txt", b"\xef\xbb\xbffirst\r\n\nthird\twith tab\nlast")
    assert list(iter_lines(path)) == [(1, "first"), (2, ""), (3, "third\twith tab"), (4, "last")]
    # a BOM is only stripped at the start of the file
    later = write(tmp_path, "q.txt", b"one\n\xef\xbb\xbftwo\n")
    assert list(iter_lines(later)) == [(1, "one"), (2, "\ufefftwo")]


def test_iter_lines_stops_at_the_first_line_that_is_not_text(tmp_path):
    esc = write(tmp_path, "esc.txt", b"fine\nred \x1b[31m\nnever read \x00\n")
    with pytest.raises(FormatError) as err:
        list(iter_lines(esc))
    assert err.value.line == 2
    assert "control byte 0x1B at byte 5; this is not a text file" in str(err.value)
    nul = write(tmp_path, "nul.txt", b"ok\x00\n")
    with pytest.raises(FormatError, match=r"nul\.txt:1: a NUL byte at byte 3"):
        list(iter_lines(nul))
    latin = write(tmp_path, "latin.txt", "caf\u00e9\n".encode("latin-1"))
    with pytest.raises(FormatError, match=r"latin\.txt:1: not UTF-8 text \(byte 4 of the line\); save the file as UTF-8"):
        list(iter_lines(latin))


def test_iter_lines_refuses_a_line_over_the_byte_limit(tmp_path):
    limit = max_line_bytes(10)
    path = write(tmp_path, "long.txt", b"short\n" + b"a" * (limit + 5) + b"\n")
    with pytest.raises(FormatError) as err:
        list(iter_lines(path, max_chars=10))
    assert err.value.line == 2
    assert f"longer than {limit:,} bytes" in str(err.value) and "--max-field-chars" in str(err.value)
    exact = write(tmp_path, "exact.txt", b"a" * limit + b"\n")  # the newline does not count against it
    assert [n for n, _ in iter_lines(exact, max_chars=10)] == [1]


def test_numbered_text_checks_an_in_memory_text_like_a_file():
    assert list(numbered_text("t.txt", "\ufeffa\r\nb")) == [(1, "a"), (2, "b")]
    with pytest.raises(FormatError, match=r"^t\.txt:2: a NUL byte at character 2; this is not a text file"):
        list(numbered_text("t.txt", "a\nb\x00"))


@pytest.mark.parametrize(
    ("obj", "kind"),
    [
        ({"decision": "left"}, "comparisons"),
        ({"left": {}, "right": {}}, "comparisons"),
        ({"prompt": "q", "chosen": "a", "rejected": "b"}, "trl"),
        ({"chosen": [U("a")], "rejected": [U("b")]}, "trl"),
        ({"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant: b"}, "hh"),
        ({"prompt": "\n\nHuman: hi", "chosen": "\n\nHuman: hi\n\nAssistant: a"}, "trl"),  # a prompt key: TRL
        ({"prompt": "q", "split": "test"}, "prompts"),
        ({"messages": [U("q")]}, "prompts"),
        ({"foo": 1}, None),
    ],
)
def test_row_kind_from_keys(obj, kind):
    assert row_kind(obj) == kind


def test_line_kind_says_what_a_json_file_would_say():
    assert line_kind('{"prompt": "q", "id": 3}') == ("prompts", ["id", "prompt"], "")
    assert line_kind('{"foo": 1}') == (None, ["foo"], "")
    kind, keys, said = line_kind('{"prompt": "q",}')
    assert (kind, keys) == ("text", []) and said.startswith("bad JSON: ") and "(column" in said
    assert line_kind("[1, 2]") == ("text", [], "expected a JSON object per line, got a list")
    assert line_kind("42")[2] == "expected a JSON object per line, got a number"
    assert line_kind("null")[2] == "expected a JSON object per line, got null"
    assert line_kind("just words")[0] == "text"


def detect(name, text):
    return detect_kind(name, numbered_text(name, text))


def test_detect_kind_reads_every_line_and_allows_one_format_per_file():
    assert detect("p.jsonl", '\n{"prompt": "a"}\n\n{"messages": [{"role": "user", "content": "b"}]}\n') == "prompts"
    assert detect("plain.txt", "a prompt\nanother\n") == "prompts"
    assert detect("c.csv", '{"chosen": "not read"}\n') == "prompts"  # CSV and TSV hold prompts
    assert detect("t.TSV", "x\n") == "prompts"
    # an unknown-keys line after the first is the parser's to name, not a second format
    assert detect("t.jsonl", '{"chosen": "a", "rejected": "b"}\n{"other": 1}\n') == "trl"
    with pytest.raises(FormatError) as err:
        detect("mixed.jsonl", '{"prompt": "a"}\n{"prompt": "b"}\n{"chosen": "x", "rejected": "y"}\n')
    assert str(err.value) == (
        "mixed.jsonl:3: this line is a TRL pair (chosen/rejected), but line 1 is a prompt row "
        "(prompt/messages): one format per file (fix the line, or split the file)"
    )


def test_detect_kind_errors_name_the_line():
    with pytest.raises(FormatError, match=r"^p\.jsonl:2: bad JSON"):
        detect("p.jsonl", '{"prompt": "a"}\nnot json\n')
    with pytest.raises(FormatError, match=r"^p\.txt:1: a JSON object in a \.txt file"):
        detect("p.txt", '{"prompt": "a"}\n')
    with pytest.raises(FormatError, match=r"^p\.ndjson:1: cannot tell the format from the keys \['x'\]"):
        detect("p.ndjson", '{"x": 1}\n')
    with pytest.raises(FormatError, match=r"^p\.jsonl: no records in the file$"):
        detect("p.jsonl", "\n  \n")
    # plain text in a file without a JSON extension is prompts, even after a JSON line
    with pytest.raises(FormatError, match=r"^x\.data:2: this line is plain text, but line 1 is a prompt row"):
        detect("x.data", '{"prompt": "a"}\njust words\n')


def test_csv_rows_report_the_line_each_row_starts_on():
    text = 'prompt,other\n"two\nlines",1\n\nplain,2'
    assert list(csv_rows("p.csv", numbered_text("p.csv", text))) == [
        (1, ["prompt", "other"]), (2, ["two\nlines", "1"]), (4, []), (5, ["plain", "2"]),  # a blank row is []
    ]
    assert list(csv_rows("p.tsv", numbered_text("p.tsv", "a\tb"), delimiter="\t")) == [(1, ["a", "b"])]


def test_csv_rows_refuse_an_unclosed_quote_at_its_row():
    text = 'prompt\nfine\n"never closed\nmore\n'
    with pytest.raises(FormatError) as err:
        list(csv_rows("p.csv", numbered_text("p.csv", text)))
    assert str(err.value).startswith("p.csv:3: bad CSV: a quoted field is never closed (the row starting on line 3)")
    assert "check the quote marks" in str(err.value)


def test_scan_checks_the_file_then_detects_or_trusts_the_named_format(tmp_path):
    pairs = write(tmp_path, "pairs.jsonl", '{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    assert scan(pairs) == "trl"
    binary = write(tmp_path, "blob.jsonl", b"\x00\x01\x02")
    assert scan(binary, "prompts") == "prompts"  # a named format is trusted: the parser reads the lines
    with pytest.raises(FormatError, match=r"blob\.jsonl:1: a NUL byte"):
        scan(binary)
    with pytest.raises(FormatError, match="no such file"):
        scan(tmp_path / "missing.jsonl", "trl")


def test_record_fields_name_each_text_as_the_file_does():
    one = PromptRecord(line=1, messages=[U("q")])
    assert list(record_fields(one)) == [("prompt", "q")]
    pair = PairRecord(line=4, messages=[{"role": "system", "content": "s"}, U("q")], chosen="a", rejected="b")
    assert list(record_fields(pair)) == [("prompt message 1", "s"), ("prompt message 2", "q"),
                                         ("chosen", "a"), ("rejected", "b")]


def test_check_record_names_the_file_line_and_field():
    pair = PairRecord(line=7, messages=[U("q")], chosen="fine", rejected="x" * 12)
    check_record("p.jsonl", pair, max_chars=12)
    with pytest.raises(FormatError) as err:
        check_record("p.jsonl", pair, max_chars=10)
    assert str(err.value) == ("p.jsonl:7: rejected is 12 characters long, over the limit of 10 "
                              "(raise it with --max-field-chars N)")
    with pytest.raises(FormatError, match=r"^p\.jsonl:2: prompt holds a NUL character"):
        check_record("p.jsonl", PromptRecord(line=2, messages=[U("a\x00")]))
