"""The reference policy's answers to a PPO run's prompts, sampled after the run, as the run samples them.

Marking a sample hacked records "the reference policy's answer ≻ this one". A PPO
run keeps the reference answer only every `sample_every`-th step, so the inspector's
`h` and `tuilab data mark-hacked` sample the missing ones here: from the run's base
model with its adapters off (the frozen reference policy PPO's KL penalty measures
against), at the run's temperature and token cap. No SQLite and no Textual here:
callers read the prompts and store the answers; this module imports torch only
when it samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tuilab.config import SamplingConfig
from tuilab.modeling.host import ModelHost, Progress

# What PPOConfig defaults to, for a run config written before a field existed.
DEFAULT_MAX_NEW_TOKENS = 48
DEFAULT_TEMPERATURE = 0.9


def base_model(config: Mapping[str, Any]) -> str:
    """The base model a run's config names ('' when it names none)."""
    return str(config.get("base_model") or "").strip()


def reference_sampling(config: Mapping[str, Any], *, seed: int | None = None, batch_size: int = 8) -> SamplingConfig:
    """The run's own sampling: its temperature and `max_new_tokens`, no top-p/top-k (PPO uses neither)."""
    return SamplingConfig(max_new_tokens=int(config.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
                          temperature=float(config.get("temperature", DEFAULT_TEMPERATURE)), top_p=1.0, top_k=0,
                          seed=seed, batch_size=batch_size)


def hosts(host: ModelHost | None, name: str, *, four_bit: bool = False) -> bool:
    """Whether `host` holds model `name` (the same folder on disk, by name or path), loaded the same way.

    Called on the UI thread, so it looks only on disk: a hub id matches only itself.
    """
    if host is None or bool(host.four_bit) != bool(four_bit):
        return False
    return host.model_name == name or _local_folder(host.model_name, host.models_dir) == _local_folder(
        name, host.models_dir)


def _local_folder(name: str, models_dir: Path) -> str:
    """The model folder `name` loads from when it is on disk (a few stat calls: never the hub), else `name`."""
    text = str(name).strip()
    try:
        for candidate in (Path(models_dir) / text, Path(text).expanduser()):
            if text and (candidate / "config.json").is_file():
                return str(candidate.resolve())
    except OSError:
        pass
    return text


def host_for(config: Mapping[str, Any], models_dir: Path, shared: ModelHost | None = None) -> ModelHost:
    """`shared` when it already hosts the run's base model (one copy in memory), else a new host for it."""
    name = base_model(config)
    if not name:
        raise ValueError("the run's config names no base_model")
    four_bit = bool(config.get("four_bit", False))
    if hosts(shared, name, four_bit=four_bit):
        return shared  # type: ignore[return-value]
    return ModelHost(models_dir, name, four_bit=four_bit)


def sample_references(
    host: ModelHost,
    prompts: Sequence[list[dict[str, str]] | str],
    config: Mapping[str, Any],
    *,
    seed: int | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[str]:
    """The reference policy's answer to each prompt (chat messages), in order, batched.

    Holds `host.lock` throughout (the host may be shared with the labeling queue's
    worker), loads the model on first use, and decodes with the adapters off.
    `stop()` returning True ends decoding at the next token and raises `InterruptedError`.
    """
    from tuilab.modeling.generation import generate

    sampling = reference_sampling(config, seed=seed, batch_size=batch_size)
    on_step = (lambda _rows, _tokens: bool(stop())) if stop is not None else None
    with host.lock, host.adapter("", progress) as lm, host.cpu_threads():
        if progress:
            progress(f"sampling {len(prompts)} reference answer{'s' if len(prompts) != 1 else ''} "
                     f"from {host.name} (adapters off)")
        answers = generate(lm.model, lm.tokenizer, list(prompts), sampling, on_step=on_step)
    if len(answers) != len(prompts) or (stop is not None and stop()):
        raise InterruptedError("stopped before every reference answer was sampled")
    return [a.text for a in answers]
