"""Gold audits end to end on a tiny real model: checkpoints → blind pairs in the queue → win-rate curve → export."""

from __future__ import annotations

import json
import threading

import pytest

from tests.labeling.fake_source import FakeCandidateSource
from tests.tui.tuihelp import make_lab, wait_for_thread
from tuilab.cli import main
from tuilab.labeling.audits import (
    AuditSettings,
    best_checkpoint,
    export_adapter,
    peak_message,
    queue_audits,
    win_rate_curve,
)
from tuilab.labeling.decisions import record_decision
from tuilab.labeling.queue import PairFeeder
from tuilab.labeling.repeats import RepeatPolicy
from tuilab.modeling.host import ModelHost
from tuilab.store import runs
from tuilab.store.audits import audit_verdicts, pending_audit_pairs
from tuilab.store.db import open_db
from tuilab.store.prompts import add_prompts

RUN = "ppo-audit"


@pytest.fixture(scope="module")
def checkpoints(tiny_model_dir, tmp_path_factory):
    """Two PPO-style checkpoints (PEFT adapter under policy/), random LoRA weights so they differ."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("ckpts")
    out = {}
    for step, seed in ((5, 1), (10, 2)):
        import torch

        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        peft = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
                              adapter_name="policy")
        folder = root / f"step-{step:06d}"
        peft.save_pretrained(str(folder))
        out[step] = folder
    return out


@pytest.fixture
def lab(tmp_path, tiny_model_dir, checkpoints, monkeypatch):
    paths = make_lab(tmp_path)
    db = open_db(paths.db)
    add_prompts(db, ["Held-out question one?", "Held-out question two?"], source="test", split="test")
    runs.create_run(db, "ppo", {"base_model": str(tiny_model_dir), "max_new_tokens": 6, "temperature": 0.9},
                    run_id=RUN)
    for step, folder in checkpoints.items():
        runs.add_checkpoint(db, RUN, step, str(folder))
    runs.write_metrics(db, RUN, [(5, "objective/scores", 0.2), (5, "objective/kl", 0.04),
                                 (10, "objective/scores", 0.9), (10, "objective/kl", 0.25)])
    db.conn.close()
    monkeypatch.setenv("TUILAB_HOME", str(paths.home))
    return paths


def test_audits_queue_blind_pairs_that_the_label_queue_serves_first(lab, tiny_model_dir):
    db = open_db(lab.db)
    try:
        host = ModelHost(lab.models, str(tiny_model_dir))
        assert queue_audits(db, host, RUN, AuditSettings(pairs=2)) == 4
        assert queue_audits(db, host, RUN, AuditSettings(pairs=2)) == 0  # every checkpoint audited
        pending = pending_audit_pairs(db)
        assert sorted((p.step, p.prompt_id) for p in pending) == [(5, 11), (5, 12), (10, 11), (10, 12)]
        split = {r[0] for r in db.execute("SELECT p.split FROM generations g JOIN prompts p ON p.id = g.prompt_id"
                                          " WHERE g.origin = 'audit'")}
        assert split == {"test"}
    finally:
        db.conn.close()
    feeder = PairFeeder(lab.db, FakeCandidateSource(), capacity=6, seed=0, repeats=RepeatPolicy(0.0))
    thread = threading.Thread(target=feeder.run, daemon=True)
    thread.start()
    wait_for_thread(lambda: feeder.ready >= 6, timeout=30)
    feeder.stop()
    thread.join(5)
    served = [feeder.take() for _ in range(6)]
    audits = [p for p in served if p.source.startswith("audit pair")]
    assert len(audits) == 4 and served[:4] == audits  # before fresh pairs
    assert {p.source for p in audits} == {f"audit pair · {RUN} step 5", f"audit pair · {RUN} step 10"}
    # Candidate A is the policy (its adapter is the checkpoint's); where it is shown is a coin flip.
    assert all(p.a.adapter.endswith("policy") and p.b.adapter == "" for p in audits)


def test_win_rate_curve_peak_and_export(lab, tiny_model_dir, tmp_path, capsys):
    db = open_db(lab.db)
    try:
        queue_audits(db, ModelHost(lab.models, str(tiny_model_dir)), RUN, AuditSettings(pairs=2))
        for pair in pending_audit_pairs(db):
            feeder_pair = _shown(db, pair, swapped=pair.prompt_id % 2 == 0)
            policy_left = feeder_pair.left_id == pair.policy_id
            wants_policy = pair.step == 5  # the policy wins at step 5, loses at step 10
            record_decision(db, feeder_pair, "left" if policy_left == wants_policy else "right")
        assert sorted(audit_verdicts(db, RUN)) == [(5, "policy")] * 2 + [(10, "reference")] * 2
        points = win_rate_curve(db, RUN)
        assert [(p.step, p.wins, p.losses) for p in points] == [(5, 2, 0), (10, 0, 2)]
        assert points[0].win_rate.estimate == 1.0 and points[0].win_rate.low < 1.0
        assert points[1].proxy == 0.9 and points[1].sqrt_kl == pytest.approx(0.5)
        assert "peaks at step 5" in peak_message(points) and "turned down" in peak_message(points)
        step, folder = best_checkpoint(db, RUN)
        assert step == 5 and folder.name == "policy"
    finally:
        db.conn.close()
    out = tmp_path / "best-adapter"
    assert main(["label", "winrate", RUN, "--export", str(out)]) == 0
    text = capsys.readouterr().out
    assert "keep step 5" in text and "Exported the step-5 adapter" in text
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(out))  # loadable
    with pytest.raises(FileExistsError):
        export_adapter(folder, out)
    assert main(["label", "winrate", RUN, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["best"]["step"] == 5 and data["pending"] == 0


def test_runs_best_exports_the_checkpoint_the_audits_name(lab, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "kept"
    assert main(["runs", "best", RUN, str(out)]) == 1  # nothing decided yet
    assert "label them first" in capsys.readouterr().err and not out.exists()
    db = open_db(lab.db)
    try:
        queue_audits(db, ModelHost(lab.models, str(tiny_model_dir)), RUN, AuditSettings(pairs=1))
        for pair in pending_audit_pairs(db):  # the policy loses at step 5 and wins at step 10
            shown = _shown(db, pair, swapped=False)
            record_decision(db, shown, "left" if pair.step == 10 else "right")
    finally:
        db.conn.close()
    assert main(["runs", "best", RUN, str(out)]) == 0
    assert f"step-10 adapter of {RUN}" in capsys.readouterr().out
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 2
    assert main(["runs", "best", RUN, str(out)]) == 1  # never over an existing folder
    assert "exists" in capsys.readouterr().err


def _shown(db, pair, *, swapped: bool):
    from tuilab.labeling.queue import ReadyPair
    from tuilab.labeling.repeats import candidate_of
    from tuilab.store.generations import get_generation
    from tuilab.store.prompts import get_prompt

    policy, reference = get_generation(db, pair.policy_id), get_generation(db, pair.reference_id)
    left, right = (reference, policy) if swapped else (policy, reference)
    return ReadyPair(get_prompt(db, pair.prompt_id), candidate_of(left), candidate_of(right), left.id, right.id,
                     swapped)


def test_cli_errors_are_one_line(lab, capsys):
    assert main(["label", "winrate", "no-such-run"]) == 1
    assert "no run 'no-such-run'" in capsys.readouterr().err
    assert main(["label", "audit", RUN, "--pairs", "0"]) == 1
    assert "at least 1" in capsys.readouterr().err
    assert main(["label", "winrate", RUN, "--export", "x"]) == 1
    assert "label them first" in capsys.readouterr().err


def test_label_audit_takes_a_self_auditing_runs_own_pairs_per_checkpoint(lab, capsys):
    """Without --pairs, `label audit` fills the steps a run with audit_pairs = K missed with K pairs (the same
    held-out prompts its own audits used), not the default 4."""
    db = open_db(lab.db)
    db.execute("UPDATE runs SET config = json_set(config, '$.audit_pairs', 1) WHERE id = ?", [RUN])
    db.conn.commit()
    db.conn.close()
    assert main(["label", "audit", RUN]) == 0
    assert "Queued 2 audit pairs" in capsys.readouterr().out  # 1 pair at each of the 2 checkpoints
