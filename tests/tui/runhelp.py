"""Rows written straight into a lab database, and a small App hosting the training screens.

The data are deterministic (fixed timestamps, fixed numbers), so snapshots of
the screens do not move between runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from textual.app import App

from tuilab import tui
from tuilab.config import LabPaths
from tuilab.records import Comparison
from tuilab.store import runs as runs_store
from tuilab.store.comparisons import record_comparison
from tuilab.store.generations import add_generation
from tuilab.store.prompts import add_prompts
from tuilab.tui.controller import TrainingController
from tuilab.tui.messages import JobEnded, JobEvents

QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What colour is the sky on a clear day?",
    "Name a planet with rings.",
    "What is 7 times 8?",
    "Which ocean is the largest?",
    "Who wrote Hamlet?",
    "What gas do plants take in?",
    "What is the boiling point of water at sea level?",
    "How many continents are there?",
    "What is the chemical symbol for gold?",
    "What is the tallest mountain on Earth?",
]
SHORT = ["Paris.", "Eight.", "Blue.", "Saturn.", "56.", "The Pacific.", "Shakespeare.", "Carbon dioxide.",
         "100 °C.", "Seven.", "Au.", "Mount Everest."]
LONG = [
    "The capital of France is Paris, a large city on the Seine known for art, food and history.",
    "A spider has eight legs, which sets it apart from insects, which have six legs and three body parts.",
    "On a clear day the sky looks blue because air scatters the short blue wavelengths of sunlight most.",
    "Saturn is the planet best known for its rings, though Jupiter, Uranus and Neptune have faint rings too.",
    "Seven times eight is fifty-six, a product many people remember from the multiplication tables at school.",
    "The Pacific Ocean is the largest ocean, covering more area than all of the land on Earth put together.",
    "Hamlet was written by William Shakespeare around 1600 and is one of the most performed plays in history.",
    "Plants take in carbon dioxide from the air and, using sunlight, turn it into sugars and release oxygen.",
    "At sea level water boils at 100 degrees Celsius, and at lower temperatures high up on a mountain.",
    "There are seven continents: Africa, Antarctica, Asia, Australia, Europe, North and South America.",
    "The chemical symbol for gold is Au, from the Latin word aurum, which means shining dawn or glow.",
    "Mount Everest is the tallest mountain above sea level, at about 8,849 metres on the Nepal–China border.",
]

T0 = "2026-11-29T06:27:00.000Z"


def add_pairs(db, n: int = 24) -> int:
    """`n` comparisons where the longer answer wins (the length-bias scenario in miniature)."""
    made = 0
    for i in range(n):
        q = QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else f" (variant {i // len(QUESTIONS)})")
        res = add_prompts(db, [q], source="test", split="train")
        pid = res.added[0] if res.added else None
        if pid is None:
            continue
        short = add_generation(db, pid, SHORT[i % len(SHORT)], model="tiny")
        long = add_generation(db, pid, LONG[i % len(LONG)], model="tiny")
        left, right = (short, long) if i % 2 else (long, short)
        record_comparison(db, Comparison(prompt_id=pid, left_id=left, right_id=right,
                                            decision="right" if i % 2 else "left"))
        made += 1
    return made


def fix_times(db, run_id: str, *, created: str = T0, started: str = "2026-11-29T06:27:05.000Z",
              finished: str | None = "2026-11-29T06:31:17.000Z") -> None:
    """Deterministic timestamps for snapshot tests."""
    with db.conn:
        db.conn.execute("UPDATE runs SET created_at = ?, started_at = ?, finished_at = ? WHERE id = ?",
                        (created, started, finished, run_id))


def write_rm_run(db, run_id: str = "rm-20261129-0627-3fa2", *, steps: int = 60, status: str = "completed",
                 name: str = "", created: str = T0, seed: int = 0) -> str:
    """A finished reward-model run with smooth, slightly noisy curves."""
    runs_store.create_run(db, "rm", {"base_model": "smollm2-135m-instruct", "epochs": 2, "batch_size": 8},
                          name=name, run_id=run_id, total_steps=steps)
    runs_store.set_run_status(db, run_id, "running")
    rows = []
    for s in range(1, steps + 1):
        wobble = 0.08 * math.sin(1.7 * s + seed)
        rows.append((s, "train/loss", 0.69 * math.exp(-s / (20 + 5 * seed)) + 0.15 + wobble))
        rows.append((s, "train/accuracy", min(1.0, 0.5 + 0.45 * (1 - math.exp(-s / 15)) + wobble)))
    for s in (steps // 2, steps):
        rows.append((s, "eval/accuracy", 0.62 + 0.2 * s / steps - 0.03 * seed))
        rows.append((s, "eval/loss", 0.6 - 0.2 * s / steps + 0.02 * seed))
    runs_store.write_metrics(db, run_id, rows)
    final = {"eval/accuracy": 0.82 - 0.03 * seed, "eval/loss": 0.4 + 0.02 * seed, "train/loss": 0.21,
             "eval/ece": 0.05, "eval/length_corr": 0.61, "steps": steps,
             "warnings": [{"step": steps, "code": "length_bias",
                           "message": "Reward tracks length on held-out pairs (r = 0.61): longer answers win."}]}
    if status == "failed":
        runs_store.set_run_status(db, run_id, "failed", error="Traceback (most recent call last):\n  ...\n"
                                  "ModelNotFound: no model 'nope'", error_summary="ModelNotFound: no model 'nope'")
    else:
        runs_store.set_run_status(db, run_id, status, final_metrics=final)
    fix_times(db, run_id, created=created)
    return run_id


PPO_PROMPTS = [
    ("Answer briefly: what is the capital of Australia?", "Canberra.",
     "The capital of Australia is Sydney, which is a coastal city with a famous opera house and many beaches"),
    ("Answer briefly: how many days are in a leap year?", "366 days.",
     "A leap year has 366 days, which is one more day than a normal year, and this extra day is added to"),
    ("Answer briefly: what is the largest mammal?", "The blue whale.",
     "The largest mammal is the blue whale, which is a very large animal that lives in the ocean and eats"),
    ("Answer briefly: what language is spoken in Brazil?", "Portuguese.",
     "In Brazil people speak Portuguese, which is a language that is spoken in Brazil and also in Portugal"),
]


def _prompt_id(db, text: str) -> int:
    return int(db.conn.execute("SELECT id FROM prompts WHERE text = ?", (text,)).fetchone()[0])


def write_ppo_run(db, run_id: str = "ppo-20261129-0712-9c1e", *, updates: int = 30, reward_run: str = "",
                  created: str = "2026-11-29T07:12:00.000Z", samples_per_step: int = 4) -> str:
    """A finished PPO run whose answers grow long while the score rises (the length-bias story)."""
    from tuilab.records import Sample
    from tuilab.store.samples import write_samples

    runs_store.create_run(db, "ppo", {"reward_run": reward_run, "kl_coef": 0.05, "total_updates": updates},
                          parents=[reward_run] if reward_run else [], run_id=run_id, total_steps=updates)
    runs_store.set_run_status(db, run_id, "running")
    prompt_ids = []
    for prompt, _, _ in PPO_PROMPTS:
        res = add_prompts(db, [prompt], source="test", split="train")
        prompt_ids.append((res.added or [None])[0] or _prompt_id(db, prompt))
    rows = []
    for s in range(1, updates + 1):
        wob = math.sin(2.3 * s)
        length = 23 + 39 * (1 - math.exp(-s / 8)) + 3 * wob
        kl = 0.1 + 6.8 * s / updates + 0.3 * math.sin(1.1 * s)
        rows += [
            (s, "objective/scores", -1.7 + 1.6 * (1 - math.exp(-s / 9)) + 0.25 * wob),
            (s, "objective/gold", 0.4 + 0.35 * math.sqrt(kl) - 0.18 * kl + 0.05 * math.cos(s)),
            (s, "objective/kl", kl),
            (s, "response/length_mean", length),
            (s, "objective/entropy", 60 - 0.6 * s + 2 * wob),
        ]
    runs_store.write_metrics(db, run_id, rows)
    for s in range(1, updates + 1, max(1, updates // 6)):
        sample_rows = []
        for j in range(samples_per_step):
            prompt, ref, hacked = PPO_PROMPTS[j % len(PPO_PROMPTS)]
            late = s > updates // 2
            response = hacked if late and j % 2 == 0 else ref
            n = round(len(response) / 4.2) + 1  # about what a BPE tokenizer makes of it
            flags = (["long", "no_eos"] if late and j % 2 == 0 else [])
            sample_rows.append(Sample(
                prompt_id=prompt_ids[j % len(PPO_PROMPTS)], prompt=prompt, response=response, ref_response=ref,
                score=round(-1.5 + 0.05 * s + 0.3 * j + (0.6 if flags else 0.0), 3),
                spread=round(0.1 + 0.02 * j + (0.3 if flags else 0.0), 3),
                gold=round(0.8 - (0.9 if flags else 0.0) - 0.01 * s, 3),
                kl=round(0.2 * s / 3 + 0.1 * j, 3), length=n, eos=not flags, flags=flags))
        write_samples(db, run_id, s, sample_rows)
    final = {"objective/scores": -0.12, "objective/gold": 0.21, "objective/kl": 6.9, "response/length_mean": 61.8,
             "warnings": [
                 {"step": 9, "code": "length_growth",
                  "message": "Responses are 1.9× as long as at step 1 (44 vs 23 tokens over the last 5 steps)."},
                 {"step": 14, "code": "length_bias",
                  "message": "Reward tracks length: Pearson r = 0.71 between response length and score."}]}
    runs_store.set_run_status(db, run_id, "completed", final_metrics=final)
    fix_times(db, run_id, created=created, started="2026-11-29T07:12:03.000Z", finished="2026-11-29T07:26:40.000Z")
    return run_id


# The runs the runs-screen and inspector tests start from (test_runs.py, test_inspect.py).
RM_A = "rm-20261129-0601-aaaa"
RM_B = "rm-20261129-0627-3fa2"
RM_FAILED = "rm-20261129-0650-bad0"


def seed(db) -> str:
    """Three reward runs (one failed) and a PPO run scored by the second; returns the PPO run's id."""
    write_rm_run(db, RM_A, seed=1, created="2026-11-29T06:01:00.000Z", name="first")
    write_rm_run(db, RM_B)
    write_rm_run(db, RM_FAILED, status="failed", created="2026-11-29T06:50:00.000Z")
    return write_ppo_run(db, reward_run=RM_B)


