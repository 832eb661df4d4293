"""The runs screen's gold-audit panel: the human win rate of a PPO policy against its reference, per audited step.

Each row is one audited checkpoint: a 0–100 % scale with the 95 % Wilson interval
drawn as a bar and the estimate as a dot (┆ marks 50 %: a policy no better than the
reference), the counts behind it, and the run's proxy score, gold score and √KL at
that step, so the human curve can be read against the numbers the optimiser saw.
The last line names the checkpoint to keep (where the human curve peaks) and says
how many audit pairs still wait to be labeled.

A run that audits itself (`audit_pairs` in its config) shows the panel from its
start, saying when the first pairs come; the rows fill in as its checkpoints
are audited (the panel re-reads the database every few seconds while shown).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

SCALE = 21  # characters for 0..100 %


def interval_bar(low: float, estimate: float, high: float, width: int = SCALE) -> Text:
    """`····━━━●━━┆·····` on a 0..1 scale: the interval as a bar, the estimate as a dot, ┆ at ½."""
    def col(x: float) -> int:
        return min(width - 1, max(0, round(x * (width - 1))))

    lo, mid, hi, half = col(low), col(estimate), col(high), col(0.5)
    out = Text()
    for i in range(width):
        if i == mid:
            out.append("●", style="bold")
        elif lo <= i <= hi:
            out.append("━", style="cyan")
        elif i == half:
            out.append("┆", style="dim")
        else:
            out.append("·", style="dim")
    return out


def _steps(steps: Sequence[int]) -> str:
    if not steps:
        return ""
    first, last = min(steps), max(steps)
    where = f"step {first}" if first == last else f"steps {first}–{last}"
    return f" from {len(steps)} checkpoint{'s' if len(steps) != 1 else ''} ({where})"


def audit_text(run_id: str, points: Sequence, pending: int, peak: str, steps: Sequence[int] = ()) -> Text:
    """The panel's text for `labeling.audits.win_rate_curve` points (`steps`: the audited ones)."""
    out = Text()
    out.append("Human audits", style="bold")
    out.append(" (blind: policy vs reference, 95% interval)", style="dim")
    if not points:
        out.append(f"\n{pending} audit pairs{_steps(steps)} wait to be labeled on F1" if pending else
                   f"\nno audit pairs yet: `tuilab label audit {run_id}` queues some from its checkpoints",
                   style="dim")
        return out
    for p in points:
        out.append(f"\n step {p.step:>5} ")
        if p.win_rate is None:
            out.append("only ties / both bad so far".ljust(SCALE), style="dim")
        else:
            out.append_text(interval_bar(p.win_rate.low, p.win_rate.estimate, p.win_rate.high))
            out.append(f" {100 * p.win_rate.estimate:3.0f}% [{100 * p.win_rate.low:.0f}–{100 * p.win_rate.high:.0f}%]")
        out.append(f"  W{p.wins} L{p.losses} T{p.ties + p.both_bad}", style="dim")
        for name, v in (("proxy", p.proxy), ("gold", p.gold), ("√KL", p.sqrt_kl)):
            if v is not None:
                out.append(f"  {name} {v:.2f}", style="dim")
    out.append("\n" + peak, style="bold")
    if pending:
        out.append(f" · {pending} audit pairs still wait on F1", style="dim")
    return out


def planned_text(config: dict, status: str) -> Text | None:
    """Before a self-auditing run's first audit pairs: what it will audit, and when. None: no audits asked."""
    pairs = int(config.get("audit_pairs") or 0)
    if pairs <= 0 or status not in ("pending", "running", "paused"):
        return None
    ckpt, every = int(config.get("checkpoint_every") or 0), int(config.get("audit_every") or 0)
    when = f"every {every} updates" if every else f"at each checkpoint (every {ckpt} updates)"
    out = Text()
    out.append("Human audits", style="bold")
    out.append(" (blind: policy vs reference, 95% interval)", style="dim")
    out.append(f"\n{pairs} audit pairs {when}; none yet: they join the label queue (F1) as the run reaches them", style="dim")
    return out


class AuditView(Static):
    """Shown for PPO runs with audit pairs (or auditing themselves); recomputed in a worker at most every few seconds."""

    REFRESH_S = 5.0

    def __init__(self, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self._run: str | None = None
        self._at = 0.0

    def show_run(self, run_id: str | None, kind: str) -> None:
        if kind != "ppo" or run_id is None:
            self._run = None
            self.set_class(False, "-shown")
            return
        now = time.monotonic()
        if run_id == self._run and now - self._at < self.REFRESH_S:
            return
        self._run, self._at = run_id, now
        self.run_worker(lambda: self._work(run_id), name="audits", group="audits", thread=True, exclusive=True,
                        exit_on_error=False)

    def _work(self, run_id: str) -> None:
        from tuilab.labeling.audits import peak_message, win_rate_curve
        from tuilab.store.audits import audit_pairs, audited_steps, pending_audit_pairs
        from tuilab.store.db import open_db
        from tuilab.store.runs import get_run

        db = open_db(self.app.paths.db)  # this thread's own connection
        try:
            if not audit_pairs(db, run_id):
                run = get_run(db, run_id)
                text = planned_text(run.config or {}, run.status)
            else:
                points = win_rate_curve(db, run_id)
                text = audit_text(run_id, points, len(pending_audit_pairs(db, run_id=run_id)), peak_message(points),
                                  sorted(audited_steps(db, run_id)))
        finally:
            db.conn.close()
        self.app.call_from_thread(self._show, run_id, text)

    def _show(self, run_id: str, text: Text | None) -> None:
        if run_id != self._run:
            return  # another run was highlighted meanwhile
        if text is not None:
            self.update(text)
        self.set_class(text is not None, "-shown")
