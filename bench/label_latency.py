"""Label screen latency: decision key pressed → next pair rendered, with the model generating behind.

    tuilab models setup                      # once: the default model (else: --source fake)
    python bench/label_latency.py [--decisions 200] [--queue 4] [--max-new-tokens 32]
                                  [--source auto|model|fake] [--model NAME] [--size 120x36]

Runs the real App under Textual's Pilot on a throwaway lab (the shipped demo
prompts). Before each key the queue holds a ready pair (a warm queue: the wait
for it is not timed); the generation worker keeps refilling it, so most keys
land while the model is decoding in the other thread. Timed: from the key
event's creation (what a terminal driver would produce) to just after the
screen has refreshed with the next pair (`LabelScreen.PairShown`, posted from
`call_after_refresh`); also reported from the moment the Pilot starts injecting
the key. The headless driver skips only the final write to the terminal.

`--source auto` uses the real model when it is imported, else the deterministic
fake generator (and says so); `--source fake` forces it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402

from tests.labeling.fake_source import FakeCandidateSource  # noqa: E402
from tuilab.config import DEFAULT_MODEL, LabPaths  # noqa: E402
from tuilab.labeling.candidates import SourceSpec  # noqa: E402
from tuilab.tui.app import TuilabApp  # noqa: E402
from tuilab.tui.screens.label import LabelScreen  # noqa: E402

KEYS = ["1", "2", "t", "left", "right", "b", "s", "exclamation_mark"]
COMMITS: list[float] = []  # wall ms inside record_comparison (SQLite insert + fsync)


def time_commits() -> None:
    """Wrap the store's `record_comparison` to time each committed decision."""
    import tuilab.store.comparisons as comparisons

    original = comparisons.record_comparison

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            COMMITS.append((time.perf_counter() - t0) * 1000)

    comparisons.record_comparison = timed


