"""Candidate sources: the fake (deterministic, no torch) and the real one on a tiny model, streaming its first pair."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.labeling.fake_source import FakeCandidateSource
from tuilab.labeling.candidates import (
    CandidateSource,
    ModelCandidateSource,
    SourceSpec,
    source_pairs,
)
from tuilab.modeling.host import ModelHost, find_adapters
from tuilab.records import Prompt

PROMPT = Prompt(id=1, messages=[{"role": "user", "content": "What is the capital of France?"}],
                text="What is the capital of France?")


def test_fake_is_deterministic_and_b_is_longer():
    a1, b1 = FakeCandidateSource().pair(PROMPT)
    a2, b2 = FakeCandidateSource().pair(PROMPT)
    assert (a1, b1) == (a2, b2)
    assert b1.n_tokens > a1.n_tokens
    assert isinstance(FakeCandidateSource(), CandidateSource)


def test_fake_fails_on_request():
    source = FakeCandidateSource(fail="no GPU", fail_after=1)
    source.pair(PROMPT)
    with pytest.raises(RuntimeError, match="no GPU"):
        source.pair(PROMPT)


def test_spec_check_names_the_field():
    SourceSpec().check()
    with pytest.raises(ValueError, match="temperature_b"):
        SourceSpec(temperature_b=-1).check()
    with pytest.raises(ValueError, match="needs a policy adapter"):
        SourceSpec(mode="ab").check()
    with pytest.raises(ValueError, match="mode"):
        SourceSpec(mode="three").check()
    assert SourceSpec(mode="ab", adapter_b="runs/x/policy").describe("base") == "base vs x/policy"


def test_ui_modules_do_not_import_torch():
    code = (
        "import sys, tuilab.tui.app, tuilab.tui.screens.label, tuilab.tui.screens.data, "
        "tuilab.labeling.candidates, tuilab.labeling.queue, tuilab.labeling.decisions\n"
        "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_model_source_samples_both_sides_in_one_batch(tiny_model_dir, tmp_path):
    host = ModelHost(tmp_path, str(tiny_model_dir))
    said, steps = [], []

    def progress(text, step=None, total=None):
        said.append(text)
        if step is not None:
            steps.append((step, total))

    source = ModelCandidateSource(host, SourceSpec(max_new_tokens=6, seed=0))
    source.progress = progress
    pairs = source_pairs(source, [PROMPT, PROMPT])
    assert len(pairs) == 2
    for a, b in pairs:
        assert a.params["side"] == "A" and b.params["side"] == "B"
        assert 0 <= a.n_tokens <= 6 and a.model == tiny_model_dir.name and a.adapter == ""
    assert any(s.startswith("loading") for s in said)
    assert sum(s == "generating 4 × ≤6 tokens" for s in said) >= 1  # one batched call for 2 pairs
    assert steps and all(1 <= step <= total == 6 for step, total in steps)  # decoding progress


def test_model_source_a_vs_adapter(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    from tuilab.modeling.loading import load_model

    lm = load_model(tiny_model_dir)
    peft_model = get_peft_model(lm.model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"],
                                                      task_type="CAUSAL_LM"))
    adapter_dir = tmp_path / "runs" / "ppo-1" / "policy"
    peft_model.save_pretrained(adapter_dir)
    assert [a.name for a in find_adapters(tmp_path)] == ["runs/ppo-1/policy"]

    host = ModelHost(tmp_path, str(tiny_model_dir))
    spec = SourceSpec(mode="ab", adapter_b="runs/ppo-1/policy", max_new_tokens=4, seed=1,
                      temperature_a=0.7, temperature_b=1.0)
    a, b = ModelCandidateSource(host, spec).pair(PROMPT)
    assert (a.adapter, b.adapter) == ("", "runs/ppo-1/policy")
    assert (a.params["temperature"], b.params["temperature"]) == (0.7, 1.0)
    # A second source on the same host reuses the loaded model and adapter.
    loaded = host._loaded
    ModelCandidateSource(host, spec).pair(PROMPT)
    assert host._loaded is loaded


def test_missing_model_says_how_to_get_one(tmp_path):
    host = ModelHost(tmp_path, "no-such-model")
    source = ModelCandidateSource(host, SourceSpec(max_new_tokens=2))
    with pytest.raises(LookupError, match="tuilab models"):
        source.pair(PROMPT)


def test_missing_adapter_is_a_clear_error(tiny_model_dir, tmp_path):
    host = ModelHost(tmp_path, str(tiny_model_dir))
    source = ModelCandidateSource(host, SourceSpec(mode="ab", adapter_b="runs/gone", max_new_tokens=2))
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        source.pair(PROMPT)


def test_model_source_stops_at_the_next_token_when_asked(tiny_model_dir, tmp_path):
    from tuilab.labeling.candidates import GenerationStopped

    host = ModelHost(tmp_path, str(tiny_model_dir))
    source = ModelCandidateSource(host, SourceSpec(max_new_tokens=400, seed=0))
    steps = []
    source.progress = lambda text, step=None, total=None: steps.append(step)
    source.stop_requested = lambda: len(steps) >= 2  # after the load and the first progress report
    with pytest.raises(GenerationStopped):
        source.pair(PROMPT)


def test_fake_gate_gives_way_to_stop():
    import threading

    from tuilab.labeling.candidates import GenerationStopped

    source = FakeCandidateSource(gate=threading.Event())
    source.stop_requested = lambda: True
    with pytest.raises(GenerationStopped):
        source.pair(PROMPT)


# ------------------------------------------------------------------ the first pair streams while it is generated

PROMPTS = [Prompt(id=i, messages=[{"role": "user", "content": f"Say something about the sea {i}."}],
                  text=f"Say something about the sea {i}.") for i in (1, 2)]


def test_preview_follows_the_first_pair_in_both_modes(tiny_model_dir, tmp_path):
    host = ModelHost(tmp_path, str(tiny_model_dir))
    for spec in (SourceSpec(max_new_tokens=12, seed=0),
                 SourceSpec(max_new_tokens=12, seed=0, temperature_a=0.7, temperature_b=1.2)):
        seen: list[tuple[str, str]] = []
        source = ModelCandidateSource(host, spec)
        source.preview = lambda a, b, seen=seen: seen.append((a, b))
        (a, b), _ = source_pairs(source, PROMPTS)
        assert seen, "no preview while generating"
        for pa, pb in seen:
            assert a.text.startswith(pa) and b.text.startswith(pb)
        assert seen[-1] == (a.text.rstrip("\ufffd"), b.text.rstrip("\ufffd"))
        # Without a preview nothing is collected and the texts are the same (same seed).
        quiet = ModelCandidateSource(host, spec)
        assert [(x.text, y.text) for x, y in source_pairs(quiet, PROMPTS)][0] == (a.text, b.text)
