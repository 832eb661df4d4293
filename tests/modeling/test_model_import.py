"""Importing GGUF files and HF folders into models/: verified, atomic, idempotent."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from tuilab.modeling.model_import import (
    MARKER,
    ImportFailed,
    check_name,
    default_name,
    import_model,
    read_marker,
    safetensors_params,
)


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir, tmp_path_factory):
    from tests.modeling.gguf_tiny import write_tiny_gguf

    return write_tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "Tiny-Llama.Q8.gguf")


def _logits(folder, ids):
    from tuilab.modeling.loading import load_model

    with torch.no_grad():
        return load_model(folder).model(torch.tensor([ids])).logits


def test_hf_folder_import(tiny_model_dir, tmp_path):
    messages = []
    models = tmp_path / "models"
    path = import_model(tiny_model_dir, models, progress=messages.append)
    assert path == models / "tiny-llama"
    for f in ("config.json", "model.safetensors", "tokenizer.json", MARKER):
        assert (path / f).is_file()
    marker = read_marker(path)
    assert marker["format"] == "hf" and marker["source"] == str(tiny_model_dir.resolve())
    assert marker["params"] == safetensors_params(tiny_model_dir) > 0
    assert len(marker["sha256"]) == 64 and marker["smoke_answer"] is not None
    assert any("smoke test" in m for m in messages) and messages[-1].startswith("imported models/tiny-llama")
    assert torch.equal(_logits(path, [1, 5, 9]), _logits(tiny_model_dir, [1, 5, 9]))
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_import_is_idempotent(tiny_model_dir, tmp_path):
    models = tmp_path / "models"
    first = import_model(tiny_model_dir, models, "mine")
    stamp = (first / MARKER).stat().st_mtime_ns
    messages = []
    again = import_model(tiny_model_dir, models, "mine", progress=messages.append)
    assert again == first
    assert (first / MARKER).stat().st_mtime_ns == stamp
    assert "already imported" in messages[-1]


def test_a_taken_name_is_refused(tiny_model_dir, tiny64_dir, tmp_path):
    models = tmp_path / "models"
    import_model(tiny_model_dir, models, "mine")
    with pytest.raises(ImportFailed, match="already holds a different model"):
        import_model(tiny64_dir, models, "mine")
    (models / "hand-made").mkdir()
    (models / "hand-made" / "config.json").write_text("{}")
    with pytest.raises(ImportFailed, match="not imported by tuilab"):
        import_model(tiny_model_dir, models, "hand-made")


def test_gguf_import_matches_the_original(tiny_model_dir, tiny_gguf, tmp_path):
    """A GGUF written the llama.cpp way (permuted q/k) converts back to the same model."""
    from tuilab.modeling.loading import load_model

    models = tmp_path / "models"
    path = import_model(tiny_gguf, models, dtype="float32")
    assert path.name == "tiny-llama.q8" == default_name(tiny_gguf)
    marker = read_marker(path)
    assert marker["format"] == "gguf" and marker["sha256"] == _sha(tiny_gguf)
    original = load_model(tiny_model_dir)
    imported = load_model(path)
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    ids = original.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)
    ids2 = imported.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert ids["input_ids"] == ids2["input_ids"]  # tokenizer and chat template survive
    x = torch.tensor([ids["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(original.model(x).logits, imported.model(x).logits, atol=1e-5)
    # The SmolLM2 trap is fixed on disk too: pad is not EOS.
    assert imported.tokenizer.pad_token == "<|endoftext|>"
    saved = json.loads((path / "tokenizer_config.json").read_text())
    assert saved["pad_token"] == "<|endoftext|>"


def test_gguf_import_stores_bf16_by_default(tiny_gguf, tmp_path):
    from safetensors import safe_open

    path = import_model(tiny_gguf, tmp_path / "models", "tiny-bf16", smoke=False)
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        names = list(f.keys())  # noqa: SIM118 - safe_open is not iterable
        assert {f.get_tensor(k).dtype for k in names} == {torch.bfloat16}
    from tuilab.modeling.loading import load_model

    assert load_model(path).model.dtype == torch.float32  # fp32 on CPU regardless


def test_gguf_checksum_is_enforced(tiny_gguf, tmp_path):
    models = tmp_path / "models"
    with pytest.raises(ImportFailed, match="does not match the pinned"):
        import_model(tiny_gguf, models, expected_sha256="0" * 64)
    assert not models.exists() or not any(models.iterdir())


def test_failed_import_leaves_nothing(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    (broken / "tokenizer.json").write_text("{}")
    models = tmp_path / "models"
    with pytest.raises(ImportFailed):
        import_model(broken, models, "broken")
    assert list(models.iterdir()) == []


def test_stale_temp_folders_are_cleaned(tiny_model_dir, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    stale = models / ".tiny-llama.importing-999999999"  # no such process: a killed import
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    import_model(tiny_model_dir, models)
    assert not stale.exists()


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("missing", "no such file"),
        ("notes.txt", "expected a .gguf file"),
        ("empty-dir", "no config.json"),
        ("no-weights", "has no weights"),
        ("no-tokenizer", "has no tokenizer"),
    ],
)
def test_bad_sources_get_specific_messages(tmp_path, tiny_model_dir, src, message):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty-dir").mkdir()
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(tiny_model_dir / "config.json", no_weights)
    no_tok = tmp_path / "no-tokenizer"
    no_tok.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / f, no_tok)
    with pytest.raises(ImportFailed, match=message):
        import_model(tmp_path / src, tmp_path / "models")


@pytest.mark.parametrize("bad", ["", "runs", ".hidden", "a/b", "with space"])
def test_invalid_names(bad):
    with pytest.raises(ImportFailed, match="invalid model name"):
        check_name(bad)


def test_imported_files_are_readable(tiny_model_dir, tmp_path):
    path = import_model(tiny_model_dir, tmp_path / "models")
    umask = os.umask(0)
    os.umask(umask)
    assert all((f.stat().st_mode & 0o444) == (0o444 & ~umask) for f in path.iterdir())


def _sha(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
