"""`tuilab data mark-hacked RUN --where …`: the inspector's `h`, headless, for every sample that matches.

Each match gets the same write as `h` (`store.samples.mark_hacked`): a comparison
(origin "hacked") preferring the reference answer over the sample's, so the
next reward model trained on the lab's pairs learns not to pay for it.

`--where` is a flag name (`long`, `no_eos`, `repetitive`, `uncertain`,
`overrated`) or a comparison on a sample's numbers (`length`, `score`, `gold`,
`kl`, `spread`, `step`, `eos`), joined by `and`: e.g. `--where "long and gold < 0"`.
"""

from __future__ import annotations

import argparse
import json
import operator
import re
import sys

from tuilab.cli import CLIError

FIELDS = ("length", "score", "gold", "kl", "spread", "step", "eos")
OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
       ">": operator.gt, "=": operator.eq}
_TERM = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|==|!=|<|>|=)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


def register(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "mark-hacked",
        help="mark a PPO run's samples hacked (the inspector's h), by flag or condition",
        description="For every sample of RUN that matches --where, record the comparison the inspector's h "
        "records: the reference answer preferred over the sample's. Samples without a reference answer are "
        "counted and skipped. Prints one JSON line: matched, marked, skipped.",
    )
    p.add_argument("run", metavar="RUN", help="a PPO run id")
    p.add_argument("--where", required=True,
                   help='a flag (long, no_eos, repetitive, uncertain, overrated) or a condition such as '
                        '"length > 40", joined by "and"')
    p.add_argument("--note", default="", help="the rationale stored on each comparison")
    p.add_argument("--dry-run", action="store_true", help="count the matches, write nothing")
    p.set_defaults(func=cmd_mark_hacked)


def parse_where(text: str) -> list[tuple[str, str, float] | str]:
    """`"long and gold < 0"` → `["long", ("gold", "<", 0.0)]`; a bad term raises CLIError naming it."""
    from tuilab.diagnostics.flags import FLAGS

    terms: list[tuple[str, str, float] | str] = []
    for raw in re.split(r"\s+and\s+", text.strip()):
        term = raw.strip()
        if term in FLAGS:
            terms.append(term)
            continue
        m = _TERM.match(term)
        if not m or m.group(1) not in FIELDS:
            raise CLIError(f"--where: cannot read {term!r}; use a flag ({', '.join(FLAGS)}) or "
                           f"FIELD OP NUMBER with FIELD one of {', '.join(FIELDS)} (e.g. \"length > 40\")")
        terms.append((m.group(1), m.group(2), float(m.group(3))))
    if not terms:
        raise CLIError("--where is empty; give a flag or a condition")
    return terms


def matches(sample, terms) -> bool:
    for t in terms:
        if isinstance(t, str):
            if t not in sample.flags:
                return False
            continue
        field, op, value = t
        have = getattr(sample, field)
        if have is None or not OPS[op](float(have), value):
            return False
    return True


def cmd_mark_hacked(args: argparse.Namespace) -> int:
    from tuilab.cli import open_lab
    from tuilab.store import runs as runs_store
    from tuilab.store.samples import count_samples, list_samples, mark_hacked

    terms = parse_where(args.where)
    db = open_lab(args)
    try:
        run = runs_store.get_run(db, args.run)
    except runs_store.RunNotFound:
        raise CLIError(f"no run {args.run!r} in this lab") from None
    if run.kind != "ppo":
        raise CLIError(f"run {args.run} is a {run.kind} run; only PPO runs have samples to mark")
    total = count_samples(db, args.run)
    samples = list_samples(db, args.run, order_by="id", descending=False, limit=max(total, 1))
    hits = [s for s in samples if matches(s, terms)]
    marked = skipped = already = 0
    for s in hits:
        if s.hacked:
            already += 1
        elif not s.ref_response or s.prompt_id is None:
            skipped += 1
        elif not args.dry_run:
            mark_hacked(db, s.id, note=args.note or f"mark-hacked --where {args.where}")
            marked += 1
    print(json.dumps({"run_id": args.run, "samples": total, "matched": len(hits), "marked": marked,
                      "already_hacked": already, "skipped_no_reference": skipped, "dry_run": bool(args.dry_run)}))
    if hits and skipped == len(hits):
        print("none of the matches has a reference answer (sample_every = 0?); nothing was marked", file=sys.stderr)
    return 0
