"""Parsing and rendering data formats: pure functions, no database."""

from __future__ import annotations

import json

import pytest

from tuilab.store.formats import (
    FormatError,
    detect_format,
    parse_file,
    parse_hh_transcript,
    render_hh_transcript,
    render_trl,
    split_shared_text,
)


def U(c):
    return {"role": "user", "content": c}


def A(c):
    return {"role": "assistant", "content": c}


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(*rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize(
    "name,fmt",
    [
        ("prompts.jsonl", "prompts"),
        ("prompts.csv", "prompts"),
        ("prompts.txt", "prompts"),
        ("trl_standard.jsonl", "trl"),
        ("trl_implicit.jsonl", "trl"),
        ("trl_conversational.jsonl", "trl"),
        ("trl_conversational_implicit.jsonl", "trl"),
        ("hh.jsonl", "hh"),
        ("comparisons.jsonl", "comparisons"),
    ],
)
def test_detects_every_sample_file(data_dir, name, fmt):
    path = data_dir / name
    assert detect_format(path, path.read_text()) == fmt
    assert parse_file(path).format == fmt


def test_detection_sniffs_json_without_a_known_extension(tmp_path):
    assert detect_format("x.data", jsonl({"chosen": "a b", "rejected": "a c"})) == "trl"
    assert detect_format("x.data", "just a prompt\nanother\n") == "prompts"
    assert detect_format("x.data", "[INST] a prompt in brackets\n") == "prompts"
    # A prompt key beside transcripts makes it TRL, not HH.
    hh_like = {"prompt": "\n\nHuman: hi", "chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "x"}
    assert detect_format("x.jsonl", jsonl(hh_like)) == "trl"


def test_detection_failure_names_the_keys_and_the_way_out(tmp_path):
    path = write(tmp_path, "odd.jsonl", "\n" + jsonl({"foo": 1, "bar": 2}))
    with pytest.raises(FormatError) as err:
        parse_file(path)
    assert str(err.value).startswith(f"{path}:2: cannot tell the format")
    assert "['bar', 'foo']" in str(err.value) and "--format" in str(err.value)


def test_prompts_jsonl(data_dir):
    recs = parse_file(data_dir / "prompts.jsonl").records
    assert [r.line for r in recs] == [1, 2, 3, 4, 6, 7]  # the blank line 5 is skipped
    assert recs[0].messages == [U("What is the capital of France?")] and recs[0].split is None
    assert recs[1].split == "test"
    assert recs[2].messages[0] == {"role": "system", "content": "Answer briefly."}
    assert recs[3].messages[-1] == U("Tell me a joke.") and len(recs[3].messages) == 3
    assert recs[5].messages == [U("Écris un haïku sur la pluie.")]


def test_prompts_csv_finds_the_column_and_counts_physical_lines(data_dir):
    recs = parse_file(data_dir / "prompts.csv").records
    assert [(r.line, r.messages[0]["content"], r.split) for r in recs] == [
        (2, "What is 2 + 2?", "train"),
        (3, "Write a haiku about rain,\nwith a line break inside", "test"),
        (5, "What is 2 + 2?", None),
        (7, "Who wrote Hamlet?", None),
    ]


@pytest.mark.parametrize("column", ["prompt", "Text", "question", "INSTRUCTION"])
def test_prompts_csv_column_names(tmp_path, column):
    path = write(tmp_path, "p.csv", f"{column},other\nhello there,1\n")
    assert parse_file(path).records[0].messages == [U("hello there")]


def test_prompts_text_strips_and_skips_blank_lines(data_dir):
    recs = parse_file(data_dir / "prompts.txt").records
    assert [(r.line, r.messages[0]["content"]) for r in recs] == [
        (1, "How do bees make honey?"),
        (3, "Why do cats purr?"),
        (4, "How do bees make honey?"),
        (5, "What is 15% of 80?"),
    ]


def test_trl_standard_explicit_keeps_text_exactly(data_dir):
    recs = parse_file(data_dir / "trl_standard.jsonl").records
    assert recs[0].messages == [U("The sky is")]
    assert (recs[0].chosen, recs[0].rejected, recs[0].margin) == (" blue.", " green.", None)
    assert recs[1].margin == 2.5


def test_trl_implicit_strings_split_at_a_word_boundary(data_dir):
    recs = parse_file(data_dir / "trl_implicit.jsonl").records
    assert (recs[0].messages, recs[0].chosen, recs[0].rejected) == ([U("The sky is")], " blue.", " green.")
    assert (recs[1].messages, recs[1].chosen) == ([U("Water boils at")], " 100 degrees.")
    assert recs[1].margin == 0.5


def test_split_shared_text_never_cuts_a_word():
    assert split_shared_text("The sky is bright", "The sky is blue") == ("The sky is", " bright", " blue")
    assert split_shared_text("Hi there", "Hi there friend") == ("Hi", " there", " there friend")
    assert split_shared_text("abc", "abd") == ("ab", "c", "d")  # no space to back off to


def test_trl_conversational_explicit_and_implicit(data_dir):
    recs = parse_file(data_dir / "trl_conversational.jsonl").records
    assert recs[1].messages == [{"role": "system", "content": "Be terse."}, U("2+2?")]
    assert (recs[1].chosen, recs[1].rejected, recs[1].margin) == ("4", "22", 1.0)
    implicit = parse_file(data_dir / "trl_conversational_implicit.jsonl").records
    assert implicit[0].messages == [U("What color is the sky?")]
    assert implicit[1].messages == [U("Hi!"), A("Hello! How can I help?"), U("Tell me a joke.")]
    assert implicit[1].rejected == "No."


def test_trl_explicit_prompt_with_multi_message_completions(tmp_path):
    row = {
        "prompt": [U("Q1")],
        "chosen": [A("a1"), U("Q2"), A("good")],
        "rejected": [A("a1"), U("Q2"), A("bad")],
    }
    rec = parse_file(write(tmp_path, "t.jsonl", jsonl(row)), "trl").records[0]
    assert rec.messages == [U("Q1"), A("a1"), U("Q2")]
    assert (rec.chosen, rec.rejected) == ("good", "bad")


def test_hh_transcripts(data_dir):
    recs = parse_file(data_dir / "hh.jsonl").records
    assert recs[0].messages == [U("What is a good name for a cat?")]
    assert (recs[0].chosen, recs[0].rejected) == ("How about Whiskers?", "Dog.")
    assert recs[1].messages == [U("Hi"), A("Hello! How can I help?"), U("What's 2+2?")]
    assert (recs[1].chosen, recs[1].rejected) == ("4.", "It is 5.")


def test_hh_transcript_round_trip_keeps_spaces():
    messages = [U(" lead space"), A("x"), U("multi\nline")]
    text = render_hh_transcript(messages, "  two spaces")
    assert parse_hh_transcript(text) == (messages, "  two spaces")
    # A transcript without the leading blank line is accepted too.
    assert parse_hh_transcript("Human: hi\n\nAssistant: yo") == ([U("hi")], "yo")


def test_comparisons_dump(data_dir):
    recs = parse_file(data_dir / "comparisons.jsonl").records
    first = recs[0]
    c = [r.comparison for r in recs]
    assert c[0].decision == "left" and c[0].strength == 2 and c[0].seconds == 3.5
    assert first.left.n_tokens == 4 and first.left.params == {"temperature": 0.8} and first.left.finished
    assert c[0].created_at == "2026-11-29T06:27:01.120Z"
    assert c[1].swapped and c[1].rationale == "shorter and right"
    assert recs[2].split == "test" and recs[2].prompt_source == "import:x.csv"
    assert recs[3].edited.origin == "edit" and recs[3].edited.text.startswith("There once")
    assert c[5].margin == 0.75 and c[5].origin == "import"


def test_render_trl_is_conversational_with_optional_margin():
    assert render_trl([U("q")], "a", "b", None) == {
        "prompt": [U("q")],
        "chosen": [A("a")],
        "rejected": [A("b")],
    }
    assert render_trl([U("q")], "a", "b", 1.5)["margin"] == 1.5


def test_bad_utf8_names_the_line(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes(b"fine\nalso fine\nbad \xff byte\n")
    with pytest.raises(FormatError, match=r"p\.txt:3: not UTF-8"):
        parse_file(path)


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(FormatError, match="no records"):
        parse_file(write(tmp_path, "e.txt", "\n\n"))
    with pytest.raises(FormatError, match="no records"):
        parse_file(write(tmp_path, "e.jsonl", ""))


def test_unknown_format_name(tmp_path):
    with pytest.raises(FormatError, match="unknown format 'dpo'"):
        parse_file(write(tmp_path, "x.jsonl", jsonl({"prompt": "x"})), "dpo")


def test_json_array_gets_a_way_out(tmp_path):
    path = write(tmp_path, "pairs.json", '[\n  {"prompt": "x", "chosen": "a", "rejected": "b"}\n]\n')
    with pytest.raises(FormatError, match=r"pairs\.json:1: a JSON array; .*jq -c"):
        parse_file(path)
