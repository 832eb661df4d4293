"""What a training loop tells the world: plain dataclasses passed to `sink(event)`.

The loops know nothing of Textual or SQLite. `jobs/` turns these into rows and
UI messages; a test can collect them in a list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tuilab.records import Sample

# How often a loop reads its device-side losses (one sync) and a runner writes and
# forwards events: about four times a second, often enough for a live chart and
# rarely enough that a UI message or a SQLite write per training step never
# competes with the step itself.
FLUSH_SECONDS = 0.25


@dataclass
class Metrics:
    """Scalar metrics at one step (names like `train/loss`, `eval/accuracy`, `objective/kl`)."""

    step: int
    values: dict[str, float]
    total_steps: int | None = None


@dataclass
class Samples:
    """One step's samples; the store sets each one's `id` when the runner writes them."""

    step: int
    rows: list[Sample]


@dataclass
class Checkpoint:
    step: int
    path: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class RunWarning:
    """A run-level diagnostic in words (e.g. the length-bias warning)."""

    step: int
    code: str
    message: str


@dataclass
class Finished:
    metrics: dict[str, Any]
    output_dir: str = ""


@dataclass
class Failed:
    """The run stopped on an error; `summary` is one line for the screen, `error` the full text."""

    summary: str
    error: str
    step: int | None = None


@dataclass
class Cancelled:
    step: int


Event = Metrics | Samples | Checkpoint | RunWarning | Finished | Failed | Cancelled
Sink = Callable[[Event], None]


class CancelledRun(Exception):
    """Raised inside a loop by `RunControl.check()` when the user cancels."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the run stops as failed at `step`."""

    def __init__(self, step: int, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"training diverged at step {step}: {reason}")


class RunControl:
    """Pause / resume / cancel, checked by the loop once per step (threading only, no UI)."""

    def __init__(self, shares: RunControl | None = None) -> None:
        """`shares`: another control whose switches this one uses (a wrapper that adds hooks):
        pausing, resuming or cancelling through either is the same act."""
        if shares is not None:
            self._cancel, self._running = shares._cancel, shares._running
            return
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # wake a paused loop so it can see the cancel

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def check(self) -> None:
        """Block while paused; raise CancelledRun once cancelled."""
        self._running.wait()
        if self._cancel.is_set():
            raise CancelledRun()