class BenchApp(TuilabApp):
    """The lab app, noting when each pair has been rendered."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.shown: list[tuple[float, int]] = []
        self.key_times: list[float] = []
        self.key_cpu: list[float] = []
        self.shown_cpu: list[float] = []

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.key_times.append(event.time)  # when the driver produced the key
            self.key_cpu.append(time.thread_time())
        await super().on_event(event)

    def on_label_screen_pair_shown(self, message: LabelScreen.PairShown) -> None:
        self.shown_cpu.append(time.thread_time())  # CPU time of the UI thread (this one)
        self.shown.append((message.time, message.pair.left_id))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def model_available(models_dir: Path, model: str) -> str | None:
    """None when the model resolves, else why not."""
    try:
        from tuilab.modeling.registry import resolve_model

        resolve_model(model, models_dir)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


async def run(args: argparse.Namespace) -> dict:
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="tuilab-bench-"))
    try:
        return await _run(args, home)
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)


async def _run(args: argparse.Namespace, home: Path) -> dict:
    paths = LabPaths(home)  # a throwaway database with the demo prompts
    models_dir = Path(args.models) if args.models else ROOT / "models"
    folder = models_dir / args.model
    model = str(folder) if folder.is_dir() else args.model
    source_kind = args.source
    note = ""
    if source_kind in ("auto", "model"):
        why = model_available(models_dir, args.model)
        if why and source_kind == "model":
            raise SystemExit(f"--source model: {why}")
        if why:
            source_kind, note = "fake", f"model not available ({why.splitlines()[0]}); used the fake generator"
        else:
            source_kind = "model"
    kwargs: dict = {"queue_size": args.queue, "seed": 0, "model": model,
                    "spec": SourceSpec(max_new_tokens=args.max_new_tokens, seed=0)}
    if source_kind == "fake":
        kwargs["source"] = FakeCandidateSource(delay=args.fake_delay)
    app = BenchApp(paths, **kwargs)
    width, height = (int(x) for x in args.size.lower().split("x"))
    latencies: list[float] = []  # key event → pair rendered
    cpu: list[float] = []  # UI-thread CPU time over the same span
    injected: list[float] = []  # Pilot starts injecting the key → pair rendered
    during_generation: list[float] = []
    t_start = time.monotonic()
    async with app.run_test(size=(width, height)) as pilot:
        screen = app.screen
        deadline = time.monotonic() + args.warmup_timeout
        while not (screen.current is not None and app.feeder.ready >= min(args.queue, 2)):
            if app.feed_state.phase == "failed":
                raise SystemExit(f"generation failed: {app.feed_state.error}")
            if time.monotonic() > deadline:
                raise SystemExit("the queue did not warm up in time")
            await pilot.pause(0.05)
        warm_s = time.monotonic() - t_start
        for i in range(args.decisions):
            while app.feeder.ready < 1:  # warm queue: not timed
                if app.feed_state.phase == "failed":
                    raise SystemExit(f"generation failed: {app.feed_state.error}")
                await pilot.pause(0.02)
            busy = app.feed_state.phase in ("generating", "loading")
            before = len(app.shown)
            t0 = time.monotonic()
            await pilot.press(KEYS[i % len(KEYS)])
            while len(app.shown) == before:
                await pilot.pause(0.001)
            shown_at = app.shown[-1][0]
            injected.append((shown_at - t0) * 1000)
            dt = (shown_at - app.key_times[-1]) * 1000
            latencies.append(dt)
            cpu.append((app.shown_cpu[-1] - app.key_cpu[-1]) * 1000)
            if busy:
                during_generation.append(dt)
            if args.progress and (i + 1) % 25 == 0:
                print(f"  {i + 1} decisions, p95 so far {percentile(latencies, 0.95):.1f} ms", file=sys.stderr)
        total_s = time.monotonic() - t_start
        decided = app.db.execute("SELECT count(*) FROM comparisons").fetchone()[0]
    result = {
        "decisions": len(latencies),
        "stored": decided,
        "source": source_kind,
        "model": args.model if source_kind == "model" else "fake",
        "max_new_tokens": args.max_new_tokens,
        "queue": args.queue,
        "size": args.size,
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "max_ms": round(max(latencies), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "commit_p50_ms": round(percentile(COMMITS, 0.5), 2) if COMMITS else None,
        "commit_p95_ms": round(percentile(COMMITS, 0.95), 2) if COMMITS else None,
        "ui_cpu_p50_ms": round(percentile(cpu, 0.5), 2),
        "ui_cpu_p95_ms": round(percentile(cpu, 0.95), 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "with_pilot_p50_ms": round(percentile(injected, 0.5), 2),
        "with_pilot_p95_ms": round(percentile(injected, 0.95), 2),
        "while_generating": len(during_generation),
        "while_generating_p95_ms": round(percentile(during_generation, 0.95), 2) if during_generation else None,
        "warmup_s": round(warm_s, 1),
        "total_s": round(total_s, 1),
        "note": note,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--queue", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--source", choices=("auto", "model", "fake"), default="auto")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--models", help="models folder (default: the repository's models/)")
    parser.add_argument("--home", help="lab folder for the throwaway database (default: a temp dir)")
    parser.add_argument("--size", default="120x36", help="terminal size, WxH")
    parser.add_argument("--fake-delay", type=float, default=0.05, help="seconds per pair of the fake generator")
    parser.add_argument("--warmup-timeout", type=float, default=600)
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--progress", action="store_true", help="report every 25 decisions on stderr")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval for this run (GIL)")
    args = parser.parse_args(argv)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    time_commits()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"label latency, key → next pair rendered ({result['decisions']} decisions, "
          f"{result['source']} generator: {result['model']}, queue {result['queue']}, {result['size']})")
    print(f"  p50 {result['p50_ms']} ms   p95 {result['p95_ms']} ms   max {result['max_ms']} ms   "
          f"mean {result['mean_ms']} ms")
    print(f"  UI-thread CPU time over the same span: p50 {result['ui_cpu_p50_ms']} ms, "
          f"p95 {result['ui_cpu_p95_ms']} ms (load average {result['load_avg_1m']} on {os.cpu_count()} cores)")
    print(f"  committing each decision (SQLite insert + fsync, wall): p50 {result['commit_p50_ms']} ms, "
          f"p95 {result['commit_p95_ms']} ms")
    print(f"  (counting the Pilot's injection too: p50 {result['with_pilot_p50_ms']} ms, "
          f"p95 {result['with_pilot_p95_ms']} ms)")
    if result["while_generating"]:
        print(f"  {result['while_generating']} keys while the model was generating: "
              f"p95 {result['while_generating_p95_ms']} ms")
    print(f"  {result['stored']} comparisons stored · warm-up {result['warmup_s']} s · total {result['total_s']} s")
    if result["note"]:
        print(f"  note: {result['note']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
