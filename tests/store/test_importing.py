"""Importing files: what lands where, duplicates, and malformed files that import nothing."""

from __future__ import annotations

import json

import pytest

from tuilab.store.comparisons import get_comparison, list_comparisons
from tuilab.store.formats import FormatError
from tuilab.store.generations import get_generation
from tuilab.store.importing import import_file
from tuilab.store.prompts import count_prompts, hash_split, list_prompts


def U(c):
    return {"role": "user", "content": c}


def A(c):
    return {"role": "assistant", "content": c}


def jsonl(*rows):
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def transcript(*turns):
    return "".join(f"\n\n{who}: {text}" for who, text in turns)


GOOD_PAIR = {"prompt": "Say hi", "chosen": "Hi!", "rejected": "No."}
GOOD_CMP = {
    "prompt": [U("q")],
    "left": {"text": "a"},
    "right": {"text": "b"},
    "decision": "left",
}

# (id, file name, content, --format, bad line, what the message says)
MALFORMED = [
    ("bad-json", "p.jsonl", jsonl({"prompt": "ok"}, '{"prompt": "x"'), "auto", 2, "bad JSON"),
    ("not-an-object", "p.jsonl", jsonl({"prompt": "ok"}, "[1, 2]"), "auto", 2, "expected a JSON object"),
    ("prompt-missing", "p.jsonl", jsonl({"prompt": "ok"}, {"question": "x"}), "auto", 2, "no 'prompt' or 'messages'"),
    ("prompt-wrong-type", "p.jsonl", jsonl({"prompt": "ok"}, {"prompt": 5}), "auto", 2, "prompt must be a string or a list"),
    ("prompt-empty", "p.jsonl", jsonl({"prompt": "ok"}, {"prompt": "   "}), "auto", 2, "prompt is empty"),
    ("bad-role", "p.jsonl", jsonl({"prompt": "ok"}, {"messages": [{"role": "robot", "content": "x"}]}), "auto", 2, "role 'robot'"),
    ("content-not-string", "p.jsonl", jsonl({"prompt": "ok"}, {"messages": [{"role": "user", "content": ["x"]}]}), "auto", 2, "content must be a string"),
    ("ends-with-assistant", "p.jsonl", jsonl({"prompt": "ok"}, {"messages": [U("q"), A("a")]}), "auto", 2, "must end with a user message"),
    ("bad-split", "p.jsonl", jsonl({"prompt": "ok"}, {"prompt": "x", "split": "dev"}), "auto", 2, "split must be 'train' or 'test'"),
    ("csv-no-prompt-column", "p.csv", "id,body\n1,hello\n", "auto", 1, "no prompt column"),
    ("csv-empty-prompt", "p.csv", "prompt,split\nfine,train\n,test\n", "auto", 3, "prompt is empty"),
    ("csv-bad-split", "p.csv", "prompt,split\nfine,train\nx,holdout\n", "auto", 3, "split must be"),
    ("trl-missing-rejected", "t.jsonl", jsonl(GOOD_PAIR, {"prompt": "x", "chosen": "y"}), "trl", 2, "no 'rejected'"),
    ("trl-empty-chosen", "t.jsonl", jsonl(GOOD_PAIR, {"prompt": "x", "chosen": "", "rejected": "z"}), "auto", 2, "chosen is empty"),
    ("trl-chosen-wrong-type", "t.jsonl", jsonl(GOOD_PAIR, {"prompt": "x", "chosen": 3, "rejected": "z"}), "auto", 2, "chosen must be a string or a list"),
    ("trl-margin-not-number", "t.jsonl", jsonl(GOOD_PAIR, {**GOOD_PAIR, "chosen": "Hey", "margin": "big"}), "auto", 2, "margin must be a number"),
    ("trl-margin-bool", "t.jsonl", jsonl(GOOD_PAIR, {**GOOD_PAIR, "chosen": "Hey", "margin": True}), "auto", 2, "margin must be a number"),
    ("trl-same-text", "t.jsonl", jsonl(GOOD_PAIR, {"prompt": "x", "chosen": "y", "rejected": "y"}), "auto", 2, "same text"),
    ("trl-chosen-ends-with-user", "t.jsonl", jsonl(GOOD_PAIR, {"prompt": [U("q")], "chosen": [U("a")], "rejected": [A("b")]}), "auto", 2, "must end with an assistant message"),
    ("trl-implicit-conv-mismatch", "t.jsonl", jsonl(GOOD_PAIR, {"chosen": [U("q"), A("a")], "rejected": [U("other"), A("b")]}), "auto", 2, "differ before their last assistant"),
    ("trl-implicit-conv-no-prompt", "t.jsonl", jsonl(GOOD_PAIR, {"chosen": [A("a")], "rejected": [A("b")]}), "auto", 2, "implicit prompt is empty"),
    ("trl-implicit-no-shared-text", "t.jsonl", jsonl(GOOD_PAIR, {"chosen": "Yes", "rejected": "No"}), "auto", 2, "share no leading text"),
    ("trl-mixed-types", "t.jsonl", jsonl(GOOD_PAIR, {"chosen": "Yes", "rejected": [A("No")]}), "auto", 2, "must both be strings or both message lists"),
    ("hh-prefix-mismatch", "h.jsonl", jsonl(
        {"chosen": transcript(("Human", "q"), ("Assistant", "a")), "rejected": transcript(("Human", "q"), ("Assistant", "b"))},
        {"chosen": transcript(("Human", "q1"), ("Assistant", "a")), "rejected": transcript(("Human", "q2"), ("Assistant", "b"))},
    ), "auto", 2, "differ before the last Assistant turn"),
    ("hh-no-assistant", "h.jsonl", jsonl({"chosen": "\n\nHuman: q", "rejected": "\n\nHuman: q"}), "hh", 1, "no '\\n\\nAssistant:' turn"),
    ("hh-empty-chosen", "h.jsonl", jsonl({"chosen": transcript(("Human", "q"), ("Assistant", "")), "rejected": transcript(("Human", "q"), ("Assistant", "b"))}), "auto", 1, "chosen's last Assistant turn is empty"),
    ("hh-not-a-string", "h.jsonl", jsonl({"chosen": [A("x")], "rejected": "y"}), "hh", 1, "chosen must be a transcript string"),
    ("hh-junk-before-human", "h.jsonl", jsonl({"chosen": "hello\n\nHuman: q\n\nAssistant: a", "rejected": "hello\n\nHuman: q\n\nAssistant: b"}), "hh", 1, "does not start with"),
    ("cmp-bad-decision", "c.jsonl", jsonl(GOOD_CMP, {**GOOD_CMP, "decision": "A"}), "auto", 2, "decision must be one of"),
    ("cmp-missing-left", "c.jsonl", jsonl(GOOD_CMP, {k: v for k, v in GOOD_CMP.items() if k != "left"}), "comparisons", 2, "no 'left'"),
    ("cmp-bad-strength", "c.jsonl", jsonl(GOOD_CMP, {**GOOD_CMP, "strength": 3}), "auto", 2, "strength must be 1 or 2"),
    ("cmp-empty-text", "c.jsonl", jsonl(GOOD_CMP, {**GOOD_CMP, "right": {"text": " "}}), "auto", 2, "right.text is empty"),
    ("cmp-n-tokens-wrong-type", "c.jsonl", jsonl(GOOD_CMP, {**GOOD_CMP, "left": {"text": "a", "n_tokens": "4"}}), "auto", 2, "left.n_tokens must be an integer"),
    ("cmp-unknown-generation-key", "c.jsonl", jsonl(GOOD_CMP, {**GOOD_CMP, "left": {"text": "a", "score": 1}}), "auto", 2, "unknown keys: score"),
]


