"""How the train screen behaves while a job trains in the same process (prints figures; not a test).

    .venv/bin/python tests/tui/measure_ui.py [--seconds 20]

Trains a reward model on the tiny model from the train screen and reports:
- UI timer lateness (a 50 ms interval on the UI thread): p50 / p99 / max;
- chart redraws per second and the time one redraw of the charts takes;
- training steps per second with the screen open vs the same job headless.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))


def _lab(root: Path):
    from runhelp import add_pairs
    from tiny import save_tiny_model

    from tuilab.config import LabPaths
    from tuilab.store.db import open_db

    paths = LabPaths(root)
    db = open_db(paths.db)
    add_pairs(db, 48)
    db.conn.close()
    return paths, save_tiny_model(root / "tiny")


async def with_ui(paths, model: Path, seconds: float) -> dict:
    from runhelp import LabApp, wait_for

    from tuilab.tui.widgets.charts import MetricChart
    from tuilab.tui.widgets.run_panels import ChartPanel

    app = LabApp(paths.home)
    lateness: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        form = screen.query_one("#rm-form")
        form.set_value("base_model", str(model))
        form.set_value("epochs", "10000")
        form.set_value("batch_size", "4")
        await pilot.press("s")
        run_id = app.training.active
        live = app.training.live_run(run_id)
        await wait_for(pilot, lambda: bool(live.values("train/loss")))
        last = [time.perf_counter()]

        def beat() -> None:
            now = time.perf_counter()
            lateness.append(now - last[0] - 0.05)
            if lateness[-1] > 0.2:
                stalls.append((round(now - start, 1), round(1000 * lateness[-1]), live.step))
            last[0] = now

        stalls: list = []
        start = time.perf_counter()

        screen.set_interval(0.05, beat)
        panel = screen.query_one(ChartPanel)
        redraws0 = sum(c.redraws for c in panel.query(MetricChart))
        step0, t0 = live.step, time.perf_counter()
        await pilot.pause(seconds)
        steps = (live.step - step0) / (time.perf_counter() - t0)
        redraws = (sum(c.redraws for c in panel.query(MetricChart)) - redraws0) / seconds
        t = time.perf_counter()
        panel.show([("", live)], force=True)
        for plot in panel.query("_Plot"):
            plot.render()
        redraw_ms = 1000 * (time.perf_counter() - t)
        app.training.cancel()
        await wait_for(pilot, lambda: not live.is_active)
    if stalls:
        print("stalls over 200 ms (s since start, ms, step):", stalls)
    lat = sorted(x * 1000 for x in lateness[1:])
    return {"steps_per_s": steps, "late_p50_ms": statistics.median(lat), "late_p99_ms": lat[int(0.99 * (len(lat) - 1))],
            "late_max_ms": lat[-1], "redraws_per_s": redraws, "redraw_ms": redraw_ms, "points": len(live.values("train/loss"))}


def headless(paths, model: Path, seconds: float) -> float:
    import threading

    from tuilab.config import RewardConfig
    from tuilab.jobs.rm_job import reward_job
    from tuilab.jobs.runner import run_job
    from tuilab.training.events import Metrics, RunControl

    control = RunControl()
    marks: list[tuple[float, int]] = []

    def forward(events) -> None:
        for e in events:
            if isinstance(e, Metrics) and "train/loss" in e.values:
                marks.append((time.perf_counter(), e.step))
                if len(marks) == 1:
                    threading.Timer(seconds, control.cancel).start()

    run_job(reward_job(RewardConfig(base_model=str(model), epochs=10000, batch_size=4)), paths=paths,
            control=control, forward=forward)
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    return (s1 - s0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    import torch

    torch.set_num_threads(1)  # see conftest.one_torch_thread
    paths, model = _lab(root)
    ui = asyncio.run(with_ui(paths, model, args.seconds))
    alone = headless(paths, model, args.seconds)
    print(f"training with the train screen open: {ui['steps_per_s']:.1f} steps/s; headless: {alone:.1f} steps/s")
    print(f"UI timer lateness (50 ms interval): p50 {ui['late_p50_ms']:.1f} ms, p99 {ui['late_p99_ms']:.1f} ms, "
          f"max {ui['late_max_ms']:.1f} ms")
    print(f"chart redraws {ui['redraws_per_s']:.1f}/s; one forced redraw of both charts at {ui['points']} points: "
          f"{ui['redraw_ms']:.0f} ms (160×48)")


if __name__ == "__main__":
    main()
