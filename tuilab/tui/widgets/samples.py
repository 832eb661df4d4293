"""The inspector's widgets: a sortable samples table and one sample in full beside the reference answer.

Sorting is done here over the `Sample`s the run holds in memory, with the
same rule as `store.samples.list_samples`: missing values last, ties broken
by step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from tuilab.diagnostics.flags import FLAG_HELP
from tuilab.records import Sample

SORT_KEYS = {
    "score": "score",
    "kl": "KL",
    "length": "length",
    "spread": "spread",
    "flags": "flags",
    "step": "step",
    "gold": "gold",
}

COLUMNS = (("step", "step"), ("score", "score"), ("gold", "gold"), ("kl", "KL"), ("length", "len"),
           ("spread", "spread"), ("hacked", "mark"), ("flags", "flags"))

# Flags as the table shows them (the detail pane spells each out).
FLAG_SHORT = {"long": "long", "no_eos": "cut", "repetitive": "rep", "uncertain": "unsure", "overrated": "over"}


def sort_value(s: Sample, key: str) -> float | None:
    if key == "flags":
        return float(len(s.flags))
    value = getattr(s, key)
    # NaN / inf count as missing, as in the store (store.samples writes them as NULL).
    return None if value is None or not math.isfinite(float(value)) else float(value)


def sort_samples(samples: Sequence[Sample], key: str, descending: bool = True) -> list[Sample]:
    """Sorted by `key`; samples without that value come last either way; ties by step, newest first."""
    if key not in SORT_KEYS:
        raise ValueError(f"sort by one of {', '.join(SORT_KEYS)}; got {key!r}")
    have = [s for s in samples if sort_value(s, key) is not None]
    missing = [s for s in samples if sort_value(s, key) is None]
    sign = -1.0 if descending else 1.0
    have.sort(key=lambda s: (sign * sort_value(s, key), -s.step, -(s.score or 0.0)))
    missing.sort(key=lambda s: -s.step)
    return have + missing


def num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def flag_cell(flags: Sequence[str]) -> Text:
    return Text(" ".join(FLAG_SHORT.get(f, f) for f in flags), style="yellow" if flags else "")


def row_cells(s: Sample) -> list:
    mark = Text("hacked", style="bold red") if s.hacked else Text("")
    length = "–" if s.length is None else str(s.length)
    if s.eos is False:
        length += "✂"  # cut off at the cap
    return [str(s.step), num(s.score), num(s.gold), num(s.kl), length, num(s.spread), mark, flag_cell(s.flags)]


def numbers_line(s: Sample) -> Text:
    out = Text()
    parts = [("step", str(s.step)), ("score", num(s.score, 3)), ("gold", num(s.gold, 3)), ("KL", num(s.kl, 3)),
             ("tokens", "–" if s.length is None else str(s.length)), ("spread", num(s.spread, 3))]
    for i, (label, value) in enumerate(parts):
        if i:
            out.append(" · ", style="dim")
        out.append(f"{label} ", style="dim")
        out.append(value, style="bold")
    if s.eos is False:
        out.append(" · ", style="dim")
        out.append("cut off (no end-of-turn)", style="yellow")
    if s.hacked:
        out.append(" · ", style="dim")
        out.append("marked hacked", style="bold red")
    return out


def flags_text(flags: Sequence[str]) -> Text:
    out = Text()
    if not flags:
        out.append("No flags: nothing about this sample looks like reward hacking by the monitor's rules.",
                   style="dim")
        return out
    for i, flag in enumerate(flags):
        if i:
            out.append("\n")
        short, name = FLAG_SHORT.get(flag, flag), flag.replace("_", " ")
        out.append(f"{short}: " if short == name else f"{short} ({name}): ", style="bold yellow")
        out.append(FLAG_HELP.get(flag, "(no explanation recorded for this flag)"))
    return out


class SamplesTable(DataTable):
    """Samples, one row each; the row key is the position in `self.samples`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.samples: list[Sample] = []

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, samples: Sequence[Sample], keep: Sample | None = None) -> None:
        """Replace the rows; the cursor stays on `keep` when it is still listed."""
        self.samples = list(samples)
        self.clear()
        for i, s in enumerate(self.samples):
            self.add_row(*row_cells(s), key=str(i))
        if keep is not None:
            for i, s in enumerate(self.samples):
                if s is keep:
                    self.move_cursor(row=i, animate=False)
                    break

    def current(self) -> Sample | None:
        if not self.samples or self.cursor_row is None or not 0 <= self.cursor_row < len(self.samples):
            return None
        return self.samples[self.cursor_row]

    def refresh_sample(self, s: Sample) -> None:
        for i, other in enumerate(self.samples):
            if other is s:
                for (key, _), cell in zip(COLUMNS, row_cells(s), strict=True):
                    self.update_cell(str(i), key, cell, update_width=True)


class SampleDetail(VerticalScroll):
    """The whole prompt, the policy's answer next to the reference policy's, the numbers, the flags in words."""

    def compose(self) -> ComposeResult:
        yield Static("", id="sd-numbers", markup=False)
        yield Static("", id="sd-prompt", markup=False)
        with Horizontal(id="sd-pair"):
            yield Static("", id="sd-policy", classes="sd-answer", markup=False)
            yield Static("", id="sd-ref", classes="sd-answer", markup=False)
        yield Static("", id="sd-flags", markup=False)

    def show(self, s: Sample | None) -> None:
        policy = self.query_one("#sd-policy", Static)
        ref = self.query_one("#sd-ref", Static)
        policy.border_title = "Policy (this sample)"
        ref.border_title = "Reference (adapter off)"
        if s is None:
            self.query_one("#sd-numbers", Static).update(Text("No sample selected.", style="dim"))
            for w in ("#sd-prompt", "#sd-flags"):
                self.query_one(w, Static).update("")
            policy.update("")
            ref.update("")
            return
        self.query_one("#sd-numbers", Static).update(numbers_line(s))
        self.query_one("#sd-prompt", Static).update(Text.assemble(("Prompt  ", "bold"), s.prompt))
        policy.update(Text(s.response))
        policy.border_subtitle = "no end-of-turn: cut off" if s.eos is False else ""
        ref.update(Text(s.ref_response) if s.ref_response else
                   Text("(no reference answer was sampled at this step; h samples one, then marks)", style="dim"))
        self.query_one("#sd-flags", Static).update(flags_text(s.flags))
        self.scroll_home(animate=False)
