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
    from tuilab.modeling.model_import import ImportFailed
    from tuilab.modeling.registry import ModelNotFound, find_model

    def say(message: str) -> None:
        print(f"tuilab: {message}", file=sys.stderr, flush=True)

    try:
        return find_model(getattr(args, "model", None) or DEFAULT_MODEL, paths_from(args).models, progress=say)
    except (ImportFailed, ModelNotFound) as exc:
        raise CLIError(str(exc)) from None


def launch(args: argparse.Namespace) -> int:
    # The database first (is it a tuilab lab, of a known schema, passing quick_check):
    # a bad --db is refused before a model import or the UI takes the terminal.
    from tuilab.store.integrity import LabDBError, inspect_db

    try:
        inspect_db(paths_from(args).db, quick_check=True)
    except LabDBError as exc:
        raise CLIError(str(exc)) from None
    model_path = prepare_model(args)
    from tuilab.tui.app import run_app

    return run_app(paths_from(args), model=str(model_path), four_bit=bool(getattr(args, "four_bit", False)),
                   repeat_share=getattr(args, "repeat_share", 0.05))
