"""Exports, and import → export → import round-trips that must agree byte for byte."""

from __future__ import annotations

import json

import pytest

from tuilab.records import Comparison
from tuilab.store.comparisons import record_comparison
from tuilab.store.exporting import export_file, export_rows
from tuilab.store.generations import add_generation
from tuilab.store.importing import import_file
from tuilab.store.pairs import preference_pairs
from tuilab.store.prompts import add_prompts

PROMPT_FILES = ["prompts.jsonl", "prompts.csv", "prompts.txt"]
PAIR_FILES = [
    "trl_standard.jsonl",
    "trl_implicit.jsonl",
    "trl_conversational.jsonl",
    "trl_conversational_implicit.jsonl",
    "hh.jsonl",
    "comparisons.jsonl",
]
CASES = [(f, "prompts") for f in PROMPT_FILES] + [
    (f, fmt) for f in PAIR_FILES for fmt in ("trl", "hh", "comparisons", "prompts")
]


@pytest.mark.parametrize("source,fmt", CASES)
def test_import_export_import_round_trips_exactly(db, fresh_db, data_dir, tmp_path, source, fmt):
    import_file(db, data_dir / source)
    first = tmp_path / f"first.{fmt}.jsonl"
    report = export_file(db, first, fmt)
    assert report.written > 0
    other = fresh_db()
    back = import_file(other, first, fmt=fmt)
    assert back.duplicates == 0
    second = tmp_path / f"second.{fmt}.jsonl"
    export_file(other, second, fmt)
    assert second.read_bytes() == first.read_bytes()


def labeled_db(db):
    """A lab as a human leaves it: every decision, an edit, strengths, swaps, ties."""
    (p1, p2) = add_prompts(db, ["Why is the sky blue?", [
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"}
    ]], split="train").added  # fmt: skip

    def gen(pid, text, **kw):
        return add_generation(db, pid, text, model="m", params={"temperature": 0.7}, **kw)

    a, b, c = gen(p1, "Scattering.", n_tokens=3, finished=True), gen(p1, "The sea.", n_tokens=3), gen(p1, "Magic", n_tokens=2, finished=False)
    d, e = gen(p2, "4", n_tokens=1), gen(p2, "Four", n_tokens=1)
    edit = add_generation(db, p2, "4.", origin="edit")
    cmps = [
        Comparison(p1, a, b, "left", strength=2, seconds=1.5, annotator="ana"),
        Comparison(p1, b, a, "right", swapped=True, rationale="physics", seconds=2.25),
        Comparison(p1, a, c, "tie"),
        Comparison(p2, d, e, "both_bad", edited_id=edit, seconds=9.0),
        Comparison(p2, e, d, "skip"),
        Comparison(p1, c, b, "right", margin=0.3),
    ]
    for cmp in cmps:
        record_comparison(db, cmp)
    return db


def test_comparisons_dump_is_lossless(db, fresh_db, tmp_path):
    labeled_db(db)
    first = tmp_path / "a.jsonl"
    export_file(db, first, "comparisons")
    other = fresh_db()
    import_file(other, first)
    second = tmp_path / "b.jsonl"
    export_file(other, second, "comparisons")
    assert second.read_bytes() == first.read_bytes()
    # And the two labs train on the same pairs.
    strip = [(p.messages, p.chosen, p.rejected, p.margin, p.label, p.split) for p in preference_pairs(db, ties="half")]
    again = [(p.messages, p.chosen, p.rejected, p.margin, p.label, p.split) for p in preference_pairs(other, ties="half")]
    assert strip == again


def test_comparisons_dump_has_every_field(db):
    labeled_db(db)
    rows, _ = export_rows(db, "comparisons")
    assert len(rows) == 6
    first = rows[0]
    assert set(first) == {
        "prompt", "split", "prompt_source", "left", "right", "decision", "swapped", "strength", "margin",
        "rationale", "edited", "seconds", "annotator", "origin", "run_id", "created_at",
    }  # fmt: skip
    assert first["left"] == {
        "text": "Scattering.", "model": "m", "adapter": "", "origin": "model", "n_tokens": 3,
        "finished": True, "step": None, "params": {"temperature": 0.7}, "run_id": None,
    }  # fmt: skip
    assert (first["strength"], first["seconds"], first["annotator"]) == (2, 1.5, "ana")
    assert rows[1]["swapped"] is True and rows[1]["rationale"] == "physics"
    assert rows[3]["edited"]["text"] == "4." and rows[3]["edited"]["origin"] == "edit"
    assert rows[0]["created_at"].endswith("Z")


