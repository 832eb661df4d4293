"""`tuilab label auto | agreement`: decide pairs without a person, and see how far labelers agree."""

from __future__ import annotations

import argparse
import json
import sys

from tuilab.cli import CLIError, open_lab, paths_from


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("label", help="decide pairs with a rule, the gold scorer or a judge model; agreement",
                            description="Labeling without the screen.")
    actions = parser.add_subparsers(dest="label_action", metavar="ACTION")
    parser.set_defaults(func=lambda args: parser.print_help())

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

    agree = actions.add_parser("agreement", help="self-agreement, side and length bias, agreement of every two labelers")
    agree.add_argument("--json", action="store_true", help="print the figures as JSON")
    agree.set_defaults(func=cmd_agreement)


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
    db = open_lab(args)
    try:
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
        report = auto_label(db, annotators, pairs, each=args.each, seed=args.seed)
    except AnnotatorError as exc:
        raise CLIError(str(exc)) from None
    finally:
        db.conn.close()
    print(report.summary())
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from tuilab.labeling.consistency import consistency, report_dict

    db = open_lab(args)
    try:
        report = consistency(db)
    finally:
        db.conn.close()
    if args.json:
        json.dump(report_dict(report), sys.stdout, indent=2)
        print()
        return 0
    lines = report.lines()
    print("\n".join(lines) if lines else "No decisions yet.")
    return 0
