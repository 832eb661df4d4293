"""`tuilab label auto | agreement`: decide pairs without a person, and see how far labelers agree."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tuilab.cli import CLIError, open_lab, paths_from, verb_group


def register(sub: argparse._SubParsersAction) -> None:
    actions = verb_group(sub, "label", help="decide pairs with a rule, the gold scorer or a judge model; agreement",
                         description="Labeling without the screen.")

    auto = actions.add_parser(
        "auto", help="decide pairs with a simulated or AI annotator",
        description=(
            "Decide pairs without a person. --annotator: rule:MODULE:FUNCTION (a scorer of a text or of "
            "(prompt, response); the higher score wins), compare:MODULE:FUNCTION (f(a, b) or f(prompt, a, b) "
            "→ left/right/tie or a number), gold[:MODULE:FUNCTION] (the gold scorer as a rule), or "
            "judge[:MODEL] (a model asked in both orders; a tie when the orders disagree). By default the "
            "pairs are those another labeler decided, so agreement can be measured; --new N generates N "
            "fresh pairs with the base model first. Sides are randomised; each decision records its annotator."),
    )
    auto.add_argument("--annotator", required=True, metavar="SPEC")
    auto.add_argument("--noise", default="0", metavar="P[,P…]",
                      help="flip this share of decisions at random; several values make several simulated "
                           "annotators, one drawn per pair (AlpacaFarm-style)")
    auto.add_argument("--each", action="store_true", help="every simulated annotator decides every pair")
    auto.add_argument("--new", type=int, default=0, metavar="N", help="generate N new pairs and decide them")
    auto.add_argument("--limit", type=int, default=None, metavar="N", help="decide at most N stored pairs")
    auto.add_argument("--split", choices=("train", "test"), default="train", help="prompts for --new")
    auto.add_argument("--max-new-tokens", type=int, default=128, help="answer length for --new")
    auto.add_argument("--seed", type=int, default=0, help="sides, annotator draws and noise")
    auto.set_defaults(func=cmd_auto)

    audit = actions.add_parser(
        "audit", help="queue blind audit pairs: a PPO run's policy at each checkpoint vs the reference",
        description=("For every checkpoint of RUN not audited yet, answer --pairs held-out prompts with the "
                     "policy at that checkpoint and with the reference (adapter off), and store each as an audit "
                     "pair. They wait in the database; the label screen serves them first, sides at random."),
    )
    audit.add_argument("run_id", metavar="RUN")
    audit.add_argument("--pairs", type=int, default=None,
                       help="audit pairs per checkpoint (default: the run's own audit_pairs, else 4)")
    audit.add_argument("--max-new-tokens", type=int, default=None, help="default: the run's")
    audit.add_argument("--split", choices=("train", "test"), default="test", help="prompts to audit on")
    audit.add_argument("--seed", type=int, default=0)
    audit.set_defaults(func=cmd_audit)

    best = actions.add_parser(
        "winrate", help="the human win rate of a PPO run's policy per audited step, and the checkpoint to keep",
        description=("Per audited step: the policy's wins, losses and ties against the reference in your blind "
                     "decisions, the win rate with a 95%% Wilson interval, and the run's proxy score, gold score "
                     "and √KL there. Names the checkpoint where the human curve peaks; --export copies its "
                     "adapter (standard PEFT layout) to a new folder."),
    )
    best.add_argument("run_id", metavar="RUN")
    best.add_argument("--export", metavar="DIR", help="copy the best checkpoint's adapter here (a new folder)")
    best.add_argument("--json", action="store_true")
    best.set_defaults(func=cmd_winrate)

    agree = actions.add_parser("agreement", help="self-agreement, side and length bias, agreement of every two labelers")
    agree.add_argument("--json", action="store_true", help="print the figures as JSON")
    agree.set_defaults(func=cmd_agreement)


@contextmanager
def _lab(args: argparse.Namespace, *, run_id: str | None = None) -> Iterator[Any]:
    """The lab's database, closed afterwards; a lab that does not exist yet is not created just to look into it."""
    db_path = paths_from(args).db
    if not db_path.exists():
        if run_id is not None:
            raise CLIError(f"no run {run_id!r}: no lab database at {db_path} yet")
        raise CLIError(f"no lab database at {db_path} yet, so nothing to label; "
                       "add prompts with `tuilab data import FILE`")
    db = open_lab(args)
    try:
        yield db
    finally:
        db.conn.close()


def _run(db: Any, run_id: str) -> Any:
    from tuilab.store.runs import RunNotFound, get_run

    try:
        return get_run(db, run_id)
    except RunNotFound:
        raise CLIError(f"no run {run_id!r} (see `tuilab runs list`)") from None


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    print()


