"""One run as the screens see it: curves, progress, samples, warnings, status.

A `LiveRun` is fed either by `apply(events)` (the batches the job thread
forwards) or by `LiveRun.from_db` (the same numbers read back after a restart).
It is plain Python, no Textual and no torch, so its arithmetic (moving
averages, √KL axes, ETA) is tested without an app. `version` grows on every
change: a screen redraws only when the version it last drew is behind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuilab.records import Sample
from tuilab.training.events import (
    Cancelled,
    Checkpoint,
    Event,
    Failed,
    Finished,
    Metrics,
    RunWarning,
    Samples,
)

# Samples kept in memory per run (the database keeps all of them).
MAX_SAMPLES = 512
# Window of the moving average drawn over per-update curves: at batch 8 single updates are noisy.
SMOOTH_WINDOW = 5

FINAL = ("completed", "failed", "cancelled")
# Runs whose policy answers prompts: they have samples, the inspector, and a √KL axis.
POLICY_KINDS = ("ppo", "dpo")


@dataclass
class WarningView:
    step: int
    code: str
    message: str


@dataclass
class LiveRun:
    """Everything a screen draws about one run."""

    run_id: str
    kind: str = "rm"
    status: str = "pending"
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    total_steps: int | None = None
    step: int | None = None
    samples: list[Sample] = field(default_factory=list)
    warnings: list[WarningView] = field(default_factory=list)
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    final_metrics: dict[str, Any] = field(default_factory=dict)
    error_summary: str = ""
    error: str = ""
    output_dir: str = ""
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    # Progress clock (monotonic seconds), only for runs watched live in this process.
    _clock: list[tuple[float, int]] = field(default_factory=list, repr=False)
    version: int = 0
    # "pausing" / "cancelling" while the loop has not reached its next check yet.
    pending_action: str = ""

    # ------------------------------------------------------------ feeding

    def touch(self) -> None:
        self.version += 1

    def apply(self, events: Iterable[Event], now: float | None = None) -> None:
        """Fold one forwarded batch into the run (order preserved)."""
        now = time.monotonic() if now is None else now
        changed = False
        for ev in events:
            changed = True
            if isinstance(ev, Metrics):
                self._metrics(ev.step, ev.values)
                if ev.total_steps is not None:
                    self.total_steps = ev.total_steps
                self._advance(ev.step, now)
                if self.status == "pending":
                    self.status = "running"
            elif isinstance(ev, Samples):
                self.add_samples(ev.step, ev.rows)
                self._advance(ev.step, now)
            elif isinstance(ev, Checkpoint):
                self.checkpoints.append((ev.step, ev.path))
            elif isinstance(ev, RunWarning):
                self.warnings.append(WarningView(ev.step, ev.code, ev.message))
            elif isinstance(ev, Finished):
                self.status = "completed"
                self.pending_action = ""
                self.final_metrics = dict(ev.metrics or {})
                self.output_dir = ev.output_dir or self.output_dir
            elif isinstance(ev, Failed):
                self.status = "failed"
                self.pending_action = ""
                self.error_summary = ev.summary
                self.error = ev.error
            elif isinstance(ev, Cancelled):
                self.status = "cancelled"
                self.pending_action = ""
        if changed:
            self.touch()

    def _metrics(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            if value is None or not isinstance(value, int | float):
                continue
            points = self.series.setdefault(name, [])
            if points and points[-1][0] == step:
                points[-1] = (step, float(value))  # a step re-reported keeps the newer value
            elif points and points[-1][0] > step:
                # A resumed run re-reports steps: keep the series sorted, one value per step.
                kept = [p for p in points if p[0] != step]
                kept.append((step, float(value)))
                kept.sort()
                self.series[name] = kept
            else:
                points.append((step, float(value)))

    def _advance(self, step: int, now: float) -> None:
        if self.step is None or step >= self.step:
            self.step = step
            if not self._clock or self._clock[-1][1] != step:
                self._clock.append((now, step))
                del self._clock[:-200]

    def add_samples(self, step: int, rows: Sequence[Sample]) -> None:
        for r in rows:
            r.step = step  # already so when the runner wrote them; a test may feed them directly
        self.samples.extend(rows)
        del self.samples[:-MAX_SAMPLES]

    def mark_started(self, now: float | None = None, step: int = 0) -> None:
        """The job was just started (or resumed at `step`) here: the ETA clock starts now."""
        self.status = "running"
        self.pending_action = ""
        self._clock = [(time.monotonic() if now is None else now, step)]
        self.touch()

    # ------------------------------------------------------------ reading

    def values(self, name: str) -> list[tuple[int, float]]:
        return self.series.get(name, [])

    def first_present(self, names: Sequence[str]) -> str | None:
        for name in names:
            if self.series.get(name):
                return name
        return None

    @property
    def is_active(self) -> bool:
        return self.status not in FINAL

    @property
    def progress(self) -> float | None:
        if not self.total_steps or self.step is None:
            return None
        return max(0.0, min(1.0, self.step / self.total_steps))

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Seconds left at the pace of the steps seen so far (None until two steps were timed)."""
        if not self.total_steps or len(self._clock) < 2 or self.status != "running":
            return None
        (t0, s0), (t1, s1) = self._clock[0], self._clock[-1]
        if s1 <= s0 or t1 <= t0:
            return None
        per_step = (t1 - t0) / (s1 - s0)
        now = time.monotonic() if now is None else now
        left = per_step * max(self.total_steps - s1, 0) - max(now - t1, 0.0)
        return max(left, 0.0)

    def elapsed_seconds(self, now: float | None = None) -> float | None:
        if not self._clock:
            return None
        now = time.monotonic() if now is None else now
        return max(now - self._clock[0][0], 0.0)

    # ------------------------------------------------------------ database

    @classmethod
    def from_db(cls, db: Any, run_id: str, *, samples: bool = True) -> LiveRun:
        """Rebuild a run from what the runner persisted (metrics, checkpoints, samples, warnings)."""
        from tuilab.store import runs as runs_store

        run = runs_store.get_run(db, run_id)
        live = cls(
            run_id=run.id, kind=run.kind, status=run.status, name=run.name, config=dict(run.config or {}),
            total_steps=run.total_steps, final_metrics=dict(run.final_metrics or {}),
            error_summary=run.error_summary, error=run.error, output_dir=run.output_dir,
            created_at=run.created_at, started_at=run.started_at, finished_at=run.finished_at,
        )
        live.series = {k: [(int(s), float(v)) for s, v in pts if v is not None]
                       for k, pts in runs_store.read_metrics(db, run_id).items()}
        steps = [pts[-1][0] for pts in live.series.values() if pts]
        live.step = max(steps) if steps else None
        try:
            live.checkpoints = [(s, p) for s, p, _ in runs_store.list_checkpoints(db, run_id)]
        except AttributeError:  # older store without list_checkpoints
            latest = runs_store.latest_checkpoint(db, run_id)
            live.checkpoints = [latest] if latest else []
        for w in live.final_metrics.get("warnings", []) or []:
            if isinstance(w, dict):
                live.warnings.append(WarningView(int(w.get("step", 0) or 0), str(w.get("code", "")),
                                                 str(w.get("message", ""))))
        if samples and run.kind in POLICY_KINDS:
            live.samples = load_samples(db, run_id)
        live.touch()
        return live

    def reload_samples(self, db: Any) -> None:
        self.samples = load_samples(db, self.run_id)
        self.touch()


