"""Leaving the lab: a reward member or a policy adapter as a plain Hugging Face folder; base references."""

from __future__ import annotations

import json

import pytest
import torch

from tests.modeling.reward_run import save_reward_run
from tuilab.modeling.chat import scored_ids
from tuilab.modeling.export import (
    DTYPES,
    describe_reward_export,
    export_policy,
    export_reward_member,
    lab_home_of,
    portable_base,
    resolve_base,
    reward_members,
)

NORM = {"reward-0": {"mean": 0.4, "std": 2.0}, "reward-1": {"mean": -1.5, "std": 0.5}}
MESSAGES = [[{"role": "user", "content": "Tell me about the sea."}], [{"role": "user", "content": "question 2"}]]
ANSWERS = ["sea wind good", "yes no maybe"]


# ------------------------------------------------------------------ base references


def test_the_lab_home_is_the_folder_above_models(tmp_path):
    run = tmp_path / "lab" / "models" / "runs" / "rm-1" / "checkpoints" / "step-4"
    assert lab_home_of(run) == tmp_path / "lab"
    assert lab_home_of(tmp_path / "elsewhere" / "rm-1") is None


def test_a_base_inside_the_lab_is_named_relative_to_it_else_absolute(tmp_path):
    home = tmp_path / "lab"
    run = home / "models" / "runs" / "dpo-2"
    (home / "models" / "tiny").mkdir(parents=True)
    run.mkdir(parents=True)
    assert portable_base(home / "models" / "tiny", run) == "models/tiny"
    assert portable_base(home / "models" / "runs" / ".." / "tiny", run) == "models/tiny"  # resolved first
    assert portable_base(tmp_path / "hf" / "tiny", run) == str(tmp_path / "hf" / "tiny")
    assert portable_base(home / "models" / "tiny", tmp_path / "loose-run") == str(home / "models" / "tiny")


def test_resolve_base_takes_absolute_paths_as_they_are_and_names_a_missing_base(tmp_path):
    assert resolve_base(tmp_path / "anywhere", tmp_path / "run") == tmp_path / "anywhere"
    home = tmp_path / "lab"
    (home / "models" / "tiny").mkdir(parents=True)
    run = home / "models" / "runs" / "rm-1"
    run.mkdir(parents=True)
    assert resolve_base("models/tiny", run) == home / "models" / "tiny"
    with pytest.raises(FileNotFoundError) as info:
        resolve_base("models/gone", run)
    assert str(info.value) == (f"{run}: its base model models/gone is not under this lab "
                               "(looked in every folder above the run)")


# ------------------------------------------------------------------ a reward member


@pytest.fixture(scope="module")
def rm_run(tiny_model_dir, tmp_path_factory):
    return save_reward_run(tmp_path_factory.mktemp("export") / "rm", tiny_model_dir, ("reward-0", "reward-1"),
                           norm=NORM, head_bias=0.7)


def test_an_exported_member_scores_the_labs_normalised_reward_in_plain_transformers(rm_run, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tuilab.modeling.reward_model import RewardModel

    out = tmp_path / "exported"
    e = export_reward_member(rm_run, "reward-1", out)
    assert (e.path, e.kind, e.member, e.mean, e.std) == (out, "reward", "reward-1", -1.5, 0.5)
    assert e.offset == pytest.approx((0.7 - (-1.5)) / 0.5)
    assert describe_reward_export(e) == {"member": "reward-1", "offset": e.offset, "mean": -1.5, "std": 0.5}
    assert not out.with_name("exported.partial").exists()

    rm = RewardModel.load(rm_run)
    ids = [scored_ids(rm.tokenizer, m, a) for m, a in zip(MESSAGES, ANSWERS, strict=True)]
    lab = rm.score_ids(ids, normalize=True)
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert plain.config.num_labels == 1
    assert plain.config.tuilab_reward["member"] == "reward-1" and plain.config.tuilab_reward["head_bias"] == pytest.approx(0.7)
    with torch.no_grad():
        got = torch.stack([plain(input_ids=torch.tensor([row])).logits[0, 0] for row in ids])
    assert torch.allclose(got + plain.config.tuilab_reward_offset, lab[1], atol=1e-4)
    assert not torch.allclose(lab[0], lab[1], atol=1e-2)  # the other member would not have matched
    raw = (got + plain.config.tuilab_reward_offset) * 0.5 - 1.5
    assert torch.allclose(raw, rm.score_ids(ids)[1], atol=1e-4)

    tok = AutoTokenizer.from_pretrained(out)
    assert tok.padding_side == "right" and tok.pad_token_id != tok.eos_token_id
    assert plain.config.pad_token_id == tok.pad_token_id


def test_an_export_overwrites_the_folder_and_keeps_the_dtype_asked_for(rm_run, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "exported"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier export")
    export_reward_member(rm_run, "reward-0", out, dtype="bfloat16")
    assert not (out / "stale.txt").exists()
    plain = AutoModelForSequenceClassification.from_pretrained(out, dtype="auto")
    assert {p.dtype for p in plain.parameters()} == {torch.bfloat16}


def test_a_member_the_run_does_not_have_is_refused_naming_the_ones_it_has(rm_run, tmp_path):
    assert reward_members(rm_run) == ["reward-0", "reward-1"]
    with pytest.raises(ValueError, match="no member 'reward-7'; it has reward-0, reward-1"):
        export_reward_member(rm_run, "reward-7", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_an_unknown_dtype_is_refused_naming_the_choices(rm_run, tmp_path):
    with pytest.raises(ValueError, match=f"dtype 'int8': choose from {', '.join(DTYPES)}"):
        export_reward_member(rm_run, "reward-0", tmp_path / "x", dtype="int8")
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ a policy


def _policy_run(base_dir, run):
    """A policy run folder as PPO leaves it: a trained-looking adapter and a manifest naming its base."""
    from peft import LoraConfig, get_peft_model

    from tuilab.modeling.loading import load_model

    peft = get_peft_model(load_model(base_dir).model,
                          LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(3))
    peft.save_pretrained(run / "trained-policy")
    (run / "ppo.json").write_text(json.dumps({"base_model": str(base_dir), "adapter": "trained-policy"}))
    return run


def test_a_policy_export_is_the_base_with_the_adapter_merged(tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tuilab.modeling.loading import load_model

    run = _policy_run(tiny_model_dir, tmp_path / "lab" / "models" / "runs" / "ppo-1")
    out = tmp_path / "policy-out"
    e = export_policy(run, "ppo.json", "policy", out)  # the manifest's adapter name wins over the default
    assert (e.path, e.kind) == (out, "policy")
    base = load_model(tiny_model_dir)
    ids = torch.tensor([scored_ids(base.tokenizer, MESSAGES[0], ANSWERS[0])])
    lab_policy = PeftModel.from_pretrained(base.model, str(run / "trained-policy")).eval()
    plain = AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        want, got = lab_policy(input_ids=ids).logits, plain(input_ids=ids).logits
        with lab_policy.disable_adapter():
            bare = lab_policy(input_ids=ids).logits
    assert (want - bare).abs().max() > 1e-3 and torch.allclose(got, want, atol=1e-4)


def test_an_exported_policy_pads_on_the_left_for_generation(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    run = _policy_run(tiny_model_dir, tmp_path / "run")
    export_policy(run, "ppo.json", "policy", tmp_path / "out")
    assert AutoTokenizer.from_pretrained(tmp_path / "out").padding_side == "left"
