"""`tuilab data import|export|stats` through the real command entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuilab.cli import main
from tuilab.store.db import open_db

DATA = Path(__file__).parents[1] / "fixtures" / "data"


@pytest.fixture
def home(tmp_path):
    """A lab whose database already exists (so no demo prompts: counts are exact)."""
    lab = tmp_path / "lab"
    open_db(lab / "db" / "lab.db").conn.close()
    return lab


def run(home, *argv):
    return main(["--home", str(home), "data", *argv])


def counts(home):
    db = open_db(home / "db" / "lab.db")
    try:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("prompts", "generations", "comparisons")}
    finally:
        db.conn.close()


@pytest.mark.parametrize(
    "name,expect",
    [
        ("prompts.jsonl", "5 new prompts"),
        ("prompts.csv", "3 new prompts"),
        ("prompts.txt", "3 new prompts"),
        ("trl_standard.jsonl", "3 new pairs"),
        ("trl_conversational_implicit.jsonl", "2 new pairs"),
        ("hh.jsonl", "3 new pairs"),
        ("comparisons.jsonl", "6 new comparisons"),
    ],
)
def test_import_prints_a_summary(home, capsys, name, expect):
    assert run(home, "import", str(DATA / name)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Imported {name} (") and expect in out


def test_duplicates_are_reported(home, capsys):
    run(home, "import", str(DATA / "hh.jsonl"))
    capsys.readouterr()
    assert run(home, "import", str(DATA / "hh.jsonl")) == 0
    out = capsys.readouterr().out
    assert "0 new pairs" in out and "3 duplicate pairs skipped" in out and "lines 1, 2, 3" in out


def test_malformed_file_fails_with_file_and_line_and_imports_nothing(home, tmp_path, capsys):
    run(home, "import", str(DATA / "trl_standard.jsonl"))
    before = counts(home)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": "b"}\n')
    capsys.readouterr()
    assert run(home, "import", str(bad)) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"tuilab: {bad}:2: no 'rejected' key (keys: chosen, prompt) (nothing imported)"
    assert "\n" not in err
    assert counts(home) == before


def test_missing_file(home, capsys):
    assert run(home, "import", "nowhere.jsonl") == 1
    assert capsys.readouterr().err.strip() == "tuilab: nowhere.jsonl: no such file"


def test_format_and_split_flags(home, tmp_path, capsys):
    path = tmp_path / "pairs.data"  # an extension that says nothing
    path.write_text('{"prompt": "Say hi", "chosen": "Hi!", "rejected": "Go away."}\n')
    assert run(home, "import", str(path), "--format", "trl", "--split", "test") == 0
    db = open_db(home / "db" / "lab.db")
    try:
        assert db.execute("SELECT split FROM prompts").fetchall() == [("test",)]
    finally:
        db.conn.close()


def test_dry_run_writes_nothing(home, capsys):
    assert run(home, "import", str(DATA / "comparisons.jsonl"), "--dry-run") == 0
    assert capsys.readouterr().out.startswith("Would import")
    assert counts(home) == {"prompts": 0, "generations": 0, "comparisons": 0}


@pytest.mark.parametrize("fmt", ["trl", "hh", "comparisons", "prompts"])
def test_export_round_trips_through_the_cli(home, tmp_path, capsys, fmt):
    run(home, "import", str(DATA / "comparisons.jsonl"))
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert run(home, "export", str(first), "--format", fmt) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("Wrote ")
    other = tmp_path / "other"
    open_db(other / "db" / "lab.db").conn.close()
    assert run(other, "import", str(first), "--format", fmt) == 0
    assert run(other, "export", str(second), "--format", fmt) == 0
    assert second.read_bytes() == first.read_bytes()


def test_trl_export_says_what_was_left_out(home, tmp_path, capsys):
    run(home, "import", str(DATA / "comparisons.jsonl"))
    capsys.readouterr()
    run(home, "export", str(tmp_path / "t.jsonl"), "--format", "trl")
    out = capsys.readouterr().out
    assert "Wrote 5 pairs" in out and "left out: 1 ties, 1 both-bad, 1 skips" in out


def test_stats(home, capsys):
    run(home, "import", str(DATA / "comparisons.jsonl"))
    capsys.readouterr()
    assert run(home, "stats") == 0
    out = capsys.readouterr().out
    assert "comparisons 6" in out and "both_bad 1" in out and "human 5 · import 1" in out
    assert run(home, "stats", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tables"]["comparisons"] == 6 and data["prompts_by_split"]["test"] == 1


def test_stats_show_agreement_between_labelers(home, capsys):
    """Two labelers on the same pairs: `data stats` prints their agreement, and --json carries it."""
    from tuilab.records import Comparison
    from tuilab.store.comparisons import record_comparison
    from tuilab.store.generations import add_generation
    from tuilab.store.prompts import add_prompts

    db = open_db(home / "db" / "lab.db")
    try:
        for i in range(4):
            pid = add_prompts(db, [f"Question {i}?"]).added[0]
            a, b = add_generation(db, pid, f"short {i}"), add_generation(db, pid, f"a longer answer {i}")
            record_comparison(db, Comparison(pid, a, b, "right"))
            # the judge agrees on three pairs of four (it saw the sides the other way round)
            record_comparison(db, Comparison(pid, b, a, "left" if i < 3 else "right", annotator="judge:x",
                                             origin="auto"))
    finally:
        db.conn.close()
    assert run(home, "stats") == 0
    out = capsys.readouterr().out
    assert "Labelers:" in out and "on 4 pairs both decided" in out
    assert run(home, "stats", "--json") == 0
    pairwise = json.loads(capsys.readouterr().out)["consistency"]["pairwise"]
    assert len(pairwise) == 1 and pairwise[0]["n"] == 4 and pairwise[0]["agree"] == 3


def test_new_home_gets_demo_prompts(tmp_path, capsys):
    assert main(["--home", str(tmp_path / "fresh"), "data", "stats", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    from tuilab.store.demo import demo_prompts_text

    if demo_prompts_text() is not None:
        assert data["prompts_by_source"].get("demo", 0) > 0


def test_bare_data_prints_help(home, capsys):
    assert run(home) == 0
    assert "import" in capsys.readouterr().out


def test_export_to_stdout_and_forced_over_a_read_only_file(home, tmp_path, capsys):
    run(home, "import", str(DATA / "trl_standard.jsonl"))
    capsys.readouterr()
    assert run(home, "export", "-", "--format", "trl") == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3 and all(json.loads(line)["chosen"] for line in out.splitlines())
    assert err.startswith("Wrote 3 pairs to -")
    target = tmp_path / "ro.jsonl"
    target.write_text("old\n")
    target.chmod(0o444)
    assert run(home, "export", str(target), "--format", "trl") == 1
    assert "read-only" in capsys.readouterr().err and target.read_text() == "old\n"
    assert run(home, "export", str(target), "--format", "trl", "--force") == 0
    assert target.read_text() == out and (target.stat().st_mode & 0o777) == 0o444


def test_field_limit_can_be_raised(home, tmp_path, capsys):
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"prompt": "x" * 150_000}) + "\n")
    assert run(home, "import", str(big)) == 1
    assert "--max-field-chars" in capsys.readouterr().err
    assert run(home, "import", str(big), "--max-field-chars", "200000") == 0
    assert counts(home)["prompts"] == 1


def test_quoted_newlines_in_csv_are_still_one_prompt(home, tmp_path, capsys):
    f = tmp_path / "multi.csv"
    f.write_text('prompt,split\n"line one\nline two",train\nplain,test\n')
    assert run(home, "import", str(f)) == 0
    assert "2 new prompts" in capsys.readouterr().out
