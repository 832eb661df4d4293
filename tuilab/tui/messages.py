"""Every way state reaches the UI: typed messages (dataclasses, as Textual's own).

Worker threads post to the App (non-blocking `post_message`) and never touch
widgets; the App updates its state in one handler and posts a screen message
(below, `bubble=False`) to the screens of the current mode, which redraw in
their own handlers. A screen that comes back to the front re-reads the App's
state in `on_screen_resume`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from tuilab.labeling.queue import FeedState
from tuilab.training.events import Event


@dataclass
class FeederUpdate(Message):
    """The feeder's state changed (phase, progress, queue fill)."""

    state: FeedState


@dataclass
class PairReady(Message):
    """A pair was stored and queued; `ready` pairs are waiting."""

    state: FeedState
    prompt_id: int


# ---------------------------------------------------------------- App → screens


@dataclass
class FeedChanged(Message, bubble=False):
    """The pair queue's state, as the App now holds it."""

    state: FeedState


@dataclass
class StatsChanged(Message, bubble=False):
    """Fresh label statistics for the stats strip (and the labeler's consistency figures, when computed)."""

    stats: Any
    report: Any = None


@dataclass
class MarkdownToggled(Message, bubble=False):
    """Responses are now shown as rendered Markdown (or as plain text)."""

    markdown: bool


@dataclass
class WorkerFailed(Message):
    """A background worker hit an error it could not recover from by itself."""

    where: str
    summary: str
    detail: str = ""


@dataclass
class LabelStatsReady(Message):
    """Fresh labeling stats, computed off the UI thread (they scan every comparison)."""

    stats: Any
    report: Any = None  # labeling.consistency.LabelerReport of this session's labeler, or None


# ---------------------------------------------------------------- the training thread
# The job runner flushes events about four times a second and calls `forward(batch)`
# once per flush; the App's forward posts one `JobEvents`, so the UI thread sees a
# handful of messages per second however fast the loop steps.


@dataclass
class JobEvents(Message):
    """A batch of loop events for one run, already persisted by the runner."""

    run_id: str
    events: list[Event]

    def __post_init__(self) -> None:
        super().__post_init__()
        self.events = list(self.events)  # the message's own list, whatever the sender does with its batch


@dataclass
class JobEnded(Message):
    """The training thread returned: the run's final status as the runner left it."""

    run_id: str
    status: str
    summary: str = ""
