"""Live metric charts: textual-plot line charts fed from `LiveRun`s, redrawn only when data changed.

A chart is described by a `ChartSpec` (title + series, each series a list of
metric names to try in order, so a chart survives a renamed metric). The
screen calls `MetricChart.show(sources, x_mode)` from a timer; the chart
computes a signature (run versions, axis mode, width) and replots only when it
moved. Points are downsampled to ~2× the chart width before plotting (drawing
cost grows with the number of points) and noisy per-update curves get a
5-point moving average drawn over a dim raw line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.widgets import Static
from textual_plot import HiResMode, PlotWidget

from tuilab.tui.live import LiveRun, downsample, moving_average, sqrt_kl_axis

STEP = "step"
SQRT_KL = "sqrt_kl"


@dataclass(frozen=True)
class SeriesSpec:
    """One curve: the first metric name found in the run, how to draw it."""

    names: tuple[str, ...]
    label: str
    color: str
    smooth: bool = False  # raw line dim + moving average bright
    markers: bool = False  # sparse points (eval per epoch): markers joined by a line


@dataclass(frozen=True)
class ChartSpec:
    key: str
    title: str
    series: tuple[SeriesSpec, ...]


# Metric names as the loops emit them; later names are fallbacks.
KL_NAMES = ("objective/kl", "ppo/kl", "policy/kl", "kl")

RM_CHARTS = (
    ChartSpec("loss", "Loss", (
        SeriesSpec(("train/loss",), "train", "dodger_blue1", smooth=True),
        SeriesSpec(("eval/loss",), "eval", "orange1", markers=True),
    )),
    ChartSpec("accuracy", "Accuracy", (
        SeriesSpec(("train/accuracy",), "train", "green3", smooth=True),
        SeriesSpec(("eval/accuracy",), "eval", "orange1", markers=True),
    )),
)

PPO_CHARTS = (
    ChartSpec("score", "Score", (
        SeriesSpec(("objective/scores", "objective/score", "env/score", "ppo/score", "score/mean"), "RM score",
                   "green3", smooth=True),
        SeriesSpec(("objective/gold", "gold/mean", "env/gold", "ppo/gold", "gold"), "gold", "orange1",
                   smooth=True),
    )),
    ChartSpec("kl", "KL to reference", (
        SeriesSpec(KL_NAMES, "KL", "magenta", smooth=True),
    )),
    ChartSpec("length", "Response length (tokens)", (
        SeriesSpec(("response/length_mean", "objective/length", "env/length", "samples/length"),
                   "length", "dodger_blue1", smooth=True),
    )),
    ChartSpec("entropy", "Entropy", (
        SeriesSpec(("objective/entropy", "policy/entropy", "entropy"), "entropy", "cyan", smooth=True),
    )),
    # PPO health: a critic worse than a constant (< 0) and a policy that stopped moving (both ~0).
    ChartSpec("critic", "Critic: explained variance (> 0 fits)", (
        SeriesSpec(("val/explained_variance",), "explained var.", "yellow", smooth=True),
    )),
    ChartSpec("step", "Policy step: approx-KL, clip fraction", (
        SeriesSpec(("policy/approxkl_avg",), "approx-KL", "magenta", smooth=True),
        SeriesSpec(("policy/clipfrac_avg",), "clip frac.", "cyan", smooth=True),
    )),
)

# DPO: the held-out answers' implicit reward, gold, KL and length (sampled every `sample_every` steps,
# so the √KL axis works as for PPO), and how often the implicit reward prefers the chosen answer.
DPO_CHARTS = (
    ChartSpec("score", "Implicit reward (held-out answers)", (
        SeriesSpec(("objective/scores",), "β·log π/π_ref", "green3", smooth=True),
        SeriesSpec(("objective/gold",), "gold", "orange1", smooth=True),
    )),
    ChartSpec("kl", "KL to reference", (
        SeriesSpec(KL_NAMES, "KL", "magenta", smooth=True),
    )),
    ChartSpec("length", "Response length (tokens)", (
        SeriesSpec(("response/length_mean",), "length", "dodger_blue1", smooth=True),
    )),
    ChartSpec("accuracy", "Preference accuracy", (
        SeriesSpec(("rewards/accuracies",), "train", "green3", smooth=True),
        SeriesSpec(("eval/accuracy",), "held-out", "orange1", markers=True),
    )),
)

# Compared runs: run A in the first colour, run B in the second.
COMPARE_COLORS = ("dodger_blue1", "orange1")


def charts_for(kind: str) -> tuple[ChartSpec, ...]:
    return {"ppo": PPO_CHARTS, "dpo": DPO_CHARTS}.get(kind, RM_CHARTS)


@dataclass
class Curve:
    label: str
    xs: list[float]
    ys: list[float]
    color: str
    markers: bool = False


def curves_for(
    spec: ChartSpec,
    sources: Sequence[tuple[str, LiveRun]],
    x_mode: str = STEP,
    limit: int = 200,
    colors: Sequence[str] | None = None,
) -> list[Curve]:
    """The curves of one chart. `sources` are (prefix, run); with several runs each gets one colour."""
    out: list[Curve] = []
    compare = len(sources) > 1
    for i, (prefix, live) in enumerate(sources):
        kl = live.values(live.first_present(KL_NAMES) or "") if x_mode == SQRT_KL else []
        for s in spec.series:
            name = live.first_present(s.names)
            if name is None:
                continue
            points = live.values(name)
            if x_mode == SQRT_KL:
                xs, ys = sqrt_kl_axis(points, kl)
            else:
                xs = [float(p[0]) for p in points]
                ys = [p[1] for p in points]
            if not xs:
                continue
            color = (colors or COMPARE_COLORS)[i % 2] if compare else s.color
            label = f"{prefix} {s.label}".strip()
            if s.smooth and len(ys) > 2:
                if not compare:  # two runs' raw noise would bury both averages
                    dx, dy = downsample(xs, ys, limit)
                    out.append(Curve(f"{label} raw", dx, dy, "grey42"))
                mx, my = downsample(xs, moving_average(ys), limit)
                out.append(Curve(label, mx, my, color))
            else:
                dx, dy = downsample(xs, ys, limit)
                out.append(Curve(label, dx, dy, color, markers=s.markers))
    return out


def nice_ticks(lo: float, hi: float, max_ticks: int) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart), at most `max_ticks` of them inside [lo, hi].

    textual-plot's own ticks are dense enough to collide on a chart a few rows tall.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo or max_ticks < 1:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(max_ticks, 2)
    mag = 10 ** math.floor(math.log10(raw))
    steps = [m * mag for m in (0.1, 0.2, 0.5, 1, 2, 5, 10)]  # no 2.5: labels would round to one digit
    best: list[float] = []
    for step in steps:
        if step < raw * 0.999:
            continue
        first = math.ceil(lo / step - 1e-9) * step
        ticks = []
        t = first
        while t <= hi + 1e-9 * step:
            ticks.append(round(t, 10) + 0.0)
            t += step
        if len(ticks) <= max_ticks:
            best = ticks
            break
    if len(best) < 2:  # a short chart still gets two labels: the coarsest step giving two to four
        for step in reversed(steps):
            first = math.ceil(lo / step - 1e-9) * step
            ticks = [round(first + i * step, 10) + 0.0 for i in range(int((hi - first) / step + 1e-9) + 1)]
            if 2 <= len(ticks) <= max(4, max_ticks):
                return ticks
    return best


def padded_limits(curves: Sequence[Curve]) -> tuple[float, float] | None:
    """The y range of all curves with 5 % air, so a line never hides in the frame."""
    ys = [y for c in curves for y in c.ys if math.isfinite(y)]
    if not ys:
        return None
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.05 or max(abs(hi) * 0.05, 0.05)
    return lo - pad, hi + pad


def legend_text(curves: Sequence[Curve]) -> Text:
    text = Text()
    for c in curves:
        if c.label.endswith(" raw"):
            continue
        if text:
            text.append(" ")
        text.append("● " if c.markers else "━ ", style=c.color)
        text.append(c.label)
    return text


class _Plot(PlotWidget, can_focus=False):
    """A plot that never takes focus (the keyboard belongs to forms and tables) and cannot pan.

    Narrow margins: the title lives in the border, the x-axis name in the legend line.
    """

    margin_top = reactive(0)
    margin_bottom = reactive(1)
    margin_left = reactive(7)

    def _render_plot(self) -> None:
        """textual-plot refreshes the canvas once per pixel drawn; batch that into one refresh per canvas."""
        from contextlib import ExitStack

        from textual_hires_canvas import Canvas

        with ExitStack() as stack:
            for canvas in self.query(Canvas):
                stack.enter_context(canvas.batch_refresh())
            super()._render_plot()


class MetricChart(Vertical):
    """A bordered chart: title above, legend below, a placeholder until the first point."""

    def __init__(self, spec: ChartSpec, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.border_title = spec.title
        self._signature: tuple | None = None
        self.curves: list[Curve] = []
        self.redraws = 0  # for tests: how often the plot was redrawn
        self._subtitle = ""

    def compose(self) -> ComposeResult:
        yield Static("no points yet", classes="chart-empty")
        plot = _Plot(allow_pan_and_zoom=False)
        plot.display = False
        yield plot

    @property
    def drawn(self) -> bool:
        """True once the chart shows the data and size it was last given (False while a redraw is due)."""
        return self._signature is not None

    @property
    def point_count(self) -> int:
        return sum(len(c.xs) for c in self.curves if not c.label.endswith(" raw"))

    def show(self, sources: Sequence[tuple[str, LiveRun]], x_mode: str = STEP, *, force: bool = False) -> bool:
        """Replot if the runs, the axis or the width changed since the last call; True if it did."""
        try:
            return self._draw(sources, x_mode, force)
        except NoMatches:
            # Just mounted (a run of another kind swapped the charts) and not composed yet:
            # nothing was drawn, so the next tick draws it.
            self._signature = None
            return False

    def _draw(self, sources: Sequence[tuple[str, LiveRun]], x_mode: str, force: bool) -> bool:
        width = max(self.content_size.width - 8, 10)
        signature = (tuple((p, r.run_id, r.version) for p, r in sources), x_mode, width)
        if not force and signature == self._signature:
            return False
        self._signature = signature
        self.curves = curves_for(self.spec, sources, x_mode, limit=2 * width)
        plot = self.query_one(_Plot)
        empty = self.query_one(".chart-empty", Static)
        has_data = any(c.xs for c in self.curves)
        # Only touch what changed: every update of a widget costs the compositor a repaint.
        if plot.display != has_data:
            plot.display = has_data
            empty.display = not has_data
        if not has_data:
            empty.update("no points yet (the √KL axis needs KL values)" if x_mode == SQRT_KL and sources
                         else "no points yet")
        plot.clear()
        for c in self.curves:
            if c.markers:
                plot.plot(c.xs, c.ys, line_style=f"{c.color} dim", hires_mode=HiResMode.BRAILLE)
                plot.scatter(c.xs, c.ys, marker="●", marker_style=c.color)
            else:
                plot.plot(c.xs, c.ys, line_style=c.color, hires_mode=HiResMode.BRAILLE)
        limits = padded_limits(self.curves)
        if limits is not None:
            plot.set_ylimits(*limits)
            rows = max(self.content_size.height - 3, 2)
            plot.set_yticks(nice_ticks(limits[0], limits[1], max(2, rows // 2)))
        xs = [x for c in self.curves for x in c.xs]
        if xs:
            lo, hi = min(xs), max(xs)
            # A little air on the right: textual-plot draws the last braille segment past the frame.
            hi_x = hi + (hi - lo) * 0.03 if hi > lo else hi + 1
            plot.set_xlimits(lo, hi_x)
            # Labels like "1000" need room: about one tick per 8 cells keeps them apart.
            plot.set_xticks(nice_ticks(lo, hi, max(2, width // 8)))
        subtitle = legend_text(self.curves)
        axis = "√KL" if x_mode == SQRT_KL else "step"
        if has_data:
            subtitle.append(f"  x: {axis}", style="dim")
        if subtitle.markup != self._subtitle:
            self._subtitle = subtitle.markup
            self.border_subtitle = subtitle
        self.redraws += 1
        return True

    def on_resize(self) -> None:
        self._signature = None  # width changed: the next tick replots with the new point budget
