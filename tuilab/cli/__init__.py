"""The `tuilab` command. Bare `tuilab` opens the lab; its verbs run the same jobs headless.

Each verb group lives in its own module (`models`, `data`, `train`, `runs`,
`db`) with a `register(subparsers)` function; torch is imported only inside
verbs that need it. Every failure ends here, in `main`: one line on stderr
naming the file, line, key or id, and a non-zero exit; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import traceback

from tuilab.config import DEFAULT_MODEL, LabPaths


class CLIError(Exception):
    """A user-facing failure: printed as one line on stderr, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too (usage stays in `--help`)."""

    def error(self, message: str):  # type: ignore[override]
        verb = self.prog.removeprefix("tuilab").strip()
        self.exit(2, f"tuilab: {f'{verb}: ' if verb else ''}{message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from tuilab.cli import data, db, export, label, models, runs, sweep, train

    parser = _Parser(prog="tuilab", description="A terminal RLHF lab.")
    parser.add_argument("--home", help="lab folder holding models/ and db/ (default: $TUILAB_HOME or .)")
    parser.add_argument("--db", help="database file (default: HOME/db/lab.db)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="base model name in models/, a folder, or a hub id")
    parser.add_argument("--4bit", dest="four_bit", action="store_true", help="load the base model in nf4 4-bit")
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    parser.add_argument("--repeat-share", type=repeat_share, default=0.05, metavar="P",
                        help="the lab UI's label queue: this share of pairs re-asks an older decision, sides "
                        "swapped and unmarked, to measure your self-agreement (default 0.05 = 5%%; 0 = none; "
                        "at most 0.5; `10%%` works too)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for module in (models, data, train, runs, db, export, label, sweep):
        module.register(sub)
    return parser


def verb_group(sub: argparse._SubParsersAction, name: str, *, help: str, description: str):
    """`tuilab NAME ACTION …`: the group's parser (bare `tuilab NAME` prints its help) → its actions."""
    parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(func=lambda args: parser.print_help())
    return parser.add_subparsers(dest=f"{name}_action", metavar="ACTION")


def repeat_share(text: str) -> float:
    """`0.05` or `5%` → 0.05, within what the label queue accepts (0 to 0.5)."""
    try:
        share = float(text[:-1]) / 100 if text.strip().endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share such as 0.05 or 5%, got {text!r}") from None
    if not 0.0 <= share <= 0.5:
        raise argparse.ArgumentTypeError(f"must be between 0 and 0.5 (0% and 50%), got {text!r}")
    return share


def paths_from(args: argparse.Namespace) -> LabPaths:
    return LabPaths.resolve(args.home, args.db)


def open_lab(args: argparse.Namespace, *, quick_check: bool = True):
    """The lab's database, after checking it is one and whole (nothing is written to a file that is not)."""
    from tuilab.store.integrity import LabDBError, inspect_db
    from tuilab.store.lab import open_lab_db

    paths = paths_from(args)
    try:
        inspect_db(paths.db, quick_check=quick_check)
        return open_lab_db(paths)
    except LabDBError as exc:
        raise CLIError(str(exc)) from None
    except (sqlite3.Error, RuntimeError, OSError) as exc:
        raise CLIError(f"cannot open the database {paths.db}: {exc}") from None


def check_lab(args: argparse.Namespace) -> None:
    """Refuse a `--db` that is not a tuilab lab before a job opens it."""
    from tuilab.store.integrity import LabDBError, inspect_db

    try:
        inspect_db(paths_from(args).db, quick_check=True)
    except LabDBError as exc:
        raise CLIError(str(exc)) from None


def describe(exc: BaseException, args: argparse.Namespace | None) -> str:
    """One line for an error nothing else caught: what failed, on which file."""
    if isinstance(exc, sqlite3.DatabaseError):
        where = paths_from(args).db if args is not None else "the database"
        return f"database {where}: {exc}; check it with `tuilab db check`"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.verb is None:
            from tuilab.cli.launch import launch

            return launch(args)
        return int(args.func(args) or 0)
    except CLIError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"tuilab: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place an unexpected error becomes a sentence
        if args.debug:
            traceback.print_exc()
            return 1
        print(f"tuilab: {describe(exc, args)} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