@pytest.fixture
def seeded(db, data_dir):
    """A database with some of everything, so 'nothing changed' is a real check."""
    import_file(db, data_dir / "comparisons.jsonl")
    import_file(db, data_dir / "trl_standard.jsonl")
    return db


@pytest.mark.parametrize("name,content,fmt,line,fragment", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_file_names_the_line_and_imports_nothing(seeded, snapshot, tmp_path, name, content, fmt, line, fragment):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    before = snapshot(seeded)
    with pytest.raises(FormatError) as err:
        import_file(seeded, path, fmt=fmt)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert fragment in str(err.value)
    assert snapshot(seeded) == before


def test_database_error_mid_import_rolls_everything_back(seeded, snapshot, tmp_path):
    # A real SQLite failure on the third pair, after two pairs were written.
    seeded.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON generations WHEN NEW.text = 'explode' "
        "BEGIN SELECT RAISE(ABORT, 'boom'); END"
    )
    path = tmp_path / "t.jsonl"
    path.write_text(jsonl(
        {"prompt": "p1", "chosen": "a", "rejected": "b"},
        {"prompt": "p2", "chosen": "c", "rejected": "d"},
        {"prompt": "p3", "chosen": "explode", "rejected": "e"},
    ))  # fmt: skip
    before = snapshot(seeded)
    with pytest.raises(Exception, match="boom"):
        import_file(seeded, path)
    assert snapshot(seeded) == before
    assert not seeded.conn.in_transaction


