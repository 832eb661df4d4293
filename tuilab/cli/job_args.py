"""What the train verbs (`tuilab train rm|ppo|dpo`, `tuilab sweep`) share.

Building a config from flags, checking it before a run exists, opening a run
to resume, and running a job under the progress bar with one way to report
how it ended: the final metrics as one strict JSON line on stdout, a cancel
or a failure as one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tuilab.cli.progress import Column, ProgressView
from tuilab.config import DEFAULT_MODEL


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, example: str) -> None:
    """`--config FILE.toml`, `--set KEY=VALUE` (repeatable; `example` shows two), `--name`, `--quiet`."""
    parser.add_argument("--config", metavar="FILE.toml", help=f"{cls.__name__} settings (see `tuilab/config.py`)")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help=f"override one setting, e.g. {example} (repeatable; wins over --config)",
    )
    parser.add_argument("--name", help="a name for the run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_config(cls: type, args: argparse.Namespace):
    """Defaults → `--config` → `--set`, then the global `--model` / `--4bit` and `--name`.

    A global `--model` applies unless `--set base_model=…` named one explicitly.
    """
    from tuilab.cli import CLIError
    from tuilab.config import ConfigError, apply_overrides, load_config, parse_sets

    if args.config:
        path = Path(args.config)
        if path.is_dir():
            raise CLIError(f"{path} is a directory, not a TOML config file")
        try:
            path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise CLIError(f"{path}: no such config file") from None
        except OSError as exc:
            raise CLIError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise CLIError(f"{path}: not UTF-8 text (byte {exc.start + 1}); save it as UTF-8") from None
    try:
        cfg = load_config(cls, args.config)
    except ConfigError as exc:
        text = str(exc)
        raise CLIError(text if text.startswith(str(args.config)) else f"{args.config}: {text}") from None
    try:
        apply_overrides(cfg, parse_sets(args.sets))
    except ConfigError as exc:
        text = str(exc)
        raise CLIError(text if text.startswith("--set") else f"--set {text}") from None
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


def validate(kind: str, cfg, args: argparse.Namespace) -> None:
    """Check the lab database and the whole config before a run row, a folder or a model exists."""
    from tuilab.cli import CLIError, check_lab, paths_from
    from tuilab.jobs.validate import InvalidConfig, validate_job
    from tuilab.store.db import open_db

    check_lab(args)
    paths = paths_from(args)
    # A lab that does not exist yet is validated against an empty one (and stays uncreated).
    db = open_db(paths.db if paths.db.exists() else ":memory:")
    try:
        validate_job(kind, cfg, db=db, paths=paths)
    except InvalidConfig as exc:
        where = f" (in {args.config})" if getattr(args, "config", None) else ""
        raise CLIError(f"{exc}{where}") from None
    finally:
        db.conn.close()


def resume_override(args: argparse.Namespace, key: str) -> int | None:
    """On --resume only `key` (the run's length) may change: the data order and the optimiser depend on the rest."""
    from tuilab.cli import CLIError
    from tuilab.config import ConfigError, parse_sets

    if args.config:
        raise CLIError("--resume continues a run with its own config; drop --config")
    try:
        sets = parse_sets(args.sets)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    other = sorted(set(sets) - {key})
    if other:
        raise CLIError(f"--resume can only change {key}, not {', '.join(other)}")
    if key not in sets:
        return None
    try:
        return int(sets[key])
    except ValueError:
        raise CLIError(f"{key}: expected int, got {sets[key]!r}") from None


def resume(args: argparse.Namespace, resume_fn: Callable[..., Any], **length: int | None):
    """The Job `resume_fn(db, args.resume, **length)` continuing a run; a refusal is one line."""
    from tuilab.cli import CLIError, open_lab, paths_from
    from tuilab.jobs.resume import JobRefused

    if not paths_from(args).db.exists():
        raise CLIError(f"no run {args.resume!r}: there is no lab database at {paths_from(args).db} yet")
    db = open_lab(args)
    try:
        return resume_fn(db, args.resume, **length)
    except JobRefused as exc:
        raise CLIError(str(exc)) from None
    finally:
        db.conn.close()


def run_with_progress(job, args: argparse.Namespace, *, title: str, columns: Sequence[Column], about: str,
                      what: str, resumable: bool, eta: bool = False) -> int:
    """Run `job` under the progress bar; exit status 0 (completed), 130 (cancelled) or a CLIError (failed).

    `about` describes the run on its first line, `what` names it in a failure;
    a `resumable` run's cancel line says how to continue it. Under a launcher
    only the main process shows the run (the others learn its id inside `run_job`).
    """
    from tuilab.cli import CLIError, paths_from
    from tuilab.jobs.resume import main_process
    from tuilab.jobs.runner import run_job

    paths = paths_from(args)
    main = main_process()
    with ProgressView(title, columns, quiet=args.quiet or not main, eta=eta) as view:
        if main:
            verb = "resuming" if getattr(args, "resume", None) else "run"
            view.console.print(f"{verb} {job.run_id}: {about}, output {paths.runs / job.run_id}", style="dim")
        outcome = run_job(job, paths=paths, forward=view)
    if outcome.status == "completed":
        metrics = dict(outcome.metrics)
        metrics.setdefault("run_id", outcome.run_id)
        print(json.dumps(json_safe(metrics)), flush=True)
        return 0
    if outcome.status == "cancelled":
        hint = f"; continue with `tuilab train {job.kind} --resume {outcome.run_id}`" if resumable else ""
        print(f"tuilab: run {outcome.run_id} cancelled at step {outcome.step or 0}{hint}", file=sys.stderr)
        return 130
    step = f" at step {outcome.step}" if outcome.step is not None else ""
    raise CLIError(f"{what} run {outcome.run_id} failed{step}: {outcome.error_summary}")