def load_samples(db: Any, run_id: str, limit: int = MAX_SAMPLES) -> list[Sample]:
    """The run's newest samples from the store (empty when the samples store is missing)."""
    try:
        from tuilab.store.samples import list_samples
    except ImportError:
        return []
    rows = list_samples(db, run_id, order_by="step", descending=True, limit=limit)
    return list(reversed(rows))


# ---------------------------------------------------------------- series arithmetic


def moving_average(values: Sequence[float], window: int = SMOOTH_WINDOW) -> list[float]:
    """Centred mean over `window` points; near the ends, the mean of the points that exist.

    Centred rather than trailing so the smoothed curve does not lag the raw one
    by half a window; the newest point averages itself and the two before it.
    Vectorised: a long run's curves are recomputed on every redraw.
    """
    import numpy as np  # here, not at the top: the App imports this module at start-up

    n = len(values)
    if n == 0:
        return []
    half = window // 2
    prefix = np.concatenate(([0.0], np.cumsum(np.asarray(values, dtype=float))))
    idx = np.arange(n)
    lo = np.maximum(idx - half, 0)
    hi = np.minimum(idx + half + 1, n)
    return ((prefix[hi] - prefix[lo]) / (hi - lo)).tolist()


def downsample(xs: Sequence[float], ys: Sequence[float], limit: int) -> tuple[list[float], list[float]]:
    """At most `limit` points: bucket means, first and last point kept exactly.

    textual-plot's drawing cost grows with the number of points, and a chart
    cannot show more than about two points per cell anyway.
    """
    import numpy as np

    n = len(xs)
    if limit < 2 or n <= limit:
        return list(xs), list(ys)
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    inner = limit - 2
    # Bucket b covers [starts[b], starts[b+1]) of the points between the first and the last.
    starts = 1 + np.floor(np.arange(inner) * (n - 2) / inner).astype(int)
    counts = np.diff(np.append(starts, n - 1))
    keep = counts > 0
    mx = np.add.reduceat(x[1:n - 1], starts - 1)[keep] / counts[keep]
    my = np.add.reduceat(y[1:n - 1], starts - 1)[keep] / counts[keep]
    return [float(x[0]), *mx.tolist(), float(x[-1])], [float(y[0]), *my.tolist(), float(y[-1])]


def sqrt_kl_axis(points: Sequence[tuple[int, float]], kl: Sequence[tuple[int, float]]) -> tuple[list[float], list[float]]:
    """Re-index a curve by d = √KL at the same step (Gao et al.); steps without a KL are dropped."""
    by_step = {s: v for s, v in kl}
    xs: list[float] = []
    ys: list[float] = []
    for step, value in points:
        k = by_step.get(step)
        if k is None or not math.isfinite(k):
            continue
        xs.append(math.sqrt(max(k, 0.0)))
        ys.append(value)
    return xs, ys


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
