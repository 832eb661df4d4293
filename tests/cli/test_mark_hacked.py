"""`tuilab data mark-hacked RUN --where …`: the inspector's `h` for every matching sample, headless."""

from __future__ import annotations

import json

import pytest

from tuilab.cli import main
from tuilab.records import Sample
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.store.pairs import preference_pairs
from tuilab.store.prompts import add_prompts, list_prompts
from tuilab.store.samples import hacked_count, list_samples, write_samples


@pytest.fixture
def lab(lab_home):
    db = open_db(lab_home / "db" / "lab.db")
    add_prompts(db, ["Answer briefly: What is the capital of France?", "Answer briefly: Name a prime."],
                split="train")
    prompts = list_prompts(db)
    runs.create_run(db, "ppo", {}, run_id="ppo-a")
    runs.create_run(db, "rm", {}, run_id="rm-a")
    for step in (1, 2):
        write_samples(db, "ppo-a", step, [
            Sample(prompt=p.text, response=f"answer {step}-{i} " + "and so on " * (10 * i), score=0.5 * i,
                   prompt_id=p.id, ref_response=f"short {i}" if step == 1 else None, gold=1.0 - 2 * i,
                   kl=0.1, length=4 + 30 * i, eos=i == 0, flags=["long", "no_eos"] if i else [])
            for i, p in enumerate(prompts)
        ])
    yield db
    db.conn.close()


def _out(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_marks_by_flag_and_condition_with_the_inspector_write(lab, capsys):
    before = len(preference_pairs(lab))
    skip = ["--references", "skip"]
    assert main(["data", "mark-hacked", "ppo-a", "--where", "long and gold < 0", "--dry-run", *skip]) == 0
    assert _out(capsys) == {"run_id": "ppo-a", "samples": 4, "matched": 2, "marked": 0, "references_sampled": 0,
                            "references_needed": 1, "already_hacked": 0, "skipped_no_reference": 1, "dry_run": True}
    assert main(["data", "mark-hacked", "ppo-a", "--where", "long and gold < 0", *skip]) == 0
    got = _out(capsys)
    # step 2 has no reference answer to prefer: with --references skip, counted and skipped
    assert (got["matched"], got["marked"], got["skipped_no_reference"]) == (2, 1, 1)
    assert hacked_count(lab, "ppo-a") == 1
    pairs = preference_pairs(lab)
    assert len(pairs) == before + 1
    new = pairs[-1]
    assert new.chosen == "short 1" and new.rejected.startswith("answer 1-1")
    assert [s.hacked for s in list_samples(lab, "ppo-a", order_by="id", descending=False)] == [False, True, False, False]
    # again: nothing new
    assert main(["data", "mark-hacked", "ppo-a", "--where", "length>=30", *skip]) == 0
    assert _out(capsys)["already_hacked"] == 1 and len(preference_pairs(lab)) == before + 1


def test_bad_where_and_wrong_run_are_one_sentence(lab, capsys):
    assert main(["data", "mark-hacked", "ppo-a", "--where", "longish"]) == 1
    assert "cannot read 'longish'" in capsys.readouterr().err
    assert main(["data", "mark-hacked", "rm-a", "--where", "long"]) == 1
    assert "rm run" in capsys.readouterr().err
    assert main(["data", "mark-hacked", "nope", "--where", "long"]) == 1
    assert "no run 'nope'" in capsys.readouterr().err


def test_a_match_without_a_reference_gets_one_sampled_from_the_base(lab, lab_home, capsys):
    """The run keeps reference answers only every sample_every steps; the others are sampled now, from the run's
    base model (adapters off), so every match becomes a pair."""
    from tests.tiny import save_tiny_model

    save_tiny_model(lab_home / "models" / "tiny")
    lab.execute("UPDATE runs SET config = ? WHERE id = 'ppo-a'",
                [json.dumps({"base_model": "tiny", "max_new_tokens": 6, "temperature": 1.0})])
    lab.conn.commit()
    before = len(preference_pairs(lab))
    assert main(["data", "mark-hacked", "ppo-a", "--where", "long", "--dry-run"]) == 0
    dry = _out(capsys)
    assert (dry["marked"], dry["references_needed"], dry["skipped_no_reference"]) == (0, 1, 0)
    assert main(["data", "mark-hacked", "ppo-a", "--where", "long"]) == 0
    got = _out(capsys)
    assert (got["matched"], got["marked"], got["references_sampled"], got["skipped_no_reference"]) == (2, 2, 1, 0)
    step2 = [s for s in list_samples(lab, "ppo-a", order_by="id", descending=False) if s.step == 2 and s.hacked]
    assert len(step2) == 1 and step2[0].ref_response  # stored on the sample, like the run's own
    pairs = preference_pairs(lab)
    assert len(pairs) == before + 2
    assert pairs[-1].chosen == step2[0].ref_response and pairs[-1].rejected == step2[0].response


def test_sampling_references_needs_the_runs_base_model(lab, capsys):
    assert main(["data", "mark-hacked", "ppo-a", "--where", "long"]) == 1  # ppo-a's config names no base model
    err = capsys.readouterr().err
    assert "does not name its base model" in err and "--references skip" in err
    assert hacked_count(lab, "ppo-a") == 0  # nothing was marked
