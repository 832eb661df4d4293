"""`tuilab data mark-hacked RUN --where …`: the inspector's `h`, headless, for every sample that matches.

Each match gets the same write as `h` (`store.samples.mark_hacked`): a comparison
(origin "hacked") preferring the reference answer over the sample's, so the
next reward model trained on the lab's pairs learns not to pay for it.

`--where` is a flag name (`long`, `no_eos`, `repetitive`, `uncertain`,
`overrated`) or a comparison on a sample's numbers (`length`, `score`, `gold`,
`kl`, `spread`, `step`, `eos`), joined by `and`: e.g. `--where "long and gold < 0"`.

A mark needs the reference policy's answer to the same prompt. The run keeps one
only on every `sample_every`-th step, so for a match without one this samples it
now, from the run's base model with its adapters off, at the run's temperature
and token cap, as the run would have (`--references skip` counts and skips them
instead). In the length scenario (`sample_every = 4`) that is 65 of 87 matches.
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
        "records: the reference answer preferred over the sample's. Samples without a reference answer get one "
        "sampled now from the run's reference policy (its base model, adapters off, at the run's temperature "
        "and token cap); with --references skip they are counted and skipped. Prints one JSON line: matched, "
        "marked, references sampled, skipped.",
    )
    p.add_argument("run", metavar="RUN", help="a PPO run id")
    p.add_argument("--where", required=True,
                   help='a flag (long, no_eos, repetitive, uncertain, overrated) or a condition such as '
                        '"length > 40", joined by "and"')
    p.add_argument("--note", default="", help="the rationale stored on each comparison")
    p.add_argument("--references", choices=("sample", "skip"), default="sample",
                   help="matches without a reference answer: sample one from the reference policy (default) "
                        "or skip them")
    p.add_argument("--seed", type=int, default=0, help="seed for the references sampled now")
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
    missing = [s for s in hits if not s.hacked and not s.ref_response and s.prompt_id is not None]
    sampled = 0
    if missing and args.references == "sample" and not args.dry_run:
        sampled = sample_references(db, run, missing, args)
    marked = skipped = already = 0
    for s in hits:
        if s.hacked:
            already += 1
        elif s.prompt_id is None or (not s.ref_response and not (args.dry_run and args.references == "sample")):
            skipped += 1
        elif not args.dry_run:
            mark_hacked(db, s.id, note=args.note or f"mark-hacked --where {args.where}")
            marked += 1
    print(json.dumps({"run_id": args.run, "samples": total, "matched": len(hits), "marked": marked,
                      "references_sampled": sampled, "references_needed": len(missing), "already_hacked": already,
                      "skipped_no_reference": skipped, "dry_run": bool(args.dry_run)}))
    if hits and skipped == len(hits):
        print("none of the matches has a reference answer (sample_every = 0?) and --references skip was given; "
              "nothing was marked", file=sys.stderr)
    return 0


def sample_references(db, run, missing: list, args: argparse.Namespace) -> int:
    """The reference policy's answers for `missing` (`labeling.references`: as the run samples them), stored on each.

    An empty answer (the reference ended its turn at once) is not stored: that sample is counted as skipped.
    """
    from tuilab.cli import paths_from
    from tuilab.labeling.references import base_model, host_for
    from tuilab.labeling.references import sample_references as sample
    from tuilab.store.prompts import get_prompt
    from tuilab.store.samples import set_reference

    cfg = run.config or {}
    base = base_model(cfg)
    if not base:
        raise CLIError(f"run {run.id} does not name its base model; give --references skip to mark only the "
                       "samples that have a reference answer")
    host = host_for(cfg, paths_from(args).models)
    print(f"sampling {len(missing)} reference answers from {base} (adapters off)", file=sys.stderr)
    prompts = [get_prompt(db, s.prompt_id).messages for s in missing]
    try:
        answers = sample(host, prompts, cfg, seed=args.seed)
    except (FileNotFoundError, LookupError, ValueError) as exc:  # ModelNotFound is a LookupError
        raise CLIError(f"cannot sample reference answers: {exc}; give --references skip to mark only the samples "
                       "that have one") from None
    finally:
        host.close()
    stored = 0
    for s, text in zip(missing, answers, strict=True):
        if text:
            set_reference(db, s.id, text)
            s.ref_response = text
            stored += 1
    return stored
