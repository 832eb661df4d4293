"""jobs/export.py: real runs on the tiny model, loaded back with plain transformers.

What the `tuilab export` verb prints and refuses is tested in tests/cli/test_export.py.
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch

from tests.jobs.rm_data import insert_pairs
from tuilab.config import DPOConfig, LabPaths, RewardConfig
from tuilab.jobs.dpo_job import dpo_job
from tuilab.jobs.export import export_preferences, export_run
from tuilab.jobs.rm_job import reward_job
from tuilab.jobs.runner import run_job
from tuilab.modeling.chat import scored_ids
from tuilab.modeling.export import portable_base, resolve_base
from tuilab.modeling.reward_model import RewardModel
from tuilab.store.db import open_db
from tuilab.store.pairs import preference_pairs

# fp32 both sides; measured differences are ~1e-6 (float summation order of the merged LoRA weights).
TOL = 1e-4

PROMPTS = ["Say something about item 3.", "Say something about item 7.", "Tell me about the sea."]
ANSWERS = ["sea wind good", "sea wind bad", "long short answer question yes no maybe good"]


@pytest.fixture
def lab(tmp_path):
    torch.set_num_threads(1)
    paths = LabPaths.resolve(tmp_path / "lab")
    db = open_db(paths.db)
    insert_pairs(db, 32)
    yield paths, db
    db.conn.close()


@pytest.fixture
def rm_run(lab, tiny_model_dir):
    paths, db = lab
    cfg = RewardConfig(base_model=str(tiny_model_dir), learning_rate=3e-3, epochs=2, batch_size=8, min_pairs=8,
                       warmup_ratio=0.0, name="rule")
    outcome = run_job(reward_job(cfg), paths=paths)
    assert outcome.status == "completed", outcome.error
    return outcome


def test_a_finished_run_folder_carries_a_model_card(rm_run):
    card = (rm_run.output_dir / "README.md").read_text()  # PEFT left its empty template here; the runner replaced it
    assert "Provide a quick summary" not in card and "# rule — reward model trained in tuilab" in card
    assert "## Data" in card and "| `eval/accuracy` |" in card and "## Reward-hacking flags seen" in card


def test_reward_export_scores_like_tuilab_in_plain_transformers(lab, rm_run, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    paths, db = lab
    out = tmp_path / "exported-rm"
    result = export_run(db, paths, rm_run.run_id, out)
    assert result.folders == [out]

    rm = RewardModel.load(rm_run.output_dir)
    stats = rm.norm["reward-0"]
    assert abs(stats["std"] - 1) > 1e-3 and abs(stats["mean"]) > 1e-3  # folding is really exercised
    messages = [[{"role": "user", "content": p}] for p in PROMPTS]
    lab_norm = torch.tensor(rm.score(messages, ANSWERS, normalize=True).mean)
    lab_raw = torch.tensor(rm.score(messages, ANSWERS).mean)

    tok = AutoTokenizer.from_pretrained(out)
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) + a + tok.eos_token
             for m, a in zip(messages, ANSWERS, strict=True)]
    batch = tok(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    assert tok.padding_side == "right" and batch["attention_mask"].sum() < batch["attention_mask"].numel()
    for row, m, a in zip(batch["input_ids"], messages, ANSWERS, strict=True):  # the recipe = what tuilab scores
        ids = scored_ids(rm.tokenizer, m, a)
        assert row[: len(ids)].tolist() == ids
    with torch.no_grad():
        logits = plain(**batch).logits[:, 0]
    offset = plain.config.tuilab_reward_offset
    assert torch.allclose(logits + offset, lab_norm, atol=TOL), (logits + offset, lab_norm)
    info = plain.config.tuilab_reward
    assert torch.allclose((logits + offset) * info["std"] + info["mean"], lab_raw, atol=TOL * 10)

    card = (out / "README.md").read_text()
    assert "eval/accuracy" in card and "tuilab_reward_offset" in card and "Provide a quick summary" not in card
    run_card = (rm_run.output_dir / "README.md").read_text()  # PEFT left its empty template here
    assert "Provide a quick summary" not in run_card and "## Reward-hacking flags seen" in run_card


def test_policy_export_is_the_merged_dpo_policy(lab, tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tuilab.modeling.loading import load_model

    paths, db = lab
    cfg = DPOConfig(base_model=str(tiny_model_dir), batch_size=8, epochs=1, learning_rate=5e-3, min_pairs=8,
                    sample_every=0, sample_prompts=2, max_new_tokens=4, checkpoint_every=0)
    outcome = run_job(dpo_job(cfg), paths=paths)
    assert outcome.status == "completed", outcome.error
    out = tmp_path / "exported-policy"
    export_run(db, paths, outcome.run_id, out)

    base = load_model(tiny_model_dir, device="cpu")
    lab_policy = PeftModel.from_pretrained(base.model, str(outcome.output_dir / "policy")).eval()
    plain = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.tensor([scored_ids(base.tokenizer, [{"role": "user", "content": PROMPTS[0]}], ANSWERS[0])])
    with torch.no_grad():
        want, got = lab_policy(input_ids=ids).logits, plain(input_ids=ids).logits
        with lab_policy.disable_adapter():
            before = lab_policy(input_ids=ids).logits
    assert (want - before).abs().max() > 1e-3  # training moved the policy: the merge is visible
    assert (got - want).abs().max() < TOL
    assert "DPO policy" in (out / "README.md").read_text()


def test_preferences_folder_is_a_dataset(lab, tmp_path):
    paths, db = lab
    out = tmp_path / "prefs"
    result = export_preferences(db, out)
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(rows) == result.rows["train"] == len(preference_pairs(db, split="train"))
    assert {tuple(sorted(r)) for r in rows} == {("chosen", "margin", "prompt", "rejected")}
    assert rows[0]["chosen"][0]["role"] == "assistant" and rows[0]["prompt"][0]["role"] == "user"
    assert "split: train" in (out / "README.md").read_text()
    if importlib.util.find_spec("datasets") is not None:  # not a lab dependency; checked where installed
        from datasets import load_dataset

        ds = load_dataset(str(out))
        assert ds["train"].num_rows == len(rows)


def test_base_reference_survives_moving_the_lab(tmp_path):
    home = tmp_path / "lab"
    base = home / "models" / "tiny"
    run_dir = home / "models" / "runs" / "rm-1"
    base.mkdir(parents=True)
    run_dir.mkdir(parents=True)
    assert portable_base(base, run_dir) == "models/tiny"
    assert portable_base(tmp_path / "elsewhere", run_dir) == str(tmp_path / "elsewhere")
    moved = tmp_path / "moved"
    shutil.move(home, moved)
    assert resolve_base("models/tiny", moved / "models" / "runs" / "rm-1" / "checkpoints" / "step-4") == (
        moved / "models" / "tiny")
    with pytest.raises(FileNotFoundError, match="models/gone"):
        resolve_base("models/gone", moved / "models" / "runs" / "rm-1")