def test_prompts_import_reports_duplicates_with_lines(db, data_dir):
    report = import_file(db, data_dir / "prompts.jsonl")
    assert (report.format, report.records, report.prompts_added) == ("prompts", 6, 5)
    assert (report.duplicates, report.duplicate_lines) == (1, [6])
    assert "1 duplicate prompt skipped" in report.summary() and "line 6" in report.summary()
    again = import_file(db, data_dir / "prompts.jsonl")
    assert (again.prompts_added, again.duplicates, again.duplicate_lines) == (0, 6, [1, 2, 3, 4, 6, 7])
    assert count_prompts(db) == 5


def test_prompt_sources_and_splits(db, data_dir):
    import_file(db, data_dir / "prompts.jsonl")
    by_text = {p.text: p for p in list_prompts(db)}
    assert by_text["Name three primary colors."].split == "test"  # from the file
    assert by_text["Tell me a joke."].split == "train"
    assert all(p.source == "import:prompts.jsonl" for p in by_text.values())
    from tuilab.store.prompts import prompt_hash

    france = by_text["What is the capital of France?"]
    assert france.split == hash_split(prompt_hash(france.messages))  # no split given: from the hash


def test_split_flag_overrides_the_file(db, data_dir):
    import_file(db, data_dir / "prompts.jsonl", split="test")
    assert count_prompts(db, "test") == 5


def test_csv_and_text_prompts(db, data_dir):
    csv_report = import_file(db, data_dir / "prompts.csv")
    assert (csv_report.prompts_added, csv_report.duplicate_lines) == (3, [5])
    txt_report = import_file(db, data_dir / "prompts.txt")
    assert (txt_report.prompts_added, txt_report.duplicate_lines) == (3, [4])
    assert count_prompts(db, search="haiku about rain") == 1


def test_preference_import_shape(db, data_dir):
    report = import_file(db, data_dir / "trl_standard.jsonl")
    assert (report.comparisons_added, report.prompts_added, report.prompts_existing) == (3, 2, 1)
    assert report.duplicates == 0  # the same prompt in two pairs is normal
    assert report.generations_added == 5  # " green." is one response, rejected twice
    views = list_comparisons(db, newest_first=False)
    c = views[1].comparison
    assert (c.decision, c.swapped, c.origin, c.margin) == ("left", False, "import", 2.5)
    assert (views[1].left_text, views[1].right_text) == (" four.", " five.")
    left = get_generation(db, c.left_id)
    assert (left.origin, left.model, left.n_tokens) == ("import", "", None)


