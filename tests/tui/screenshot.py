"""Write an SVG (and PNG) screenshot of the label screen, for the docs.

    .venv/bin/python -m tests.tui.screenshot docs/screenshots/label.svg --home LAB [--size 120x36] [--fake]

Runs the lab headless on LAB (its models/ and db/), waits until a pair is on
screen and the queue is full, and exports Textual's SVG. The PNG is drawn with
cairosvg (a dev dependency) with a monospace font that exists on the machine,
since the SVG asks for Fira Code.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from tuilab.config import DEFAULT_MODEL, LabPaths

MONO_FONTS = ("DejaVu Sans Mono", "Liberation Mono", "Noto Sans Mono", "Menlo", "Consolas")


def svg_to_png(svg: str, png: Path, font: str = MONO_FONTS[0]) -> None:
    import cairosvg

    svg = svg.replace("font-family: Fira Code, monospace", f"font-family: {font}, monospace")
    svg = svg.replace('"Fira Code"', f'"{font}"')
    cairosvg.svg2png(bytestring=svg.encode(), write_to=str(png))


async def take(app, size: tuple[int, int], keys: list[str], timeout: float) -> str:
    async with app.run_test(size=size) as pilot:
        deadline = time.monotonic() + timeout
        while True:
            screen = app.screen
            full = app.feeder is not None and app.feeder.ready >= app.feeder.capacity
            if getattr(screen, "current", None) is not None and full or app.feed_state.phase == "failed":
                break
            if time.monotonic() > deadline:
                raise SystemExit("no pair within the timeout")
            await pilot.pause(0.1)
        if keys:
            await pilot.press(*keys)
            await pilot.pause(0.2)
        app.clear_notifications()
        await pilot.pause()
        return app.export_screenshot(title="tuilab")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SVG + PNG screenshot of the label screen")
    parser.add_argument("out", help="the .svg to write (a .png is written beside it)")
    parser.add_argument("--home", help="lab folder (models/ and db/)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--size", default="120x36")
    parser.add_argument("--fake", action="store_true", help="the deterministic fake generator")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--press", default="", help="keys to press first, comma-separated")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)

    from tests.labeling.fake_source import FakeCandidateSource
    from tuilab.labeling.candidates import SourceSpec
    from tuilab.tui.app import TuilabApp

    paths = LabPaths.resolve(args.home)
    kwargs: dict = {"seed": 0, "queue_size": 2, "spec": SourceSpec(max_new_tokens=args.max_new_tokens, seed=0)}
    if args.fake:
        kwargs["source"] = FakeCandidateSource()
    app = TuilabApp(paths, model=args.model, **kwargs)
    width, height = (int(x) for x in args.size.lower().split("x"))
    keys = [k for k in args.press.split(",") if k]
    svg = asyncio.run(take(app, (width, height), keys, args.timeout))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(svg)
    svg_to_png(svg, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
