"""Bare `tuilab`: make sure the base model is there, then open the lab.

The first start imports the default model (about a minute, printed on the
terminal) before the UI takes the screen; later starts find it and go
straight to the UI. Torch is not imported here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuilab.cli import CLIError, paths_from
from tuilab.config import DEFAULT_MODEL


def prepare_model(args: argparse.Namespace) -> Path:
    """The folder of `--model`: the default is imported on first use, any other must resolve."""
    from tuilab.modeling.importing import ImportFailed
    from tuilab.modeling.registry import ModelNotFound, ensure_default_model, resolve_model

    paths = paths_from(args)
    model = getattr(args, "model", None) or DEFAULT_MODEL
    if model == DEFAULT_MODEL:
        target = paths.models / DEFAULT_MODEL
        if not (target / "config.json").is_file():
            print(f"tuilab: first start: importing the default model into {target} (once, about a minute)",
                  file=sys.stderr, flush=True)

        def say(message: str) -> None:
            print(f"  {message}", file=sys.stderr, flush=True)

        try:
            return ensure_default_model(paths.models, progress=say)
        except ImportFailed as exc:
            raise CLIError(str(exc)) from None
    try:
        return resolve_model(model, paths.models)
    except ModelNotFound as exc:
        raise CLIError(str(exc)) from None


def launch(args: argparse.Namespace) -> int:
    model_path = prepare_model(args)
    from tuilab.tui.app import run_app

    return run_app(paths_from(args), model=str(model_path), four_bit=bool(getattr(args, "four_bit", False)))
