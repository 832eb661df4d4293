"""Typed messages that thread workers post to the App (non-blocking `post_message`).

Workers never touch widgets: they post one of these, the App updates its state in
one handler and republishes it to whichever screens subscribed.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class FeedState:
    """What the candidate feeder is doing, as the label screen shows it."""

    phase: str = "starting"  # starting | loading | generating | idle | failed | no_prompts | stopped
    detail: str = ""
    ready: int = 0
    capacity: int = 4
    source: str = ""
    error: str = ""  # one-line reason when phase is failed / no_prompts
    traceback: str = ""
    eta_s: float | None = None  # expected seconds for the pair being generated
    started_at: float | None = None  # monotonic time the current generation began
    step: int | None = None  # decoding step of the current model call …
    steps: int | None = None  # … out of at most this many
    generation: int = 0  # which feeder (settings changes start a new one)


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


class WorkerFailed(Message):
    """A background worker hit an error it could not recover from by itself."""

    def __init__(self, where: str, summary: str, detail: str = "") -> None:
        super().__init__()
        self.where = where
        self.summary = summary
        self.detail = detail


class LabelStatsReady(Message):
    """Fresh labeling stats, computed off the UI thread (they scan every comparison)."""

    def __init__(self, stats) -> None:
        super().__init__()
        self.stats = stats
