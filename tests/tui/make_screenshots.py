"""Write docs/screenshots/{train,runs,inspect}.{svg,png} from a lab with recorded runs (not a test).

    .venv/bin/python tests/tui/make_screenshots.py --home LAB [--size 140x42]

LAB is a lab folder whose database holds a reward-model run and a PPO run
(e.g. the length-bias scenario: tuilab/data/scenarios/length_bias/README.md).
The train screen is shown mid-run: the newest PPO run replayed up to two
thirds of its updates, as it looked while it trained. The runs screen shows
the reward-model run; the inspector the PPO run sorted by flags, with the
first sample marked hacked (in a copy of the database, so LAB is untouched).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

ROOT = Path(__file__).resolve().parents[2]


def _copy_lab(home: Path) -> Path:
    """A scratch copy of the lab's database (WAL checkpointed first)."""
    from tuilab.config import LabPaths
    from tuilab.store.db import open_db

    src = LabPaths(home).db
    db = open_db(src)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    scratch = Path(tempfile.mkdtemp()) / "lab"
    (scratch / "db").mkdir(parents=True)
    shutil.copy(src, scratch / "db" / "lab.db")
    return scratch


def _replay(app, run_id: str, fraction: float) -> None:
    """Put a finished PPO run back in its middle: series cut at `fraction` of the steps, status running."""
    live = app.training.live_run(run_id, reload=True)
    last = max((pts[-1][0] for pts in live.series.values() if pts), default=0)
    cut = max(1, int(last * fraction))
    live.series = {k: [p for p in v if p[0] <= cut] for k, v in live.series.items()}
    live.samples = [s for s in live.samples if s.step <= cut]
    live.warnings = [w for w in live.warnings if w.step <= cut]
    live.status, live.step, live.final_metrics = "running", cut, {}
    now = time.monotonic()
    per_step = 21.0  # seconds an update took on the recording machine, for a plausible ETA
    live._clock = [(now - per_step * cut, 0), (now, cut)]
    live.touch()
    app.training.last = app.training.active = run_id  # buttons as during a run (no thread: nothing to stop)


async def shoot(home: Path, size: tuple[int, int], out: Path) -> None:
    from pngs import svg_to_png
    from runhelp import wait_for

    from tuilab.config import LabPaths
    from tuilab.store.runs import list_runs
    from tuilab.tui.app import TuilabApp
    from tuilab.tui.widgets.charts import MetricChart
    from tuilab.tui.widgets.run_panels import composed

    def drawn(app) -> bool:
        return all(c.drawn for c in app.screen.query(MetricChart) if c.display)

    scratch = _copy_lab(home)
    app = TuilabApp(LabPaths(scratch), start_feeder=False, mode="runs")  # the lab's own App, generator off
    async with app.run_test(size=size) as pilot:
        runs = list_runs(app.db)
        ppo = next(r.id for r in runs if r.kind == "ppo")
        rm = next(r.id for r in runs if r.kind == "rm")
        screen = app.screen
        await pilot.pause(0.5)
        screen.show_run(rm)
        await wait_for(pilot, lambda: rm in str(screen.query_one("#runs-line").render()))
        await wait_for(pilot, lambda: drawn(app))
        await pilot.pause(0.5)
        await wait_for(pilot, lambda: drawn(app))
        await pilot.pause(0.2)
        app.save_screenshot(str(out / "runs.svg"))

        app.open_inspector(ppo)
        await pilot.pause(0.5)
        await wait_for(pilot, lambda: composed(app.screen, "#insp-table")
                       and app.screen.query_one("#insp-table").row_count > 0)
        await pilot.press("f", "h")
        await pilot.pause(0.5)
        app.save_screenshot(str(out / "inspect.svg"))

        _replay(app, ppo, 2 / 3)
        app.switch_mode("train")
        await wait_for(pilot, lambda: composed(app.screen, "#run-line") and drawn(app)
                       and ppo in str(app.screen.query_one("#run-line").render()))
        await pilot.pause(0.5)
        await wait_for(pilot, lambda: drawn(app))  # a late layout change (warnings shown) redraws once more
        await pilot.pause(0.2)
        app.save_screenshot(str(out / "train.svg"))
    for name in ("train", "runs", "inspect"):
        svg_to_png(out / f"{name}.svg", out / f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--size", default="140x42")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(args.home, (w, h), args.out))
    print(f"wrote {args.out}/train, runs, inspect (.svg, .png)")


if __name__ == "__main__":
    main()
