"""Every way state reaches the UI: typed messages.

Worker threads post to the App (non-blocking `post_message`) and never touch
widgets; the App updates its state in one handler and posts a screen message
(below, `bubble=False`) to the screens of the current mode, which redraw in
their own handlers. A screen that comes back to the front re-reads the App's
state in `on_screen_resume`.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from tuilab.labeling.queue import FeedState
from tuilab.training.events import Event


class FeederUpdate(Message):
    """The feeder's state changed (phase, progress, queue fill)."""

    def __init__(self, state: FeedState) -> None:
        super().__init__()
        self.state = state


class PairReady(Message):
    """A pair was stored and queued; `ready` pairs are waiting."""

    def __init__(self, state: FeedState, prompt_id: int) -> None:
        super().__init__()
        self.state = state
        self.prompt_id = prompt_id


# ---------------------------------------------------------------- App → screens


class FeedChanged(Message, bubble=False):
    """The pair queue's state, as the App now holds it."""

    def __init__(self, state: FeedState) -> None:
        super().__init__()
        self.state = state


class StatsChanged(Message, bubble=False):
    """Fresh label statistics for the stats strip (and the labeler's consistency figures, when computed)."""

    def __init__(self, stats: Any, report: Any = None) -> None:
        super().__init__()
        self.stats = stats
        self.report = report


class MarkdownToggled(Message, bubble=False):
    """Responses are now shown as rendered Markdown (or as plain text)."""

    def __init__(self, markdown: bool) -> None:
        super().__init__()
        self.markdown = markdown


class WorkerFailed(Message):
    """A background worker hit an error it could not recover from by itself."""

    def __init__(self, where: str, summary: str, detail: str = "") -> None:
        super().__init__()
        self.where = where
        self.summary = summary
        self.detail = detail


class LabelStatsReady(Message):
    """Fresh labeling stats, computed off the UI thread (they scan every comparison)."""

    def __init__(self, stats, report=None) -> None:
        super().__init__()
        self.stats = stats
        self.report = report  # labeling.consistency.LabelerReport of this session's labeler, or None


# ---------------------------------------------------------------- the training thread
# The job runner flushes events about four times a second and calls `forward(batch)`
# once per flush; the App's forward posts one `JobEvents`, so the UI thread sees a
# handful of messages per second however fast the loop steps.


class JobEvents(Message):
    """A batch of loop events for one run, already persisted by the runner."""

    def __init__(self, run_id: str, events: list[Event]) -> None:
        super().__init__()
        self.run_id = run_id
        self.events = list(events)


class JobEnded(Message):
    """The training thread returned: the run's final status as the runner left it."""

    def __init__(self, run_id: str, status: str, summary: str = "") -> None:
        super().__init__()
        self.run_id = run_id
        self.status = status
        self.summary = summary
