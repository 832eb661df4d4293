"""The UI's typed messages: who may post them, where they arrive, what they keep.

Workers post to the App (the message bubbles from wherever it is posted up to the App's handler);
the App tells screens with messages that stop at the screen (`bubble=False`), so a screen's own
redraw never re-enters the App's handlers.
"""

from __future__ import annotations

import copy
import threading

from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Static
from tuihelp import wait_for

from tuilab.labeling.queue import FeedState
from tuilab.training.events import Metrics, RunWarning
from tuilab.tui.messages import (
    FeedChanged,
    FeederUpdate,
    JobEnded,
    JobEvents,
    LabelStatsReady,
    MarkdownToggled,
    PairReady,
    StatsChanged,
    WorkerFailed,
)


def test_job_events_keeps_its_own_list_whatever_the_sender_does_with_its_batch():
    batch = [Metrics(1, {"train/loss": 0.7})]
    message = JobEvents("rm-1", batch)
    batch.clear()  # the runner reuses its buffer for the next flush
    batch.append(Metrics(2, {"train/loss": 0.6}))
    assert message.run_id == "rm-1" and message.events == [Metrics(1, {"train/loss": 0.7})]
    assert JobEvents("rm-1", (e for e in [RunWarning(3, "length_bias", "longer wins")])).events[0].step == 3


def test_defaults_are_empty_words_not_none():
    assert JobEnded("ppo-1", "completed").summary == ""
    assert WorkerFailed("Feeder", "boom").detail == ""
    assert StatsChanged(stats={"total": 1}).report is None and LabelStatsReady(stats=None).report is None


class Log(Static):
    """A widget deep in a screen: where a worker's message might be posted."""


class Recorder(Screen):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[str] = []

    def compose(self) -> ComposeResult:
        yield Log("")

    def on_feed_changed(self, message: FeedChanged) -> None:
        self.got.append(f"feed {message.state.phase}")

    def on_stats_changed(self, message: StatsChanged) -> None:
        self.got.append(f"stats {message.stats}")

    def on_markdown_toggled(self, message: MarkdownToggled) -> None:
        self.got.append(f"markdown {message.markdown}")


class Host(App):
    """Handlers named as the lab's App names them; records what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[str] = []

    def on_mount(self) -> None:
        self.push_screen(Recorder())

    def on_feeder_update(self, message: FeederUpdate) -> None:
        self.got.append(f"feeder {message.state.ready}")

    def on_pair_ready(self, message: PairReady) -> None:
        self.got.append(f"pair {message.prompt_id}")

    def on_worker_failed(self, message: WorkerFailed) -> None:
        self.got.append(f"failed {message.where}: {message.summary}")

    def on_label_stats_ready(self, message: LabelStatsReady) -> None:
        self.got.append(f"label stats {message.stats}")

    def on_job_events(self, message: JobEvents) -> None:
        self.got.append(f"events {message.run_id} {len(message.events)}")

    def on_job_ended(self, message: JobEnded) -> None:
        self.got.append(f"ended {message.run_id} {message.status}")

    def on_feed_changed(self, message: FeedChanged) -> None:
        self.got.append("feed reached the App")

    def on_stats_changed(self, message: StatsChanged) -> None:
        self.got.append("stats reached the App")

    def on_markdown_toggled(self, message: MarkdownToggled) -> None:
        self.got.append("markdown reached the App")


async def test_worker_messages_bubble_up_to_the_app_from_any_thread():
    app = Host()
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, Recorder))
        deep = app.screen.query_one(Log)
        deep.post_message(FeederUpdate(FeedState(ready=2)))
        deep.post_message(WorkerFailed("Feeder", "the model could not be loaded"))

        def worker() -> None:  # what the feeder and the training thread do: post, never touch widgets
            app.post_message(PairReady(FeedState(ready=3), prompt_id=7))
            app.post_message(LabelStatsReady(stats="s"))
            app.post_message(JobEvents("ppo-1", [Metrics(1, {}), Metrics(2, {})]))
            app.post_message(JobEnded("ppo-1", "cancelled"))

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        await wait_for(pilot, lambda: len(app.got) == 6)
        assert sorted(app.got) == sorted(["feeder 2", "failed Feeder: the model could not be loaded", "pair 7",
                                          "label stats s", "events ppo-1 2", "ended ppo-1 cancelled"])
        assert app.got.index("events ppo-1 2") < app.got.index("ended ppo-1 cancelled")  # one queue, in order


async def test_screen_messages_stop_at_the_screen():
    app = Host()
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, Recorder))
        screen = app.screen
        for message in (FeedChanged(FeedState(phase="idle")), StatsChanged(stats=5), MarkdownToggled(True)):
            screen.post_message(copy.copy(message))  # as the App's tell_screens does
        await wait_for(pilot, lambda: len(screen.got) == 3)
        await pilot.pause(0.05)
        assert screen.got == ["feed idle", "stats 5", "markdown True"]
        assert app.got == []  # none of them re-entered the App
