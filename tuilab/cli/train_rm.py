"""`tuilab train rm`."""

from __future__ import annotations

import argparse


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser("rm", help="(not yet implemented)")
    parser.set_defaults(func=lambda args: parser.print_help())
