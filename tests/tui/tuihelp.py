"""UI test helpers: a lab with fixed prompts and the deterministic fake candidate source (no torch).

(Named uniquely: test folders share one import namespace.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tuilab.config import LabPaths

PROMPTS: list = [
    "What is the capital of France?",
    "Explain how a rainbow forms.",
    "Write a haiku about autumn leaves.",
    "Give me three tips for a good night's sleep.",
    "Why do cats purr?",
    "Summarise the plot of Hamlet in two sentences.",
    [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "I want to learn Python."},
        {"role": "assistant", "content": "Start with the official tutorial."},
        {"role": "user", "content": "What should I build first?"},
    ],
    "How do I boil an egg?",
    "What is a prime number?",
    "Name a good book about the sea.",
]

FIXED_TIME = "2026-11-29T06:30:00.000Z"


def make_lab(root: Path, prompts: list | None = None) -> LabPaths:
    """A lab folder whose database holds `prompts` (all in the train split), nothing else."""
    from tuilab.store.db import open_db
    from tuilab.store.prompts import add_prompts

    paths = LabPaths(Path(root) / "lab")
    db = open_db(paths.db)
    if prompts is None:
        prompts = PROMPTS
    if prompts:
        add_prompts(db, prompts, source="test", split="train")
    db.conn.close()
    return paths


def make_app(paths: LabPaths, source=None, **kwargs):
    from tests.labeling.fake_source import FakeCandidateSource
    from tuilab.tui.app import TuilabApp

    kwargs.setdefault("seed", 0)
    kwargs.setdefault("queue_size", 3)
    return TuilabApp(paths, source=source or FakeCandidateSource(), **kwargs)


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds (fails the test after `timeout`)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)
    await pilot.pause()


async def ready(pilot, n: int = 1):
    """Wait until a pair is on the label screen and `n` more wait in the queue."""
    app = pilot.app
    await wait_for(pilot, lambda: app.screen.current is not None and app.feeder.ready >= n)
    return app.screen


def rows(paths: LabPaths, sql: str, params=()) -> list[tuple]:
    """Read through a fresh connection, as a process started after a kill -9 would."""
    import sqlite3

    conn = sqlite3.connect(paths.db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def add_comparisons(paths: LabPaths, specs: list[tuple[int, str]], *, strength: int = 1) -> list[int]:
    """Record a decision per (prompt index, decision) with fixed texts and times (snapshot-safe)."""
    from tuilab.records import Comparison
    from tuilab.store.comparisons import record_comparison
    from tuilab.store.db import open_db
    from tuilab.store.generations import add_generation

    db = open_db(paths.db)
    ids = []
    try:
        prompt_ids = [r[0] for r in db.execute("SELECT id FROM prompts ORDER BY id").fetchall()]
        for n, (index, decision) in enumerate(specs):
            pid = prompt_ids[index]
            left = add_generation(db, pid, f"Short answer {n}.", model="base-model", n_tokens=3,
                                  finished=True, params={"side": "A", "temperature": 0.8},
                                  created_at=FIXED_TIME)
            right = add_generation(db, pid, f"A longer answer number {n}, with **detail**.\n\n- one\n- two",
                                   model="base-model", adapter="runs/ppo-1/policy", n_tokens=14,
                                   finished=True, params={"side": "B", "temperature": 0.8},
                                   created_at=FIXED_TIME)
            ids.append(record_comparison(
                db,
                Comparison(prompt_id=pid, left_id=left, right_id=right, decision=decision,
                              swapped=n % 2 == 1, strength=strength, seconds=4.0 + n,
                              rationale="clearer" if n == 0 else ""),
                created_at=FIXED_TIME,
            ))
    finally:
        db.conn.close()
    return ids


def wait_for_thread(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Block until `condition()` holds (for tests of the feeder without an app)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


# ---------------------------------------------------------------- the data screen (test_data.py, test_detail.py)


def data_app(lab, **kw):
    return make_app(lab, start_feeder=False, mode="data", **kw)


async def open_data(pilot):
    """Wait for the data screen and return it."""
    from tuilab.tui.screens.data import DataScreen

    await wait_for(pilot, lambda: isinstance(pilot.app.screen, DataScreen))
    return pilot.app.screen


def table_ids(screen, which="#cmp-table") -> list[int]:
    from textual.widgets import DataTable

    table = screen.query_one(which, DataTable)
    return [int(table.get_row_at(i)[0]) for i in range(table.row_count)]


# ---------------------------------------------------------------- a modal on its own (test_confirm/note/editor.py)


def modal_host():
    """A bare App with the lab's stylesheet; `app.ask(modal)` pushes it and `app.results` collects its answers."""
    from textual.app import App

    from tuilab import tui

    class ModalHost(App):
        CSS_PATH = Path(tui.__file__).with_name("app.tcss")

        def __init__(self) -> None:
            super().__init__()
            self.results: list = []

        def ask(self, modal) -> None:
            self.push_screen(modal, self.results.append)

    return ModalHost()
