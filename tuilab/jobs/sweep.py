"""Sweeps on Ray Tune: each grid point is an ordinary tuilab job, run as one Tune trial.

The trial function (`run_trial`) calls the same `run_job` the CLI and the App
call, so a trial is a run like any other: its own row in the lab's database,
its metrics and samples written as it trains (each trial opens the lab's
SQLite itself; WAL and a busy timeout make concurrent writers on one machine
safe), its folder under `models/runs/`. The lab's screens therefore show
trials live, and Tune sees each flush of metrics through `tune.report`. The
runs screen's cancel (`x`) reaches a trial through the database: the runner
reads the request between updates, and the trial ends "cancelled" (reported
to Tune as such) while the others go on.

Ray schedules; tuilab does not. Locally `ray.init(num_cpus=…)` starts a
private Ray; with `address` the trials go to a running cluster, pinned to the
node this command runs on (the node that holds the lab folder: SQLite must be
written from the host whose disk holds it). Ray is an optional extra:
`pip install 'tuilab[ray]'`.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuilab.config import (
    LabPaths,
    PPOConfig,
    RewardConfig,
    apply_overrides,
    from_dict,
    parse_sets,
    to_dict,
)

KINDS: dict[str, type] = {"rm": RewardConfig, "ppo": PPOConfig}
INSTALL_HINT = "sweeps need Ray Tune: pip install 'tuilab[ray]'  (or: pip install 'ray[tune]')"


class SweepError(ValueError):
    """A sweep that cannot start; one sentence naming the flag or key."""


def have_ray() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None and importlib.util.find_spec("ray.tune") is not None


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    """`["kl_coef=0.01,0.05", "ensemble_mode=mean,min"]` → {key: [values]} (values parsed later, as --set)."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not items:
            raise SweepError(f"--grid {spec!r}: write KEY=V1,V2,… (e.g. kl_coef=0.01,0.05)")
        if key in grid:
            raise SweepError(f"--grid {key} is given twice; put all its values in one --grid")
        grid[key] = items
    if not grid:
        raise SweepError("a sweep needs at least one --grid KEY=V1,V2")
    return grid


def grid_points(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination, in the order the flags and values were given."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def point_name(base: str, point: dict[str, str]) -> str:
    label = " ".join(f"{k}={v}" for k, v in point.items())
    return f"{base} {label}".strip() if base else label


def trial_configs(kind: str, base_cfg: Any, points: list[dict[str, str]]) -> list[Any]:
    """One config per point: the base config with the point's values applied exactly as `--set` would."""
    from tuilab.config import ConfigError

    cls = KINDS[kind]
    out = []
    for point in points:
        cfg = from_dict(cls, to_dict(base_cfg))
        try:
            apply_overrides(cfg, parse_sets([f"{k}={v}" for k, v in point.items()]))
        except ConfigError as exc:
            raise SweepError(f"--grid {exc}") from None
        cfg.name = point_name(base_cfg.name, point)
        out.append(cfg)
    return out


# ------------------------------------------------------------------ inside a Ray worker


def run_trial(config: dict[str, Any]) -> None:
    """Tune's function trainable: one tuilab job, metrics reported to Tune at every flush."""
    import torch
    from ray import tune

    from tuilab.jobs.runner import run_job
    from tuilab.training.events import Metrics

    spec = config["spec"]
    torch.set_num_threads(max(1, int(spec.get("threads", 1))))
    paths = LabPaths(Path(spec["home"]), Path(spec["db"]) if spec.get("db") else None)
    cfg = from_dict(KINDS[spec["kind"]], spec["config"])
    job = _job(spec["kind"], cfg)
    latest: dict[str, Any] = {}

    def forward(events: list) -> None:
        fresh = [e for e in events if isinstance(e, Metrics)]
        if not fresh:
            return
        for e in fresh:
            latest.update({k: v for k, v in e.values.items() if isinstance(v, int | float)})
            latest["step"] = e.step
        tune.report({**latest, "run_id": job.run_id})

    outcome = run_job(job, paths=paths, forward=forward)
    final = {k: v for k, v in (outcome.metrics or {}).items() if isinstance(v, int | float)}
    tune.report({**latest, **final, "run_id": job.run_id, "status": outcome.status, "done": True})
    if outcome.status == "failed":
        raise RuntimeError(f"run {job.run_id} failed: {outcome.error}")


def _job(kind: str, cfg: Any):
    if kind == "rm":
        from tuilab.jobs.rm_job import reward_job

        return reward_job(cfg)
    from tuilab.jobs.ppo_job import ppo_job

    return ppo_job(cfg)


# ------------------------------------------------------------------ the driver


@dataclass
class TrialResult:
    point: dict[str, str]
    run_id: str | None
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def run_sweep(kind: str, configs: list[Any], points: list[dict[str, str]], paths: LabPaths, *,
              address: str | None = None, num_cpus: int | None = None, cpus_per_trial: int = 1,
              gpus_per_trial: float = 0.0) -> list[TrialResult]:
    """Run every config as a Tune trial; returns one result per point, in order."""
    if not have_ray():
        raise SweepError(INSTALL_HINT)
    import ray
    from ray import tune

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    resources: dict[str, float] = {"cpu": cpus_per_trial, "gpu": gpus_per_trial}
    if address:
        # Pin trials to this node: it holds the lab folder, and SQLite is written from the host whose disk holds it.
        resources[f"node:{ray.util.get_node_ip_address()}"] = 0.001
    specs = [{"kind": kind, "config": to_dict(cfg), "home": str(paths.home),
              "db": str(paths.db_override) if paths.db_override else "", "threads": cpus_per_trial,
              "point": point} for cfg, point in zip(configs, points, strict=True)]
    storage = paths.models / "sweeps"
    storage.mkdir(parents=True, exist_ok=True)
    tuner = tune.Tuner(
        tune.with_resources(run_trial, resources),
        param_space={"spec": tune.grid_search(specs)},
        run_config=tune.RunConfig(storage_path=str(storage), name=f"{kind}-sweep", verbose=0),
    )
    grid = tuner.fit()
    results: list[TrialResult] = []
    by_point = {}
    for result in grid:
        spec = result.config["spec"] if result.config else {}
        m = result.metrics or {}
        by_point[repr(spec.get("point"))] = TrialResult(
            point=spec.get("point", {}), run_id=m.get("run_id"),
            status=m.get("status", "failed" if result.error else "unknown"),
            metrics={k: v for k, v in m.items() if isinstance(v, int | float)},
            error=str(result.error or ""))
    for point in points:
        results.append(by_point.get(repr(point), TrialResult(point, None, "not run")))
    return results

