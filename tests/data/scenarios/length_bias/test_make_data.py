"""`make_data.py`: the length-bias scenario's files are rebuilt from `questions.tsv`, seeded, byte for byte."""

from __future__ import annotations

import importlib.util
import random

import pytest

from tests.data.scenario_files import SCENARIO as HERE


@pytest.fixture(scope="module")
def make_data():
    """The script as a module (it lives beside its data, outside any package)."""
    spec = importlib.util.spec_from_file_location("length_bias_make_data", HERE / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_data_reproduces_the_committed_files(facts, prompts, prefs):
    spec = importlib.util.spec_from_file_location("length_bias_make_data", HERE / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == (facts, prompts, prefs)


def test_main_writes_the_three_files_byte_for_byte(make_data, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(make_data, "HERE", tmp_path)  # write beside a copy, not over the committed files
    make_data.main()
    for name in ("facts.jsonl", "prompts.jsonl", "preferences.jsonl"):
        assert (tmp_path / name).read_bytes() == (HERE / name).read_bytes(), name
    n_facts = len(make_data.FACTS)
    n_prefs = len((tmp_path / "preferences.jsonl").read_text(encoding="utf-8").splitlines())
    assert capsys.readouterr().out == f"{n_facts} facts, {n_facts} prompts, {n_prefs} preference pairs\n"


def test_read_facts_skips_comments_and_blank_lines_and_splits_keywords(make_data, tmp_path):
    table = tmp_path / "questions.tsv"
    table.write_text("# a comment\tstill a comment\n\nWhat is 2+2?\tFour\tfour|4\tFive\n"
                     "Which river is longest?\tThe Nile\tnile\tThe Amazon\n", encoding="utf-8")
    assert make_data.read_facts(table) == [("What is 2+2?", "Four", ["four", "4"], "Five"),
                                           ("Which river is longest?", "The Nile", ["nile"], "The Amazon")]
    committed = make_data.read_facts()
    assert committed == make_data.FACTS and len(committed) >= 120
    assert all(q and a and kw and all(kw) and w for q, a, kw, w in committed)


def test_a_malformed_line_names_the_file_and_the_line(make_data, tmp_path):
    table = tmp_path / "questions.tsv"
    table.write_text("# header\nWhat is 2+2?\tFour\tfour|4\tFive\nWhat is 3+3?\tSix six\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"questions\.tsv:3: expected 4 tab-separated fields .* got 2"):
        make_data.read_facts(table)


@pytest.mark.parametrize(("answer", "inside"), [
    ("The Nile", "the Nile"), ("A whale", "a whale"), ("Paris", "Paris"), ("The", "The"),
    ("Mount Everest", "Mount Everest"),
])
def test_mid_lowers_only_a_leading_article(make_data, answer, inside):
    assert make_data._mid(answer) == inside


@pytest.mark.parametrize(("wrong", "keywords"), [
    ("The Amazon", ["amazon"]), ("A dolphin", ["dolphin"]), ("Mars", ["mars"]), ("New York", ["new york"]),
])
def test_wrong_keywords_are_the_wrong_answer_lowercased_without_its_article(make_data, wrong, keywords):
    assert make_data.wrong_keywords(wrong) == keywords


def test_concise_padded_and_rambling_answers(make_data):
    rng = random.Random(3)
    for _ in range(50):
        short = make_data.concise(rng, "The Nile")
        assert short in {"The Nile.", "The answer is the Nile.", "It is the Nile."}
        long = make_data.padded(rng, "The Nile")
        assert "Nile" in long and len(long.split()) > len(short.split()) + 10
        assert any(long.startswith(o) for o in make_data.OPENERS)
        assert any(long.endswith(c) for c in make_data.CLOSERS)
    wrong_count = 0
    for _ in range(200):
        text, is_wrong = make_data.rambling(rng, "The Nile", "The Amazon")
        # The final sentence states the answer it landed on: the wrong one exactly when is_wrong.
        assert ("the Amazon" in text) == is_wrong and ("the Nile" in text) == (not is_wrong)
        assert any(text.startswith(o) for o in make_data.RAMBLE_OPEN)
        wrong_count += is_wrong
    assert 60 <= wrong_count <= 140  # "about half of them land on the wrong answer"


def test_build_is_seeded_and_holds_out_every_tenth_fact(make_data):
    facts, prompts, prefs = make_data.build(seed=7)
    assert make_data.build(seed=7) == (facts, prompts, prefs)
    other_facts, other_prompts, other_prefs = make_data.build(seed=8)
    # The facts and prompts come from the table; only the answers and the pairs drawn depend on the seed.
    assert (other_facts, other_prompts) == (facts, prompts) and other_prefs != prefs
    assert [f["split"] for f in facts] == ["test" if i % 10 == 9 else "train" for i in range(len(facts))]
    assert [p["split"] for p in prompts] == [f["split"] for f in facts]
    assert all(p["prompt"] == make_data.PROMPT_PREFIX + q for p, (q, *_rest) in zip(prompts, make_data.FACTS,
                                                                                      strict=True))
    assert {f["answer"] for f in facts} == {a + "." for _q, a, _k, _w in make_data.FACTS}
    for row in prefs:
        assert len(row["chosen"].split()) > len(row["rejected"].split())
        assert len(row["chosen"]) > len(row["rejected"])
