"""The labeling screens' model host: loaded lazily once, adapters switched on one base, one user at a time."""

from __future__ import annotations

import json
import os
import threading

import pytest
import torch

from tuilab.modeling.host import AdapterInfo, ModelHost, find_adapters
from tuilab.modeling.registry import ModelNotFound


def test_find_adapters_keeps_causal_lm_only(tmp_path):
    for rel, task in (("runs/ppo-1/policy", "CAUSAL_LM"), ("runs/rm-1/reward-0", "SEQ_CLS"), ("mine", None)):
        folder = tmp_path / rel
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text(json.dumps({"task_type": task}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_config.json").write_text("{not json")
    # The lab's reward layout: a CAUSAL_LM adapter with a scalar head beside it.
    member = tmp_path / "runs" / "rm-2" / "reward-0"
    member.mkdir(parents=True)
    (member / "adapter_config.json").write_text(json.dumps({"task_type": "CAUSAL_LM"}))
    (member / "head.safetensors").write_bytes(b"")
    (tmp_path / "runs" / "rm-2" / "reward.json").write_text("{}")
    half = tmp_path / "runs" / "ppo-1" / "checkpoints" / "step-5.tmp" / "policy"
    half.mkdir(parents=True)
    (half / "adapter_config.json").write_text(json.dumps({"task_type": "CAUSAL_LM"}))
    assert [a.name for a in find_adapters(tmp_path)] == ["mine", "runs/ppo-1/policy"]
    assert len(find_adapters(tmp_path, causal_only=False)) == 4
    assert find_adapters(tmp_path / "missing") == []


def test_an_adapter_found_says_where_it_is_and_which_base_it_was_trained_on(tmp_path):
    folder = tmp_path / "runs" / "dpo-3" / "policy"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"task_type": "CAUSAL_LM",
                                                            "base_model_name_or_path": "models/tiny"}))
    assert find_adapters(tmp_path) == [AdapterInfo(path=folder, name="runs/dpo-3/policy", task_type="CAUSAL_LM",
                                                   base_model="models/tiny")]


# ------------------------------------------------------------------ the real model (tiny)


def _save_adapter(base_dir, folder, seed: int) -> None:
    """A LoRA policy adapter with non-zero B: applying it changes the logits."""
    from peft import LoraConfig, get_peft_model

    from tuilab.modeling.loading import load_model

    peft = get_peft_model(load_model(base_dir).model,
                          LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    peft.save_pretrained(folder)


@pytest.fixture(scope="module")
def models_dir(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("host-models")
    _save_adapter(tiny_model_dir, root / "runs" / "ppo-1" / "policy", seed=1)
    _save_adapter(tiny_model_dir, root / "runs" / "ppo-2" / "policy", seed=2)
    return root


def _logits(lm) -> torch.Tensor:
    ids = torch.tensor([lm.tokenizer.encode("sea wind good answer")])
    with torch.no_grad():
        return lm.model(input_ids=ids).logits[0, -1]


def test_nothing_loads_until_asked_then_once(tiny_model_dir, tmp_path):
    host = ModelHost(tmp_path, str(tiny_model_dir), threads=1)
    assert not host.is_loaded and host.name == tiny_model_dir.name
    said = []
    with host.lock:
        first = host.loaded(said.append)
        again = host.loaded(said.append)
    assert host.is_loaded and first is again and first.name == tiny_model_dir.name
    assert said == [f"loading {tiny_model_dir.name}"]  # the second call loads nothing
    host.close()
    assert not host.is_loaded
    assert host.loaded() is not first  # the next use reloads


def test_a_model_that_is_not_there_says_how_to_get_one(tmp_path):
    host = ModelHost(tmp_path, "no-such-model", threads=1)
    with pytest.raises(ModelNotFound, match="no model 'no-such-model'.*tuilab models"):
        host.loaded()
    assert not host.is_loaded


def test_adapters_switch_on_one_base_and_empty_means_the_bare_base(tiny_model_dir, models_dir):
    from tuilab.modeling.loading import load_model

    plain = _logits(load_model(tiny_model_dir))
    host = ModelHost(models_dir, str(tiny_model_dir), threads=1)
    with host.adapter("") as lm:
        bare = _logits(lm)
    assert torch.allclose(bare, plain, atol=1e-6)
    said = []
    with host.adapter("runs/ppo-1/policy", said.append) as lm:
        one = _logits(lm)
    with host.adapter(str(models_dir / "runs" / "ppo-2" / "policy")) as lm:  # an absolute path works too
        two = _logits(lm)
    assert said == ["loading adapter runs/ppo-1/policy"]
    assert (one - plain).abs().max() > 1e-3 and (two - one).abs().max() > 1e-3
    # Both adapters live on the one base; switching back gives the same logits without reloading.
    assert set(host.loaded().model.peft_config) == {"cand0", "cand1"}
    said.clear()
    with host.adapter("runs/ppo-1/policy", said.append) as lm:
        assert torch.allclose(_logits(lm), one, atol=1e-6)
    assert said == []
    with host.adapter("") as lm:  # adapters off again for the base
        assert torch.allclose(_logits(lm), plain, atol=1e-6)
    with host.adapter("runs/ppo-2/policy", said.append) as lm:  # the same folder by its name under models/
        assert torch.allclose(_logits(lm), two, atol=1e-6)
    assert said == []  # ... is the adapter already loaded, not a second copy
    assert set(host.loaded().model.peft_config) == {"cand0", "cand1"}


def test_a_missing_adapter_names_the_folder(tiny_model_dir, tmp_path):
    host = ModelHost(tmp_path, str(tiny_model_dir), threads=1)
    with pytest.raises(FileNotFoundError, match=r"no PEFT adapter at .*runs/gone \(adapter_config.json missing\)"), \
            host.adapter("runs/gone"):
        pass


def test_decoding_threads_are_set_inside_and_restored_after(tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        host = ModelHost(tmp_path, "unused", threads=1)
        with host.cpu_threads():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), host.cpu_threads():  # restored after an error too
            raise RuntimeError("decoding failed")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_by_default_one_core_is_left_to_the_ui():
    assert ModelHost(".", "unused").threads == max(1, (os.cpu_count() or 2) - 1)
    assert ModelHost(".", "unused", threads=3).threads == 3


def test_the_lock_keeps_other_threads_out_and_lets_its_holder_back_in(tmp_path):
    host = ModelHost(tmp_path, "unused", threads=1)
    got = []
    with host.lock, host.lock:  # re-entrant: a use that calls another use does not deadlock
        thread = threading.Thread(target=lambda: got.append(host.lock.acquire(timeout=0.05)))
        thread.start()
        thread.join()
    assert got == [False]
