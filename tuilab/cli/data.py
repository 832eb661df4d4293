"""`tuilab data …`: import prompts and preferences, export them, count what is stored."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

from tuilab.cli import CLIError, paths_from, verb_group
from tuilab.store.formats import EXPORT_FORMATS, FORMATS, SPLITS, FormatError
from tuilab.store.reading import MAX_FIELD_CHARS, check_source


def register(sub: argparse._SubParsersAction) -> None:
    actions = verb_group(sub, "data", help="import, export and count prompts and preferences",
                         description="Move prompts and preference data in and out of the lab database.")

    imp = actions.add_parser(
        "import",
        help="import prompts or preference pairs from a file",
        description=(
            "Import prompts (JSONL with prompt/messages, CSV with a prompt column, or text, one per line), "
            "TRL preference pairs, Anthropic HH transcripts, or a tuilab comparisons dump. "
            "The whole file is checked first: a bad line imports nothing."
        ),
    )
    imp.add_argument("file", help="the file to read")
    imp.add_argument(
        "--format",
        default="auto",
        choices=("auto", *FORMATS),
        help="the file's format (default: from the extension and the first record's keys)",
    )
    imp.add_argument(
        "--split",
        choices=SPLITS,
        help="put new prompts in this split (default: the file's, else ~10%% test)",
    )
    imp.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    imp.add_argument("--max-field-chars", type=int, default=MAX_FIELD_CHARS, metavar="N",
                     help=f"refuse a file with a text field longer than N characters (default {MAX_FIELD_CHARS:,})")
    imp.set_defaults(func=cmd_import)

    exp = actions.add_parser(
        "export",
        help="write preference pairs or comparisons to a JSONL file",
        description=(
            "trl: TRL conversational pairs (ties, both-bad and skips left out, edits expanded) — "
            "exactly what reward-model training uses; hh: Anthropic HH transcripts; "
            "comparisons: every field of every comparison (re-imports losslessly); prompts: every prompt."
        ),
    )
    exp.add_argument("file", help="the file to write (replaced atomically if it exists); - for stdout")
    exp.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    exp.add_argument("--force", action="store_true",
                     help="also write through a symlink, into a FIFO or device, or over a read-only file")
    exp.set_defaults(func=cmd_export)

    stats = actions.add_parser("stats", help="count prompts, responses, comparisons and pairs")
    stats.add_argument("--json", action="store_true", help="print the counts as JSON")
    stats.set_defaults(func=cmd_stats)
    __import__("tuilab.cli.mark_hacked", fromlist=["register"]).register(actions)  # `data mark-hacked`


def _open(args: argparse.Namespace):
    from tuilab.cli import open_lab

    return open_lab(args)


def cmd_import(args: argparse.Namespace) -> int:
    from tuilab.store.formats import iter_records, resolve_format
    from tuilab.store.importing import import_file

    path = Path(args.file)
    if args.max_field_chars < 1:
        raise CLIError(f"--max-field-chars must be at least 1, got {args.max_field_chars}")
    limit = args.max_field_chars
    try:
        check_source(path)
    except FormatError as exc:
        raise CLIError(str(exc)) from None
    try:  # the whole file, streamed, before the database is touched
        fmt = resolve_format(path, args.format, max_chars=limit)
        if sum(1 for _ in iter_records(path, fmt, max_chars=limit)) == 0:
            raise FormatError(path, None, "no records in the file")
    except FormatError as exc:
        raise CLIError(f"{exc} (nothing imported)") from None
    db = _open(args)
    try:
        report = import_file(db, path, fmt=fmt, split=args.split, dry_run=args.dry_run, max_chars=limit)
    except FormatError as exc:  # the file changed since it was checked
        raise CLIError(f"{exc} (nothing imported)") from None
    except (sqlite3.Error, ValueError) as exc:
        raise CLIError(f"{path}: import failed, nothing imported: {exc}") from None
    finally:
        db.conn.close()
    print(report.summary())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tuilab.store.exporting import ExportReport, export_file, export_rows
    from tuilab.store.formats import dumps_jsonl
    from tuilab.store.output import UnsafeTarget, check_target

    if args.file == "-":
        db = _open(args)
        try:
            rows, left_out = export_rows(db, args.format)
        finally:
            db.conn.close()
        sys.stdout.write(dumps_jsonl(rows))
        sys.stdout.flush()
        print(ExportReport("-", args.format, len(rows), left_out).summary(), file=sys.stderr)
        return 0
    try:  # before the database is opened: a refused target costs nothing
        check_target(args.file, force=args.force, protect=(paths_from(args).db,))
        db = _open(args)
        try:
            report = export_file(db, args.file, args.format, force=args.force)
        finally:
            db.conn.close()
    except UnsafeTarget as exc:
        raise CLIError(f"{exc} (nothing written)") from None
    except OSError as exc:
        raise CLIError(f"{args.file}: cannot write: {exc.strerror or exc} (nothing written)") from None
    print(report.summary())
    return 0


def _counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{k or '(none)'} {v}" for k, v in counts.items()) or "—"


def cmd_stats(args: argparse.Namespace) -> int:
    from tuilab.labeling.consistency import consistency, report_dict
    from tuilab.store.lab import data_stats

    db = _open(args)
    try:
        stats = data_stats(db)
        labelers = consistency(db)
    finally:
        db.conn.close()
    if args.json:
        print(json.dumps({**stats.to_dict(), "consistency": report_dict(labelers)}, indent=2))
        return 0
    groups = stats.near_duplicates
    if groups:
        shown = "; ".join(", ".join(map(str, ids)) for ids in groups[:5])
        dupes = f"{len(groups)} groups equal but for case/spacing (prompt ids {shown}{'; …' if len(groups) > 5 else ''})"
    else:
        dupes = "none"
    print(f"Database: {paths_from(args).db}")
    for label, counts in (
        ("Tables", stats.tables),
        ("Prompts by split", stats.prompts_by_split),
        ("Prompts by source", stats.prompts_by_source),
        ("Responses by origin", stats.generations_by_origin),
        ("Comparisons by decision", stats.comparisons_by_decision),
        ("Comparisons by origin", stats.comparisons_by_origin),
        ("Trainable pairs by split", stats.pairs_by_split),
    ):
        print(f"{label + ':':<26}{_counts(counts)}")
    print(f"{'Near-duplicate prompts:':<26}{dupes}")
    lines = labelers.lines()
    if lines:  # agreement between labelers, self-agreement on repeats, side and length bias
        print("Labelers:")
        for line in lines:
            print(f"  {line}")
    return 0
