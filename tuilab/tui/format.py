"""Pure text formatting for the screens: prompts, stats, decisions, model reveals.

No widgets here, so the wording can be tested without running an app.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tuilab.labeling.candidates import Candidate
from tuilab.records import LabelStats, Message, Prompt

DECISION_LABELS = {
    "left": "left better",
    "right": "right better",
    "tie": "tie",
    "both_bad": "both bad",
    "skip": "skipped",
}

DECISIONS_SHOWN = ("left", "right", "tie", "both_bad", "skip")
# One letter per decision for the narrow stats strip: L R, then the keys t b s.
DECISION_KEYS = {"left": "L", "right": "R", "tie": "T", "both_bad": "B", "skip": "S"}
WIDE_NAMES = {"left": "left", "right": "right", "tie": "tie", "both_bad": "both bad", "skip": "skip"}


def decision_label(decision: str, strength: int = 1, edited: bool = False) -> str:
    label = DECISION_LABELS.get(decision, decision)
    if strength >= 2 and decision in ("left", "right"):
        label = label.replace("better", "much better")
    if edited:
        label += ", edited"
    return label


def prompt_text(prompt: Prompt | None, messages: list[Message] | None = None) -> Text:
    """The prompt as shown: plain for one user turn, a chat transcript for several."""
    msgs = messages if messages is not None else (prompt.messages if prompt else [])
    if not msgs:
        return Text(prompt.text if prompt else "")
    if len(msgs) == 1 and msgs[0].get("role", "user") == "user":
        return Text(msgs[0].get("content", ""))
    out = Text()
    colours = {"system": "magenta", "user": "cyan", "assistant": "green"}
    for i, m in enumerate(msgs):
        role = m.get("role", "user")
        if i:
            out.append("\n")
        out.append(f"{role}: ", style=f"bold {colours.get(role, 'white')}")
        out.append(m.get("content", ""), style="italic" if role == "system" else "")
        out.append("\n")
    return out


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def stats_text(stats: LabelStats, *, wide: bool = True, report: Any = None) -> Text:
    """The stats strip: counts, position bias, length bias, time to decide, self-agreement.

    A bias is highlighted once there are enough decisions to mean something (≥ 10
    strict picks) and it is far from 50 %. With this labeler's consistency figures
    (`report`, a `labeling.consistency.LabelerReport`) and ≥ 10 strict picks, each
    bias is shown with its 95 % interval and count, red when the interval excludes
    50 %; self-agreement appears once a repeat has been decided. `wide=False` fits 78 columns while
    every count has at most three digits.
    """
    by = stats.by_decision or {}
    strict = by.get("left", 0) + by.get("right", 0)
    sep = (" │ ", "dim")
    out = Text()
    if wide:
        out.append_text(Text.assemble("labeled ", (f"{stats.session}", "bold"), " session · ",
                                      (f"{stats.total}", "bold"), " total", style="dim"))
        out.append(*sep)
        out.append(" · ".join(f"{WIDE_NAMES[d]} {by.get(d, 0)}" for d in DECISIONS_SHOWN))
    else:
        out.append_text(Text.assemble((f"{stats.session}", "bold"), " session/",
                                      (f"{stats.total}", "bold"), style="dim"))
        out.append(*sep)
        out.append(" ".join(f"{DECISION_KEYS[d]}{by.get(d, 0)}" for d in DECISIONS_SHOWN))
    bias = Text()
    bias.append("left picks " if wide else "left ", style="dim")
    _share(bias, stats.left_share, strict, getattr(report, "position", None), wide)
    bias.append(" · " if wide else " ", style="dim")
    bias.append("longer picked " if wide else "longer ", style="dim")
    _share(bias, stats.longer_share, strict, getattr(report, "length", None), wide)
    agr = getattr(report, "self_agreement", None)
    if agr is not None and agr.percent is not None:
        bias.append(*sep)
        bias.append("self-agreement " if wide else "self ", style="dim")
        if wide:
            ci = agr.percent
            bias.append(f"{100 * ci.estimate:.0f}%")
            bias.append(f" [{100 * ci.low:.0f}–{100 * ci.high:.0f}%] on {ci.n} repeat{'s' * (ci.n != 1)}",
                        style="dim")
        else:
            bias.append(f"{agr.agree}/{agr.n}")
    median = Text()
    median.append("median " if wide else "med ", style="dim")
    median.append("–" if stats.median_seconds is None else f"{stats.median_seconds:.1f}s")
    if _extended(report):
        # Intervals and self-agreement need room: the consistency figures get a line of their own.
        return Text.assemble(out, (" │ ", "dim"), median, "\n", bias)
    return Text.assemble(out, (" │ ", "dim"), bias, (" │ ", "dim"), median)


def _extended(report: Any) -> bool:
    """Whether the strip shows intervals or self-agreement (then it takes two lines)."""
    if report is None:
        return False
    if report.self_agreement is not None and report.self_agreement.n:
        return True
    return any(ci is not None and ci.n >= MIN_FOR_INTERVAL for ci in (report.position, report.length))


MIN_FOR_INTERVAL = 10  # strict picks before a bias is shown with its interval


def _share(out: Text, share: float | None, strict: int, ci: Any, wide: bool) -> None:
    """A bias share: with its interval and count once there are enough picks, else as before."""
    if ci is None or ci.n < MIN_FOR_INTERVAL:
        out.append(pct(share), style=_bias_style(share, strict, 0.15))
        return
    out.append(pct(ci.estimate), style="bold red" if not ci.contains(0.5) else "green")
    if wide:
        out.append(f" [{100 * ci.low:.0f}–{100 * ci.high:.0f}%] n={ci.n}", style="dim")
    else:
        out.append(f"±{50 * (ci.high - ci.low):.0f}", style="dim")


def _bias_style(share: float | None, n: int, tolerance: float) -> str:
    if share is None or n < 10:
        return ""
    return "bold red" if abs(share - 0.5) > tolerance else "green"


def candidate_origin(c: Candidate) -> str:
    """Which model produced a candidate, for the reveal after a decision."""
    who = f"{c.model} + {c.adapter}" if c.adapter else c.model or "?"
    bits = []
    if "temperature" in c.params:
        bits.append(f"T {c.params['temperature']:g}")
    if c.params.get("seed") is not None:
        bits.append(f"seed {c.params['seed']}")
    if c.params.get("side"):
        bits.insert(0, str(c.params["side"]))
    return f"{who} ({', '.join(bits)})" if bits else who


def tokens_label(c: Candidate) -> str:
    n = "?" if c.n_tokens is None else str(c.n_tokens)
    tail = "" if c.finished is not False else " · cut off"
    return f"{n} tokens{tail}"
