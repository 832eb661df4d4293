"""`tuilab sweep rm|ppo --config base.toml --grid key=v1,v2 …`: a grid of ordinary jobs on Ray Tune.

Every grid point is validated before Ray starts (a bad value leaves no run
row). Each trial is a run in the lab's database, visible live in the lab;
stdout gets one JSON line per trial (point, run id, status, final metrics).
"""

from __future__ import annotations

import argparse
import json

from tuilab.cli.job_args import build_config, json_safe, validate


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sweep", help="run a grid of reward-model or PPO jobs as Ray Tune trials",
        description="Each point of the grid (the product of every --grid) is one ordinary tuilab job run as a "
        "Ray Tune trial: a run in the lab's database with live metrics and samples. Needs the optional "
        "extra: pip install 'tuilab[ray]'.",
    )
    parser.add_argument("kind", choices=("rm", "ppo"), help="what each trial trains")
    parser.add_argument("--config", metavar="FILE.toml", help="the base config every trial starts from")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one base setting (repeatable)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="values to sweep for one setting (repeatable: the grid is their product)")
    parser.add_argument("--name", help="a name prefix for the trials' runs")
    parser.add_argument("--address", help="a running Ray cluster (ray://… or host:port); default: a local Ray. "
                        "Trials are pinned to this node, which must hold the lab folder")
    parser.add_argument("--cpus", type=int, help="CPUs for the local Ray (default: all)")
    parser.add_argument("--cpus-per-trial", type=int, default=1, help="CPUs (and torch threads) per trial")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial (fractions share one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tuilab.cli import CLIError, paths_from
    from tuilab.jobs.sweep import (
        INSTALL_HINT,
        KINDS,
        SweepError,
        grid_points,
        have_ray,
        parse_grid,
        run_sweep,
        trial_configs,
    )

    if not have_ray():
        raise CLIError(INSTALL_HINT)
    if args.cpus_per_trial < 1 or (args.cpus is not None and args.cpus < 1) or args.gpus_per_trial < 0:
        raise CLIError("--cpus and --cpus-per-trial must be ≥ 1, --gpus-per-trial ≥ 0")
    try:
        points = grid_points(parse_grid(args.grid))
        base = build_config(KINDS[args.kind], args)
        configs = trial_configs(args.kind, base, points)
    except SweepError as exc:
        raise CLIError(str(exc)) from None
    for cfg, point in zip(configs, points, strict=True):
        try:
            validate(args.kind, cfg, args)
        except CLIError as exc:
            raise CLIError(f"grid point {point}: {exc}") from None
    paths = paths_from(args)
    results = run_sweep(args.kind, configs, points, paths, address=args.address, num_cpus=args.cpus,
                        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial)
    for r in results:
        print(json.dumps(json_safe({"point": r.point, "run_id": r.run_id, "status": r.status,
                                    "metrics": r.metrics, "error": r.error[:300]})), flush=True)
    return 0 if all(r.status == "completed" for r in results) else 1
