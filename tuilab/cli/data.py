"""`tuilab data …` verbs."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="(not yet implemented)")
    parser.set_defaults(func=lambda args: parser.print_help())
