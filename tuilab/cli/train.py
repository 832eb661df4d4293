"""`tuilab train rm|ppo …`: the same jobs the UI runs, headless, with a rich progress bar."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from tuilab.cli import train_dpo, train_ppo, train_rm

    parser = sub.add_parser("train", help="train a reward model or run PPO, headless")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    train_rm.register(kinds)
    train_ppo.register(kinds)
    train_dpo.register(kinds)
