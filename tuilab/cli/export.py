"""`tuilab export RUN OUT` and `tuilab export preferences OUT`: leave the lab for a bigger engine.

A reward run becomes a merged AutoModelForSequenceClassification folder (one per ensemble member),
a PPO or DPO run a merged causal-LM folder; `preferences` writes the lab's pairs as a folder
`datasets.load_dataset` reads. Each folder carries a model card.
"""

from __future__ import annotations

import argparse

from tuilab.cli import CLIError, open_lab, paths_from


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export", help="a run as a merged Hugging Face model folder, or the preferences as a dataset folder",
        description=__doc__.partition("\n\n")[2],  # the module's docstring after its first line
    )
    parser.add_argument("what", metavar="RUN", help="a run id (`tuilab runs list`), or `preferences`")
    parser.add_argument("out", metavar="OUT", help="folder to write (replaced if it exists)")
    parser.add_argument("--member", help="reward runs: export only this ensemble member (e.g. reward-0)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                        help="weights' dtype in the folder (default float32: scores match the lab's)")
    parser.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from tuilab.jobs.export import ExportError, export_preferences, export_run

    db = open_lab(args)
    try:
        if args.what == "preferences":
            result = export_preferences(db, args.out)
        else:
            result = export_run(db, paths_from(args), args.what, args.out, member=args.member, dtype=args.dtype)
    except ExportError as exc:
        raise CLIError(str(exc)) from None
    finally:
        db.conn.close()
    print(result.summary())
    return 0