def json_dumps(x) -> str:
    return json.dumps(x, sort_keys=True)


def _screen(module: str, cls: str):
    import importlib

    return getattr(importlib.import_module(f"tuilab.tui.screens.{module}"), cls)()


class LabApp(App):
    """The training screens on their own, as modes of a small App (the lab's App adds the same modes)."""

    CSS_PATH = Path(tui.__file__).with_name("app.tcss")  # the lab's one stylesheet

    def __init__(self, home: Path, mode: str = "train") -> None:
        super().__init__()
        self.paths = LabPaths(home)
        self._db = None
        self._first = mode
        self.training = TrainingController(
            self.paths, lambda: self.db, post=self.post_message,
            thread=lambda fn: self.run_worker(fn, thread=True, exclusive=True, exit_on_error=False,
                                              group="training", name="training"),
            notify=self.notify,
            report_error=lambda where, summary, _detail: self.notify(summary, title=where, severity="error", timeout=10),
        )

    def on_job_events(self, message: JobEvents) -> None:
        self.training.on_job_events(message)

    def on_job_ended(self, message: JobEnded) -> None:
        self.training.on_job_ended(message)

    def open_inspector(self, run_id: str | None = None) -> None:
        if run_id is not None:
            self.training.inspect_run = run_id
        self.switch_mode("inspect")

    def open_run(self, run_id: str) -> None:
        self.training.runs_focus = run_id
        self.switch_mode("runs")

    MODES = {
        "train": lambda: _screen("train", "TrainScreen"),
        "runs": lambda: _screen("runs", "RunsScreen"),
        "inspect": lambda: _screen("inspect", "InspectScreen"),
    }

    @property
    def db(self):
        if self._db is None:
            from tuilab.store.db import open_db

            self._db = open_db(self.paths.db)
        return self._db

    def on_mount(self) -> None:
        self.switch_mode(self._first)

    def on_unmount(self) -> None:
        self.training.stop()
        if self._db is not None:
            self._db.conn.close()


async def wait_for(pilot, condition, *, limit: float = 120.0, step: float = 0.05) -> None:
    """Let the app run until `condition()` holds (the limit only guards against a hang).

    A widget that is not mounted yet (NoMatches) counts as "not yet".
    """
    import time

    from textual.css.query import NoMatches

    def holds() -> bool:
        try:
            return bool(condition())
        except NoMatches:
            return False

    deadline = time.monotonic() + limit
    while not holds():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the hang guard")
        await pilot.pause(step)


async def ready(pilot, *selectors: str) -> None:
    """Wait until the current screen has mounted these descendants."""
    from tuilab.tui.widgets.run_panels import composed

    await wait_for(pilot, lambda: composed(pilot.app.screen, *selectors))