def _noises(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CLIError(f"--noise: expected numbers between 0 and 1 separated by commas, got {text!r}") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise CLIError(f"--noise: every value must be between 0 and 1, got {text!r}")
    return values


def cmd_auto(args: argparse.Namespace) -> int:
    from tuilab.labeling.annotators import AnnotatorError, parse_annotator, simulated
    from tuilab.labeling.auto import auto_label, new_pairs
    from tuilab.store.agreement import pairs_decided_by_others

    noises = _noises(args.noise)
    if args.new < 0 or (args.limit is not None and args.limit < 0):
        raise CLIError("--new and --limit must be 0 or more")
    paths = paths_from(args)
    try:
        base = parse_annotator(args.annotator, models_dir=paths.models, default_model=args.model)
    except AnnotatorError as exc:
        raise CLIError(str(exc)) from None
    annotators = simulated(base, noises, seed=args.seed)
    with _lab(args) as db:
        if args.new:
            from tuilab.labeling.candidates import ModelCandidateSource, SourceSpec
            from tuilab.modeling.host import ModelHost

            host = getattr(base, "host", None) or ModelHost(paths.models, args.model, four_bit=args.four_bit)
            source = ModelCandidateSource(host, SourceSpec(max_new_tokens=args.max_new_tokens, seed=args.seed))
            pairs = new_pairs(db, source, args.new, split=args.split, seed=args.seed)
        else:
            pairs = pairs_decided_by_others(db, [a.name for a in annotators], limit=args.limit)
        if not pairs:
            print("No pairs to decide: none decided by another labeler and not yet by this one "
                  "(use --new N to generate some).")
            return 0
        try:
            report = auto_label(db, annotators, pairs, each=args.each, seed=args.seed)
        except AnnotatorError as exc:
            raise CLIError(str(exc)) from None
    print(report.summary())
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from tuilab.labeling.audits import AuditSettings, queue_audits
    from tuilab.modeling.host import ModelHost

    paths = paths_from(args)
    with _lab(args, run_id=args.run_id) as db:
        run = _run(db, args.run_id)
        # A self-auditing run's own K: the same held-out prompts for the steps it missed.
        pairs = args.pairs if args.pairs is not None else int(run.config.get("audit_pairs") or 4)
        settings = AuditSettings(pairs=pairs, max_new_tokens=args.max_new_tokens, split=args.split, seed=args.seed)
        try:
            settings.check()
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        host = ModelHost(paths.models, str(run.config.get("base_model") or args.model), four_bit=args.four_bit)
        try:
            n = queue_audits(db, host, args.run_id, settings, progress=lambda text: print(text, file=sys.stderr))
        except (ValueError, FileNotFoundError) as exc:
            raise CLIError(str(exc)) from None
    print(f"Queued {n} audit pairs for {args.run_id}" if n else
          f"Nothing to audit: every checkpoint of {args.run_id} already has audit pairs (or it has none yet).")
    return 0


def cmd_winrate(args: argparse.Namespace) -> int:
    from tuilab.labeling.audits import best_checkpoint, peak_message, win_rate_curve
    from tuilab.store.audits import pending_audit_pairs

    with _lab(args, run_id=args.run_id) as db:
        _run(db, args.run_id)
        points = win_rate_curve(db, args.run_id)
        pending = len(pending_audit_pairs(db, run_id=args.run_id))
        try:
            best = best_checkpoint(db, args.run_id)
        except FileNotFoundError as exc:
            raise CLIError(str(exc)) from None
        if args.json:
            _print_json({"points": [{"step": p.step, "wins": p.wins, "losses": p.losses, "ties": p.ties,
                                     "both_bad": p.both_bad, "win_rate": None if p.win_rate is None else
                                     {"estimate": p.win_rate.estimate, "low": p.win_rate.low,
                                      "high": p.win_rate.high, "n": p.win_rate.n},
                                     "proxy": p.proxy, "gold": p.gold, "sqrt_kl": p.sqrt_kl} for p in points],
                         "pending": pending,
                         "best": None if best is None else {"step": best[0], "adapter": str(best[1])}})
        else:
            print(f"{'step':>6}  {'win rate [95% CI]':<22} {'W/L/T/bad':<11} {'proxy':>7} {'gold':>7} {'√KL':>6}")
            for p in points:
                rate = "–" if p.win_rate is None else p.win_rate.format()
                nums = " ".join("      –" if v is None else f"{v:7.3f}" for v in (p.proxy, p.gold))
                kl = "     –" if p.sqrt_kl is None else f"{p.sqrt_kl:6.3f}"
                print(f"{p.step:>6}  {rate:<22} {f'{p.wins}/{p.losses}/{p.ties}/{p.both_bad}':<11} {nums} {kl}")
            print(peak_message(points) + (f"; {pending} audit pairs still wait to be labeled" if pending else ""))
        if args.export:
            step, out = export_best_checkpoint(db, args.run_id, args.export)
            print(f"Exported the step-{step} adapter to {out}", file=sys.stderr if args.json else sys.stdout)
    return 0


def export_best_checkpoint(db, run_id: str, dest: str):
    """`labeling.audits.export_best`, its refusals as one line (also `tuilab runs best`)."""
    from tuilab.labeling.audits import export_best

    try:
        return export_best(db, run_id, dest)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None


def cmd_agreement(args: argparse.Namespace) -> int:
    from tuilab.labeling.consistency import consistency, report_dict

    with _lab(args) as db:
        report = consistency(db)
    if args.json:
        _print_json(report_dict(report))
        return 0
    lines = report.lines()
    print("\n".join(lines) if lines else "No decisions yet.")
    return 0