def test_trl_export_matches_preference_pairs(db, tmp_path):
    labeled_db(db)
    path = tmp_path / "trl.jsonl"
    report = export_file(db, path, "trl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    pairs = preference_pairs(db)
    assert len(lines) == len(pairs) == report.written == 5  # left, right, edit×2, right
    assert lines[0] == {
        "prompt": [{"role": "user", "content": "Why is the sky blue?"}],
        "chosen": [{"role": "assistant", "content": "Scattering."}],
        "rejected": [{"role": "assistant", "content": "The sea."}],
        "margin": 1.0,  # strength 2
    }
    assert "margin" not in lines[1]
    assert [ln["chosen"][0]["content"] for ln in lines[2:4]] == ["4.", "4."]  # the edit, expanded
    assert lines[4]["margin"] == 0.3
    assert report.left_out == {"ties": 1, "both-bad": 1, "skips": 1}
    assert "left out: 1 ties, 1 both-bad, 1 skips" in report.summary()


def test_hh_export_transcripts_and_what_it_cannot_write(db, tmp_path):
    labeled_db(db)
    rows, left_out = export_rows(db, "hh")
    assert rows[0] == {
        "chosen": "\n\nHuman: Why is the sky blue?\n\nAssistant: Scattering.",
        "rejected": "\n\nHuman: Why is the sky blue?\n\nAssistant: The sea.",
        "margin": 1.0,
    }
    # The edit pairs' prompt has a system turn, which HH cannot carry.
    assert left_out["pairs with system/tool turns (HH has none)"] == 2
    assert len(rows) == 3


def test_prompts_export(db, data_dir):
    import_file(db, data_dir / "prompts.jsonl")
    rows, _ = export_rows(db, "prompts")
    assert rows[0]["prompt"] == "What is the capital of France?"
    assert rows[2]["messages"][0]["role"] == "system"
    assert rows[1]["split"] == "test"


def test_export_replaces_the_file_atomically(db, data_dir, tmp_path):
    import_file(db, data_dir / "trl_standard.jsonl")
    path = tmp_path / "sub" / "out.jsonl"
    export_file(db, path, "trl")
    export_file(db, path, "trl")
    assert len(path.read_text().splitlines()) == 3
    assert [p.name for p in path.parent.iterdir()] == ["out.jsonl"]


def test_export_unknown_format(db):
    with pytest.raises(ValueError, match="cannot export 'csv'"):
        export_rows(db, "csv")


def test_exported_text_is_readable_utf8(db, tmp_path):
    add_prompts(db, ["Écris un poème ☂"])
    path = tmp_path / "p.jsonl"
    export_file(db, path, "prompts")
    assert "Écris un poème ☂" in path.read_text(encoding="utf-8")


def test_odd_line_separators_inside_texts_survive(db, fresh_db, tmp_path):
    pid = add_prompts(db, ["para\u2028graph\x0cfeed\x85next"]).added[0]
    a, b = add_generation(db, pid, "line\u2029sep\r\nwindows"), add_generation(db, pid, "\x1cfs")
    record_comparison(db, Comparison(pid, a, b, "left"))
    for fmt in ("prompts", "hh", "comparisons", "trl"):
        first, second = tmp_path / f"1.{fmt}.jsonl", tmp_path / f"2.{fmt}.jsonl"
        export_file(db, first, fmt)
        other = fresh_db(f"{fmt}.db")
        import_file(other, first, fmt=fmt)
        export_file(other, second, fmt)
        assert second.read_bytes() == first.read_bytes(), fmt
    assert preference_pairs(other)[0].chosen == "line\u2029sep\r\nwindows"
