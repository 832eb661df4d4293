"""`tuilab label auto | agreement` through the real CLI on a real lab database."""

from __future__ import annotations

import json

import pytest

from tests.labeling.pairs_lab import decided_pairs_lab
from tuilab.cli import main
from tuilab.config import LabPaths
from tuilab.labeling.consistency import labeler_agreement
from tuilab.store.db import open_db


@pytest.fixture
def lab(tmp_path, monkeypatch):
    paths, truth = decided_pairs_lab(tmp_path, 300)
    monkeypatch.setenv("TUILAB_HOME", str(paths.home))
    return paths, truth


def _auto_decisions(paths: LabPaths, annotator_prefix: str) -> dict[int, str]:
    db = open_db(paths.db)
    try:
        return {
            cid: (left if d == "left" else right if d == "right" else d)
            for cid, left, right, d in db.execute(
                "SELECT id, left_id, right_id, decision FROM comparisons WHERE annotator LIKE ? ORDER BY id",
                [annotator_prefix + "%"])
        }
    finally:
        db.conn.close()


def test_rule_annotator_agrees_with_the_hidden_rule(lab, capsys):
    paths, truth = lab
    assert main(["label", "auto", "--annotator", "rule:tests.labeling.rules:brevity"]) == 0
    assert "Decided 300 times on 300 pairs" in capsys.readouterr().out
    winners = list(_auto_decisions(paths, "rule:").values())
    rule_winners = [shorter for _, shorter in truth]
    assert sum(w == r for w, r in zip(winners, rule_winners, strict=True)) / 300 >= 0.95
    db = open_db(paths.db)
    try:
        agr = labeler_agreement(db, "human", "rule:tests.labeling.rules:brevity")
        # Sides were randomised afresh: the annotator saw about half the pairs the other way round.
        swapped = db.execute("SELECT avg(swapped) FROM comparisons WHERE origin = 'auto'").fetchone()[0]
    finally:
        db.conn.close()
    assert agr.n == 300 and agr.percent.estimate >= 0.95 and agr.kappa > 0.9
    assert 0.35 < swapped < 0.65
    # Run again: nothing left to decide for this annotator (pairs it decided are not re-decided).
    assert main(["label", "auto", "--annotator", "rule:tests.labeling.rules:brevity"]) == 0
    assert "No pairs to decide" in capsys.readouterr().out


@pytest.mark.parametrize("p", [0.2, 0.35])
def test_noise_p_agrees_on_about_one_minus_p(lab, capsys, p):
    paths, truth = lab
    assert main(["label", "auto", "--annotator", "compare:tests.labeling.rules:shorter_of",
                 "--noise", str(p), "--seed", "3"]) == 0
    winners = list(_auto_decisions(paths, "compare:").values())
    share = sum(w == r for w, r in zip(winners, [s for _, s in truth], strict=True)) / 300
    # Binomial(300, 1 − p): 3 standard deviations is under 0.09.
    assert abs(share - (1 - p)) < 0.09


def test_several_simulated_annotators_and_agreement_table(lab, capsys):
    paths, _ = lab
    assert main(["label", "auto", "--annotator", "rule:tests.labeling.rules:brevity",
                 "--noise", "0,0.25", "--each", "--limit", "120"]) == 0
    out = capsys.readouterr().out
    assert "Decided 240 times on 120 pairs" in out
    assert main(["label", "agreement", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = set(data["labelers"])
    sim1 = "rule:tests.labeling.rules:brevity~sim1(noise 0)"
    sim2 = "rule:tests.labeling.rules:brevity~sim2(noise 0.25)"
    assert {"human", sim1, sim2} <= names
    by_pair = {(r["a"], r["b"]): r for r in data["pairwise"]}
    assert by_pair[("human", sim1)]["percent"]["estimate"] == 1.0
    noisy = by_pair[("human", sim2)]
    assert noisy["n"] == 120 and 0.6 < noisy["percent"]["estimate"] < 0.9
    assert noisy["percent"]["low"] < noisy["percent"]["estimate"] < noisy["percent"]["high"]
    assert main(["label", "agreement"]) == 0
    text = capsys.readouterr().out
    assert "human vs " in text and "κ" in text


def test_bad_annotator_specs_are_one_line_errors(lab, capsys):
    for spec, words in [
        ("oracle", "expected one of"),
        ("rule:no.such.module:f", "cannot import"),
        ("compare:tests.labeling.rules:missing", "has no attribute"),
    ]:
        assert main(["label", "auto", "--annotator", spec]) == 1
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1
    assert main(["label", "auto", "--annotator", "compare:tests.labeling.rules:says_nonsense"]) == 1
    assert "returned 'perhaps'" in capsys.readouterr().err
    assert main(["label", "auto", "--annotator", "gold", "--noise", "1.5"]) == 1
    assert "--noise" in capsys.readouterr().err


def test_a_missing_lab_is_not_created_by_a_failed_command(tmp_path, monkeypatch, capsys):
    home = tmp_path / "new-lab"
    monkeypatch.setenv("TUILAB_HOME", str(home))
    for argv, words in [
        (["label", "winrate", "ppo-nope"], "no run 'ppo-nope'"),
        (["label", "audit", "ppo-nope"], "no run 'ppo-nope'"),
        (["label", "agreement"], "no lab database"),
        (["label", "auto", "--annotator", "gold"], "no lab database"),
    ]:
        assert main(argv) == 1
        assert words in capsys.readouterr().err
    assert not (home / "db" / "lab.db").exists()
