"""`tuilab runs list | show | delete | best`: the lab's training runs, from the command line."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from tuilab.cli import CLIError, open_lab, paths_from, verb_group


def register(sub: argparse._SubParsersAction) -> None:
    actions = verb_group(sub, "runs", help="list, show and delete training runs; export the best checkpoint",
                         description="The training runs recorded in the lab's database.")

    lst = actions.add_parser("list", help="every run, newest first")
    lst.add_argument("--kind", choices=("rm", "ppo", "dpo"), help="only runs of this kind")
    lst.add_argument("--json", action="store_true", help="print the list as JSON")
    lst.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="one run: status, steps, checkpoints, final metrics, error")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true", help="print the run as JSON")
    show.set_defaults(func=cmd_show)

    delete = actions.add_parser(
        "delete", help="delete a run with its metrics, samples and checkpoint rows",
        description="Delete a run's row and everything recorded for it. Its folder under models/runs/ "
        "is kept unless --files is given. A running run, or a reward model another run uses, is "
        "refused unless --force.",
    )
    delete.add_argument("run_id")
    delete.add_argument("--files", action="store_true", help="also delete the run's folder")
    delete.add_argument("--yes", action="store_true", help="do not ask")
    delete.add_argument("--force", action="store_true",
                        help="delete even a running run or one that other runs name as parent")
    delete.set_defaults(func=cmd_delete)

    best = actions.add_parser("best", help="export the adapter of the checkpoint your blind audits name best",
                              description="Copy the PEFT adapter of the PPO checkpoint where the human win rate "
                              "against the reference peaks (`tuilab label winrate RUN` shows it) to a new folder.")
    best.add_argument("run_id")
    best.add_argument("out", metavar="DIR", help="the new folder (`PeftModel.from_pretrained(base, DIR)` loads it)")
    best.set_defaults(func=cmd_best)


def _lab(args: argparse.Namespace):
    """The lab's database; a lab that does not exist yet is not created just to look into it."""
    if not paths_from(args).db.exists():
        raise CLIError(f"no lab database at {paths_from(args).db} yet, so no runs; "
                       "start one with `tuilab train rm` or from the Train screen")
    return open_lab(args)


def _get(db, run_id: str):
    from tuilab.store.runs import RunNotFound, get_run

    try:
        return get_run(db, run_id)
    except RunNotFound:
        raise CLIError(f"no run {run_id!r} in this lab; `tuilab runs list` shows them") from None


def _steps(run) -> str:
    return "–" if run.total_steps is None else str(run.total_steps)


def cmd_list(args: argparse.Namespace) -> int:
    from tuilab.store.runs import list_runs

    if not paths_from(args).db.exists():
        print("no runs yet (no lab database here); start one with `tuilab train rm` or from the Train screen")
        return 0
    db = open_lab(args)
    try:
        runs = list_runs(db, args.kind)
    finally:
        db.conn.close()
    if args.json:
        print(json.dumps([{"id": r.id, "kind": r.kind, "status": r.status, "name": r.name,
                           "total_steps": r.total_steps, "created_at": r.created_at,
                           "error_summary": r.error_summary} for r in runs], indent=2))
        return 0
    if not runs:
        print("no runs yet; start one with `tuilab train rm` or from the Train screen")
        return 0
    rows = [("ID", "KIND", "STATUS", "STEPS", "CREATED", "NAME / ERROR")]
    for r in runs:
        rows.append((r.id, r.kind, r.status, _steps(r), r.created_at[:16].replace("T", " "),
                     r.name or r.error_summary[:60]))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row[:5])) + "  " + row[5])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from tuilab.store.run_info import child_runs, run_counts
    from tuilab.store.runs import latest_checkpoint

    db = _lab(args)
    try:
        run = _get(db, args.run_id)
        counts = run_counts(db, run.id)
        newest = latest_checkpoint(db, run.id)
        children = child_runs(db, run.id)
    finally:
        db.conn.close()
    if args.json:
        data = dict(run.__dict__, counts=counts, children=children,
                    latest_checkpoint=None if newest is None else {"step": newest[0], "path": newest[1]})
        data.pop("error", None)
        print(json.dumps(data, indent=2, default=str))
        return 0
    fields = [
        ("run", run.id), ("kind", run.kind), ("status", run.status), ("name", run.name or "–"),
        ("created", run.created_at), ("started", run.started_at or "–"), ("finished", run.finished_at or "–"),
        ("steps", f"{counts['last_step'] if counts['last_step'] is not None else '–'} of {_steps(run)}"),
        ("metrics", f"{counts['metrics']} values"), ("samples", str(counts["samples"])),
        ("checkpoints", f"{counts['checkpoints']}" + (f", newest step {newest[0]}: {newest[1]}" if newest else "")),
        ("folder", run.output_dir or "–"), ("parents", ", ".join(run.parents) or "–"),
        ("used by", ", ".join(children) or "–"),
    ]
    if run.error_summary:
        fields.append(("error", run.error_summary))
    shown = {k: v for k, v in run.final_metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if shown:
        fields.append(("final", ", ".join(f"{k} {v:.4g}" for k, v in sorted(shown.items())[:12])))
    for key, value in fields:
        print(f"{key + ':':<13}{value}")
    if run.kind == "ppo" and run.status in ("failed", "cancelled"):
        print(f"{'resume:':<13}tuilab train ppo --resume {run.id}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from tuilab.store.run_info import child_runs
    from tuilab.store.runs import delete_run

    paths = paths_from(args)
    db = _lab(args)
    try:
        run = _get(db, args.run_id)
        children = child_runs(db, run.id)
        if run.status in ("running", "paused", "pending") and not args.force:
            raise CLIError(f"run {run.id} is {run.status}; cancel it first, or pass --force if its process died")
        if children and not args.force:
            raise CLIError(f"run {run.id} is the parent of {', '.join(children)}; pass --force to delete it anyway")
        folder = Path(run.output_dir) if run.output_dir else paths.runs / run.id
        if args.files and folder.resolve().parent != paths.runs.resolve():
            raise CLIError(f"run {run.id}'s folder {folder} is not under {paths.runs}; delete it yourself")
        if not args.yes:
            if not sys.stdin.isatty():
                raise CLIError(f"deleting run {run.id} needs --yes when not asked on a terminal")
            what = f"run {run.id} ({run.kind}, {run.status})" + (f" and {folder}" if args.files else "")
            if input(f"Delete {what}? [y/N] ").strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        delete_run(db, run.id)
    finally:
        db.conn.close()
    if args.files and folder.is_dir():
        shutil.rmtree(folder)
    kept = "" if args.files or not folder.exists() else f"; its folder {folder} was kept"
    print(f"deleted run {run.id}{kept}")
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    from tuilab.cli.label import export_best_checkpoint

    db = _lab(args)
    try:
        _get(db, args.run_id)
        step, out = export_best_checkpoint(db, args.run_id, args.out)
    finally:
        db.conn.close()
    print(f"Exported the step-{step} adapter of {args.run_id} to {out}")
    return 0
