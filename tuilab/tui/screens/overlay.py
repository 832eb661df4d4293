"""Any number of PPO / DPO runs on one plot, one colour per run; gold against √KL with each run's Gao fit.

The screen re-reads the marked runs' metrics from the database every two
seconds and redraws only when a run gained points, so trials of a sweep
(`tuilab sweep`, writing from other processes) grow on the plot while they
train. Keys: `s` score, `g` gold, `k` KL, `l` length; `x` toggles the x axis
between the update step and d = √KL; `a` toggles a 5-update trailing mean
(single updates at batch 8 are noisy; fits always use the raw points). On gold against √KL every run's fitted
curve d·(α − β·ln d) is drawn dotted in its colour and its fitted peak marked ◆.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual_plot import HiResMode

from tuilab.diagnostics.compare import QUANTITIES, Series, compare
from tuilab.tui.widgets.charts import _Plot, nice_ticks

# One colour per run, distinct on dark and light themes; the ninth run reuses the first.
PALETTE = ("dodger_blue1", "orange1", "green3", "magenta", "cyan", "yellow", "red1", "medium_purple1")
# The quantities to plot: (key, quantity, footer label, chart title).
QUANTITY_KEYS = (
    ("s", "score", "Score", "RM score"),
    ("g", "gold", "Gold", "Gold score"),
    ("k", "kl", "KL", "KL to reference"),
    ("l", "length", "Length", "Response length (tokens)"),
)
TITLES = {quantity: title for _, quantity, _, title in QUANTITY_KEYS}
REFRESH_SECONDS = 2.0
SMOOTH_WINDOW = 5


def color_of(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


class OverlayChart(Vertical):
    """One bordered plot of several runs' series (and fits); redraws only when given new data."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.series: list[Series] = []
        self.redraws = 0
        self._signature: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static("no points yet", classes="overlay-empty")
        plot = _Plot(allow_pan_and_zoom=False)
        plot.display = False
        yield plot

    def show(self, series: Sequence[Series], title: str, axis: str, *, force: bool = False) -> bool:
        width = max(self.content_size.width - 8, 10)
        signature = (tuple((s.run_id, len(s.xs), s.ys[-1] if s.ys else None) for s in series), title, axis, width)
        if not force and signature == self._signature:
            return False
        self._signature = signature
        self.series = list(series)
        self.border_title = title
        plot = self.query_one(_Plot)
        empty = self.query_one(".overlay-empty", Static)
        has_data = any(s.xs for s in series)
        plot.display, empty.display = has_data, not has_data
        plot.clear()
        ys_all: list[float] = []
        xs_all: list[float] = []
        for i, s in enumerate(series):
            color = color_of(i)
            if s.fit_xs:  # the fitted curve dotted, the measured line solid, both in the run's colour
                plot.scatter(s.fit_xs, s.fit_ys, marker="·", marker_style=color)
                xs_all += s.fit_xs
            if len(s.xs) > 1:
                plot.plot(s.xs, s.ys, line_style=color, hires_mode=HiResMode.BRAILLE)
            else:
                plot.scatter(s.xs, s.ys, marker="●", marker_style=color)
            if s.peak is not None and s.xs and s.peak[0] <= 2 * max(s.xs):
                plot.scatter([s.peak[0]], [s.peak[1]], marker="◆", marker_style=f"bold {color}")
                xs_all.append(s.peak[0])
                ys_all.append(s.peak[1])
            xs_all += s.xs
            ys_all += [y for y in s.ys if math.isfinite(y)]
        if ys_all:
            lo, hi = min(ys_all), max(ys_all)
            pad = (hi - lo) * 0.05 or max(abs(hi) * 0.05, 0.05)
            plot.set_ylimits(lo - pad, hi + pad)
            plot.set_yticks(nice_ticks(lo - pad, hi + pad, max(2, (self.content_size.height - 3) // 2)))
        if xs_all:
            lo, hi = min(xs_all), max(xs_all)
            plot.set_xlimits(lo, hi + (hi - lo) * 0.03 if hi > lo else hi + 1)
            plot.set_xticks(nice_ticks(lo, hi, max(2, width // 8)))
        legend = Text()
        for i, s in enumerate(series):
            legend.append("━ ", style=color_of(i))
            legend.append(f"{s.label}  ")
        legend.append(f"x: {'√KL' if axis == 'sqrt_kl' else 'step'}", style="dim")
        self.border_subtitle = legend
        self.redraws += 1
        return True


def fit_rows(series: Sequence[Series]) -> list[tuple[Text, str, str, str, str, str]]:
    """(run, α, β, R², peak √KL, peak gold) per run that has a fit."""
    rows = []
    for i, s in enumerate(series):
        name = Text(f"━ {s.label}", style=color_of(i))
        if s.fit is None:
            rows.append((name, "–", "–", "–", "–", "too few points"))
            continue
        r2 = "–" if s.fit.r2 is None else f"{s.fit.r2:.2f}"
        peak = ("no turn yet", "–") if s.peak is None else (f"{s.peak[0]:.3g}", f"{s.peak[1]:.3g}")
        rows.append((name, f"{s.fit.alpha:.3g}", f"{s.fit.beta:.3g}", r2, *peak))
    return rows


class OverlayScreen(Screen):
    """Several PPO / DPO runs on one plot (see module docstring)."""

    HELP_TITLE = "Runs on one plot"
    KEYS_HELP = [("Runs on one plot", [
        (" ".join(key for key, *_ in QUANTITY_KEYS), "score, gold, KL, response length"),
        ("x", "x axis: update step ↔ √KL (Gao et al.: gold against √KL, fit and peak per run)"),
        ("a", f"lines: raw ↔ {SMOOTH_WINDOW}-update trailing mean"),
        ("esc", "back to the runs list"),
    ])]
    BINDINGS = [
        *(Binding(key, f"quantity('{quantity}')", label) for key, quantity, label, _ in QUANTITY_KEYS),
        Binding("x", "axis", "Step/√KL"),
        Binding("a", "smooth", "Average"),
        Binding("escape,q", "dismiss", "Back"),
    ]
    def __init__(self, db, run_ids: Sequence[str], labels: dict[str, str] | None = None, *,
                 quantity: str = "gold", axis: str = "sqrt_kl") -> None:
        super().__init__()
        self.db = db
        self.run_ids = list(run_ids)
        self.labels = dict(labels or {})
        self.quantity, self.axis = quantity, axis
        self.window = 1
        self.metrics: dict[str, dict] = {}
        self.series: list[Series] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield OverlayChart(id="overlay-chart")
        yield Static("", id="overlay-note")
        yield DataTable(id="overlay-fits", cursor_type="none", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#overlay-fits", DataTable)
        table.add_columns("run", "α", "β", "R²", "peak √KL", "peak gold")
        self.refresh_data(force=True)
        self.set_interval(REFRESH_SECONDS, self.refresh_data)

    def read(self) -> dict[str, dict]:
        from tuilab.store.runs import read_metrics

        names = list(QUANTITIES.values())
        return {r: read_metrics(self.db, r, names) for r in self.run_ids}

    def refresh_data(self, force: bool = False) -> None:
        self.metrics = self.read()
        self.redraw(force=force)

    def redraw(self, force: bool = False) -> None:
        self.series = compare(self.metrics, self.quantity, self.axis, labels=self.labels, window=self.window)
        chart = self.query_one(OverlayChart)
        gao = self.quantity == "gold" and self.axis == "sqrt_kl"
        smoothed = f", {self.window}-update mean" if self.window > 1 else ""
        changed = chart.show(self.series, f"{TITLES[self.quantity]} — {len(self.run_ids)} runs{smoothed}",
                             self.axis, force=force)
        if not changed:
            return
        missing = [self.labels.get(r, r) for r in self.run_ids if r not in {s.run_id for s in self.series}]
        note = ""
        if missing:
            note = f"no {self.quantity} logged yet: {', '.join(missing)}"
            if self.quantity == "gold":
                note += " (gold needs a gold_scorer in the run's config)"
        if gao:
            note = (note + "; " if note else "") + "dotted: each run's fit d·(α − β·ln d), ◆ its fitted peak"
        self.query_one("#overlay-note", Static).update(note)
        table = self.query_one("#overlay-fits", DataTable)
        table.clear()
        table.display = gao
        if gao:
            for row in fit_rows(self.series):
                table.add_row(*row)

    def action_quantity(self, quantity: str) -> None:
        self.quantity = quantity
        self.redraw(force=True)

    def action_axis(self) -> None:
        self.axis = "step" if self.axis == "sqrt_kl" else "sqrt_kl"
        self.redraw(force=True)

    def action_smooth(self) -> None:
        self.window = SMOOTH_WINDOW if self.window == 1 else 1
        self.redraw(force=True)

    def on_resize(self) -> None:
        self.call_after_refresh(self.redraw, True)