def test_same_preference_file_twice_adds_nothing(db, data_dir, snapshot):
    import_file(db, data_dir / "hh.jsonl")
    before = snapshot(db)
    again = import_file(db, data_dir / "hh.jsonl")
    assert (again.duplicates, again.duplicate_lines, again.comparisons_added) == (3, [1, 2, 3], 0)
    assert "3 duplicate pairs skipped" in again.summary()
    assert snapshot(db) == before


def test_pairs_repeated_inside_one_file(db, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(jsonl(GOOD_PAIR, {"prompt": "other", "chosen": "x", "rejected": "y"}, GOOD_PAIR))
    report = import_file(db, path)
    assert (report.comparisons_added, report.duplicates, report.duplicate_lines) == (2, 1, [3])


def test_comparisons_import_keeps_every_field(db, data_dir):
    report = import_file(db, data_dir / "comparisons.jsonl")
    assert (report.comparisons_added, report.prompts_added) == (6, 4)
    views = {v.comparison.created_at: v for v in list_comparisons(db)}
    first = views["2026-11-29T06:27:01.120Z"]
    c = first.comparison
    assert (c.decision, c.strength, c.seconds, c.annotator, c.origin) == ("left", 2, 3.5, "ana", "human")
    left = get_generation(db, c.left_id)
    assert (left.model, left.n_tokens, left.finished, left.params) == ("smollm2-135m-instruct", 4, True, {"temperature": 0.8})
    tie = views["2026-11-29T06:28:00.000Z"]
    assert tie.split == "test"
    edit = views["2026-11-29T06:29:00.000Z"]
    assert get_generation(db, edit.comparison.edited_id).origin == "edit"
    assert get_comparison(db, views["2026-11-29T06:27:09.500Z"].id).swapped is True
    again = import_file(db, data_dir / "comparisons.jsonl")
    assert (again.comparisons_added, again.duplicates) == (0, 6)


def test_comparisons_import_drops_links_to_unknown_runs(db, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(jsonl({**GOOD_CMP, "run_id": "ppo-x", "left": {"text": "a", "run_id": "ppo-x", "step": 3}}))
    report = import_file(db, path)
    assert report.run_links_dropped == 2
    c = list_comparisons(db)[0].comparison
    assert c.run_id is None and get_generation(db, c.left_id).step == 3


def test_dry_run_counts_without_writing(db, data_dir, snapshot):
    before = snapshot(db)
    report = import_file(db, data_dir / "trl_conversational.jsonl", dry_run=True)
    assert report.comparisons_added == 3 and report.summary().startswith("Would import")
    assert snapshot(db) == before


def test_missing_split_value_is_rejected(db, data_dir):
    with pytest.raises(ValueError, match="split"):
        import_file(db, data_dir / "prompts.txt", split="dev")


def test_a_bad_last_line_rolls_back_batches_already_written(db, tmp_path):
    """Records stream in batches; a bad line after several batches still imports nothing."""
    from tuilab.store.importing import BATCH

    path = tmp_path / "many.jsonl"
    with open(path, "w") as fh:
        for i in range(BATCH * 2 + 10):
            fh.write(json.dumps({"prompt": f"prompt number {i}"}) + "\n")
        fh.write('{"prompt": "x", "chosen": "a", "rejected": "b"}\n')
    before = db.execute("SELECT count(*) FROM prompts").fetchone()[0]
    with pytest.raises(FormatError, match=rf"many\.jsonl:{BATCH * 2 + 11}: this line is a TRL pair"):
        import_file(db, path)
    assert db.execute("SELECT count(*) FROM prompts").fetchone()[0] == before
    assert not db.conn.in_transaction
    report = import_file(db, _first_lines(path, BATCH * 2 + 10))
    assert report.records == report.prompts_added == BATCH * 2 + 10


def _first_lines(path, n):
    out = path.with_name("ok.jsonl")
    out.write_text("".join(path.read_text().splitlines(keepends=True)[:n]))
    return out
