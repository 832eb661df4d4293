"""The train verbs' progress bar: forwarded event batches → one rich bar on stderr.

Each verb names the metrics it shows (`Column`s); warnings and checkpoints
print as lines above the bar. `--quiet` keeps the bar off (the lines still
print: they say something went wrong or where a checkpoint is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One number on the bar: `label` then the metric `metric` formatted with `fmt` (e.g. "+.3f")."""

    label: str
    metric: str
    fmt: str
    suffix: str = ""


class ProgressView:
    """Call it with each forwarded batch of events; use it as a context manager around the run."""

    def __init__(self, description: str, columns: Sequence[Column], *, quiet: bool, eta: bool = False) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.columns = list(columns)
        self.console = Console(stderr=True)
        shown = [TextColumn(f"{c.label} {{task.fields[f{i}]}}".strip()) for i, c in enumerate(self.columns)]
        tail = [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()] if eta else [TimeElapsedColumn()]
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *shown, *tail,
            console=self.console, disable=quiet, transient=False,
        )
        self.task = self.progress.add_task(description, total=None, **{f"f{i}": "–" for i in range(len(self.columns))})

    def __enter__(self) -> ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, events: list) -> None:
        from tuilab.training.events import Checkpoint, Metrics, RunWarning

        for event in events:
            if isinstance(event, Metrics):
                values = event.values
                fields = {f"f{i}": f"{values[c.metric]:{c.fmt}}{c.suffix}"
                          for i, c in enumerate(self.columns) if c.metric in values}
                self.progress.update(self.task, total=event.total_steps, completed=event.step, **fields)
            elif isinstance(event, RunWarning):
                self.progress.console.print(f"[yellow]warning[/] (step {event.step}, {event.code}): {event.message}")
            elif isinstance(event, Checkpoint):
                self.progress.console.print(f"checkpoint at step {event.step}: {event.path}", style="dim")
