"""What `tuilab train rm` and `tuilab train ppo` share: building a config from flags, strict JSON."""

from __future__ import annotations

import argparse
import math
from typing import Any

from tuilab.config import DEFAULT_MODEL


def build_config(cls: type, args: argparse.Namespace):
    """Defaults → `--config` → `--set`, then the global `--model` / `--4bit` and `--name`.

    A global `--model` applies unless `--set base_model=…` named one explicitly.
    """
    from tuilab.cli import CLIError
    from tuilab.config import ConfigError, load_config

    try:
        cfg = load_config(cls, args.config, args.sets)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    explicit_base = any(s.split("=", 1)[0].strip() == "base_model" for s in args.sets)
    model = getattr(args, "model", DEFAULT_MODEL)
    if model and model != DEFAULT_MODEL and not explicit_base:
        cfg.base_model = model
    if getattr(args, "four_bit", False):
        cfg.four_bit = True
    if args.name:
        cfg.name = args.name
    return cfg


def json_safe(value: Any) -> Any:
    """JSON without NaN/Infinity (strict parsers reject them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
