"""The base model the labeling screens sample from: loaded once, lazily, in a worker, adapters on it.

`ModelHost` keeps one `LoadedModel` for the whole session (the settings panel
switching sources reuses it), loads PEFT policy adapters found under `models/`
by path and switches them on the one base, and serialises every use through
`lock` so no two threads are ever inside one forward pass. `find_adapters`
lists the adapters a labeling source can generate with.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuilab.config import DEFAULT_MODEL

# progress(text) for a phase; progress(text, step, total) while decoding.
Progress = Callable[..., None]


@dataclass(frozen=True)
class AdapterInfo:
    """A PEFT adapter folder found under models/ (relative path as shown and stored)."""

    path: Path
    name: str  # relative to models/
    task_type: str
    base_model: str


def find_adapters(models_dir: Path, *, causal_only: bool = True) -> list[AdapterInfo]:
    """Every folder under `models_dir` holding an `adapter_config.json` that can generate.

    Reward adapters cannot generate, so they are left out unless `causal_only` is False:
    task type SEQ_CLS / TOKEN_CLS, or the lab's reward layout (a `head.safetensors`
    beside the adapter, a `reward.json` above it). Half-written checkpoints (`*.tmp`)
    are skipped.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    found = []
    for cfg in sorted(models_dir.rglob("adapter_config.json")):
        try:
            data = json.loads(cfg.read_text())
        except (OSError, ValueError):
            continue
        task = str(data.get("task_type") or "CAUSAL_LM")
        folder = cfg.parent
        if any(part.endswith(".tmp") for part in folder.relative_to(models_dir).parts):
            continue
        reward = (folder / "head.safetensors").exists() or (folder.parent / "reward.json").exists()
        if causal_only and (task not in ("CAUSAL_LM", "None") or reward):
            continue
        found.append(
            AdapterInfo(
                path=folder,
                name=str(folder.relative_to(models_dir)),
                task_type=task,
                base_model=str(data.get("base_model_name_or_path") or ""),
            )
        )
    return found


# ------------------------------------------------------------------ the real model


class ModelHost:
    """One base model, loaded lazily in whichever worker asks first, with adapters on it.

    Every use goes through `lock`: never two threads inside one forward pass. Adapters
    are loaded once by path and switched with PEFT (`set_adapter`, `disable_adapter`).
    """

    def __init__(
        self,
        models_dir: Path,
        model: str = DEFAULT_MODEL,
        *,
        four_bit: bool = False,
        threads: int | None = None,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.model_name = model
        self.four_bit = four_bit
        # CPU threads for generation: all cores but one, so the UI thread always has a core.
        # On an oversubscribed machine, two torch threads on two busy cores decoded 12× slower
        # than one (measured here: 0.5 vs 6.2 tok/s).
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self.lock = threading.RLock()
        self._loaded: Any = None
        self._adapters: dict[str, str] = {}  # resolved adapter path -> PEFT adapter name

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    @property
    def name(self) -> str:
        """The loaded model's folder name (what generations record), else the name asked for."""
        return self._loaded.name if self._loaded is not None else Path(self.model_name).name

    def loaded(self, progress: Progress | None = None) -> Any:
        """The `LoadedModel`; loads it on first call (call with `lock` held)."""
        if self._loaded is None:
            from tuilab.modeling.loading import load_model
            from tuilab.modeling.registry import find_model

            say = progress or (lambda _text: None)
            path = find_model(self.model_name, self.models_dir, progress=say)
            say(f"loading {Path(path).name}{' (4-bit)' if self.four_bit else ''}")
            self._loaded = load_model(path, four_bit=self.four_bit)
        return self._loaded

    def _adapter_name(self, adapter: str, progress: Progress | None) -> str:
        path = Path(adapter)
        if not path.is_absolute():
            path = self.models_dir / path
        key = str(path.resolve())  # one adapter, however it is named (relative to models/ or absolute)
        if key in self._adapters:
            return self._adapters[key]
        if not (path / "adapter_config.json").exists():
            raise FileNotFoundError(f"no PEFT adapter at {path} (adapter_config.json missing)")
        if progress:
            progress(f"loading adapter {adapter}")
        lm = self.loaded(progress)
        name = f"cand{len(self._adapters)}"
        from peft import PeftModel

        if isinstance(lm.model, PeftModel):
            lm.model.load_adapter(str(path), adapter_name=name)
        else:
            lm.model = PeftModel.from_pretrained(lm.model, str(path), adapter_name=name)
            lm.model.eval()
        self._adapters[key] = name
        return name

    @contextmanager
    def adapter(self, adapter: str, progress: Progress | None = None) -> Iterator[Any]:
        """Yield the LoadedModel with `adapter` active ('' = the bare base model)."""
        lm = self.loaded(progress)
        if adapter:
            name = self._adapter_name(adapter, progress)
            lm.model.set_adapter(name)
            yield lm
            return
        disable = getattr(lm.model, "disable_adapter", None)
        ctx = disable() if self._adapters and callable(disable) else nullcontext()
        with ctx:
            yield lm

    @contextmanager
    def cpu_threads(self) -> Iterator[None]:
        """Decode with `threads` torch threads in this thread, then restore the previous count."""
        import torch

        before = torch.get_num_threads()
        if before == self.threads:
            yield
            return
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def close(self) -> None:
        """Drop the model (the next use reloads it)."""
        with self.lock:
            self._loaded = None
            self._adapters.clear()
