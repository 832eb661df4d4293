"""The reference policy's answers sampled after a PPO run: the run's base model, adapters off, its sampling."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tuilab.config import SamplingConfig
from tuilab.labeling.references import (
    base_model,
    host_for,
    hosts,
    reference_sampling,
    sample_references,
)
from tuilab.modeling.host import ModelHost

PROMPTS = [[{"role": "user", "content": "Answer briefly: what is the capital of France?"}],
           [{"role": "user", "content": "Name a planet with rings."}],
           "What is 7 times 8?"]


@pytest.fixture
def models(tmp_path, tiny_model_dir):
    """A lab's models/ folder holding the tiny model as `tiny`."""
    root = tmp_path / "models"
    shutil.copytree(tiny_model_dir, root / "tiny")
    return root


def test_the_runs_own_sampling_and_base_model_come_from_its_config():
    cfg = {"base_model": " tiny ", "max_new_tokens": 7, "temperature": 0.5}
    assert base_model(cfg) == "tiny" and base_model({}) == "" and base_model({"base_model": None}) == ""
    assert reference_sampling(cfg, seed=3, batch_size=2) == SamplingConfig(
        max_new_tokens=7, temperature=0.5, top_p=1.0, top_k=0, seed=3, batch_size=2)
    # A config written before the fields existed: PPOConfig's defaults.
    assert (reference_sampling({}).max_new_tokens, reference_sampling({}).temperature) == (48, 0.9)


def test_answers_are_the_runs_sampling_of_the_base_model_in_order(models):
    from tuilab.modeling.generation import generate

    cfg = {"base_model": "tiny", "max_new_tokens": 5, "temperature": 0.7}
    host = host_for(cfg, models)
    said: list[str] = []
    texts = sample_references(host, PROMPTS, cfg, seed=11, batch_size=2, progress=lambda text, *_: said.append(text))
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert any("sampling 3 reference answers from tiny" in s for s in said)
    # Exactly what `generate` makes with the run's temperature and cap, batched the same way.
    with host.adapter("") as lm:
        expected = generate(lm.model, lm.tokenizer, PROMPTS, reference_sampling(cfg, seed=11, batch_size=2))
    assert texts == [r.text for r in expected]
    # …and not what another temperature makes.
    other = sample_references(host, PROMPTS, {**cfg, "temperature": 3.0}, seed=11, batch_size=2)
    assert other != texts


def test_the_policy_adapter_on_a_shared_host_is_off_while_sampling(models, tiny_model_dir):
    """The App's host may carry the run's policy adapter (the labeling queue samples with it): the reference
    is the base model alone."""
    from peft import LoraConfig, get_peft_model

    from tuilab.modeling.loading import load_model

    lm = load_model(tiny_model_dir)
    # init_lora_weights=False: a non-zero B, so the adapter changes the answers.
    peft = get_peft_model(lm.model, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                               task_type="CAUSAL_LM", init_lora_weights=False))
    peft.save_pretrained(models / "runs" / "ppo-1" / "policy")
    cfg = {"base_model": "tiny", "max_new_tokens": 8, "temperature": 1.0}

    shared = ModelHost(models, "tiny")
    with shared.adapter("runs/ppo-1/policy") as on:  # loaded and active, as after an A-vs-policy queue
        from tuilab.modeling.generation import generate

        with_adapter = [r.text for r in generate(on.model, on.tokenizer, PROMPTS, reference_sampling(cfg, seed=5))]
    assert host_for(cfg, models, shared) is shared
    off = sample_references(shared, PROMPTS, cfg, seed=5)
    fresh = sample_references(ModelHost(models, "tiny"), PROMPTS, cfg, seed=5)
    assert off == fresh
    assert with_adapter != fresh  # the adapter does change them: the test above could fail


def test_which_host_hosts_the_runs_base(models, tmp_path):
    shared = ModelHost(models, "tiny")
    assert hosts(shared, "tiny") and hosts(shared, str(models / "tiny"))  # a name and its folder: one model
    assert not hosts(shared, "tiny", four_bit=True)  # loaded another way: not the run's reference
    assert not hosts(shared, "gone") and not hosts(None, "tiny")
    other = host_for({"base_model": "gone"}, models, shared)
    assert other is not shared and other.model_name == "gone" and not other.is_loaded
    assert host_for({"base_model": "tiny", "four_bit": True}, models, shared).four_bit
    with pytest.raises(ValueError, match="no base_model"):
        host_for({}, models, shared)


def test_a_missing_base_model_or_a_stop_is_an_error_not_an_answer(models):
    with pytest.raises(LookupError, match="no model 'gone'"):
        sample_references(ModelHost(models, "gone"), PROMPTS, {"base_model": "gone"})
    host = ModelHost(models, "tiny")
    with pytest.raises(InterruptedError):
        sample_references(host, PROMPTS, {"base_model": "tiny", "max_new_tokens": 4}, stop=lambda: True)
    assert host.lock.acquire(blocking=False)  # released after the error
    host.lock.release()


def test_importing_it_loads_no_torch():
    code = ("import sys, tuilab.labeling.references\n"
            "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
