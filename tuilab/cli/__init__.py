"""The `tuilab` command. Bare `tuilab` opens the lab; its verbs run the same jobs headless.

Each verb group lives in its own module (`models`, `data`, `train`) with a
`register(subparsers)` function; torch is imported only inside verbs that need it.
"""

from __future__ import annotations

import argparse
import sys

from tuilab.config import DEFAULT_MODEL, LabPaths


class CLIError(Exception):
    """A user-facing failure: printed as one line on stderr, exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    from tuilab.cli import data, models, train

    parser = argparse.ArgumentParser(prog="tuilab", description="A terminal RLHF lab.")
    parser.add_argument("--home", help="lab folder holding models/ and db/ (default: $TUILAB_HOME or .)")
    parser.add_argument("--db", help="database file (default: HOME/db/lab.db)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="base model name in models/, a folder, or a hub id")
    parser.add_argument("--4bit", dest="four_bit", action="store_true", help="load the base model in nf4 4-bit")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for module in (models, data, train):
        module.register(sub)
    return parser


def paths_from(args: argparse.Namespace) -> LabPaths:
    return LabPaths.resolve(args.home, args.db)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.verb is None:
            from tuilab.cli.launch import launch

            return launch(args)
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"tuilab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
