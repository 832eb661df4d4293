"""Messages from the training thread to the App.

The job runner flushes events about four times a second and calls `forward(batch)`
once per flush; the App's forward posts one `JobEvents` (non-blocking
`post_message`), so the UI thread sees a handful of messages per second however
fast the loop steps.
"""

from __future__ import annotations

from textual.message import Message

from tuilab.training.events import Event


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
