"""Typed messages that thread workers post to the App (non-blocking `post_message`).

Workers never touch widgets: they post one of these, the App updates its state in
one handler and republishes it to whichever screens subscribed.
"""

from __future__ import annotations

from textual.message import Message

from tuilab.labeling.queue import FeedState


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
