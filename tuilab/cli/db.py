"""`tuilab db check | backup | init`: the lab database's health, a safe copy, and a deliberate start."""

from __future__ import annotations

import argparse

from tuilab.cli import CLIError, paths_from, verb_group


def register(sub: argparse._SubParsersAction) -> None:
    actions = verb_group(sub, "db", help="check, back up or initialise the lab database",
                         description="The lab database (HOME/db/lab.db or --db).")

    check = actions.add_parser(
        "check", help="is it a tuilab lab, of a known schema, and does SQLite's quick_check pass",
        description="Checks, writing nothing: the file is SQLite, a tuilab lab, of a schema this "
        "tuilab knows, with all its tables, and passes PRAGMA quick_check and foreign_key_check.")
    check.set_defaults(func=cmd_check)

    backup = actions.add_parser(
        "backup", help="copy the database with SQLite's online backup (safe while the lab runs)",
        description="Copy the lab database page by page with SQLite's online backup API: a consistent "
        "snapshot even while the UI or a job writes. The copy is checked with quick_check.")
    backup.add_argument("target", help="the new file")
    backup.add_argument("--force", action="store_true", help="replace TARGET if it exists")
    backup.set_defaults(func=cmd_backup)

    init = actions.add_parser(
        "init", help="create a lab database (or add tuilab's tables to another SQLite file with --force)")
    init.add_argument("--force", action="store_true",
                      help="add tuilab's tables to a SQLite file that holds another program's tables")
    init.set_defaults(func=cmd_init)


def cmd_check(args: argparse.Namespace) -> int:
    from tuilab.store.integrity import LabDBError, inspect_db, lab_summary

    path = paths_from(args).db
    try:
        state = inspect_db(path, quick_check=True)
    except LabDBError as exc:
        raise CLIError(str(exc)) from None
    if not state.exists or state.version == 0:
        raise CLIError(f"{path}: no lab database there yet; `tuilab db init` creates one")
    bad, counts = lab_summary(path)
    if bad:
        table, rowid, parent, _ = bad[0]
        raise CLIError(f"{path}: {len(bad)} rows point at missing rows (first: {table} row {rowid} → {parent}); "
                       "restore a backup")
    print(f"ok: {path} (schema {state.version}; quick_check ok; {counts['prompts']} prompts, "
          f"{counts['comparisons']} comparisons, {counts['runs']} runs)")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    import sqlite3
    from pathlib import Path

    from tuilab.store.integrity import LabDBError, backup_db, inspect_db
    from tuilab.store.output import UnsafeTarget, check_target

    source = paths_from(args).db
    target = Path(args.target)
    try:
        state = inspect_db(source)
    except LabDBError as exc:
        raise CLIError(str(exc)) from None
    if not state.exists or state.version == 0:
        raise CLIError(f"{source}: no lab database to back up")
    if target.exists() and not args.force:
        raise CLIError(f"{target} exists; pass --force to replace it, or name a new file")
    try:
        check_target(target, force=args.force, protect=(source,))
    except UnsafeTarget as exc:
        raise CLIError(str(exc)) from None
    if target.exists() and not target.is_file():
        raise CLIError(f"{target} is not a regular file; a backup is written as a new file")
    try:
        size = backup_db(source, target)
        inspect_db(target, quick_check=True)
    except (sqlite3.Error, OSError, LabDBError) as exc:
        raise CLIError(f"backup of {source} to {target} failed: {exc}") from None
    print(f"backed up {source} to {target} ({size:,} bytes, quick_check ok)")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from tuilab.store.db import open_db
    from tuilab.store.integrity import LabDBError, inspect_db

    path = paths_from(args).db
    try:
        state = inspect_db(path)
    except LabDBError as exc:
        if "another program's tables" not in str(exc) or not args.force:
            raise CLIError(f"{exc}" if args.force else str(exc)) from None
        state = inspect_db(path, allow_foreign=True)
    if state.version > 0:
        print(f"{path} is already a tuilab lab (schema {state.version}); nothing to do")
        return 0
    open_db(path, allow_foreign=args.force).conn.close()
    version = inspect_db(path).version
    print(f"initialised {path} as a tuilab lab (schema {version})")
    return 0
