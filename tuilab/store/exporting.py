"""Exporting the lab's data: TRL and HH preference pairs, a full comparisons dump, prompts.

TRL and HH exports go through `preference_pairs`, so an exported file holds
exactly the pairs the lab trains on. The `comparisons` dump carries every
field and re-imports losslessly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from tuilab.records import Comparison
from tuilab.store.formats import (
    EXPORT_FORMATS,
    ComparisonRecord,
    dumps_jsonl,
    hh_can_render,
    render_comparison,
    render_hh,
    render_prompt,
    render_trl,
)
from tuilab.store.generations import get_generation
from tuilab.store.output import check_target, write_text
from tuilab.store.pairs import preference_pairs


@dataclass
class ExportReport:
    path: str
    format: str
    written: int
    left_out: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        unit = {"prompts": "prompts", "comparisons": "comparisons"}.get(self.format, "pairs")
        line = f"Wrote {self.written} {unit} to {self.path} ({self.format})"
        gone = [f"{n} {why}" for why, n in self.left_out.items() if n]
        if gone:
            line += "; left out: " + ", ".join(gone)
        return line


def _left_out_decisions(db: sqlite_utils.Database) -> dict[str, int]:
    counts = dict(
        db.execute("SELECT decision, count(*) FROM comparisons GROUP BY decision").fetchall()
    )
    return {
        "ties": counts.get("tie", 0),
        "both-bad": counts.get("both_bad", 0),
        "skips": counts.get("skip", 0),
    }


def trl_rows(db: sqlite_utils.Database) -> tuple[list[dict], dict[str, int]]:
    """TRL conversational pairs with explicit prompts; ties, both-bad and skips left out, edits expanded."""
    rows = [render_trl(p.messages, p.chosen, p.rejected, p.margin) for p in preference_pairs(db)]
    return rows, _left_out_decisions(db)


def hh_rows(db: sqlite_utils.Database) -> tuple[list[dict], dict[str, int]]:
    """HH transcripts; prompts with system or tool turns cannot be written and are counted."""
    rows, skipped = [], 0
    for p in preference_pairs(db):
        if not hh_can_render(p.messages):
            skipped += 1
            continue
        row = render_hh(p.messages, p.chosen, p.rejected)
        if p.margin is not None:
            row["margin"] = p.margin
        rows.append(row)
    left_out = _left_out_decisions(db)
    left_out["pairs with system/tool turns (HH has none)"] = skipped
    return rows, left_out


def comparison_rows(db: sqlite_utils.Database) -> tuple[list[dict], dict[str, int]]:
    """Every comparison with every field, oldest first."""
    rows = []
    for (cid, pid, pid_messages, split, source, left, right, edited, decision, swapped, strength, margin,
         rationale, seconds, annotator, origin, run_id, created_at) in db.execute(
        "SELECT c.id, c.prompt_id, p.messages, p.split, p.source, c.left_id, c.right_id, c.edited_id, c.decision,"
        " c.swapped, c.strength, c.margin, c.rationale, c.seconds, c.annotator, c.origin, c.run_id,"
        " c.created_at FROM comparisons c JOIN prompts p ON p.id = c.prompt_id ORDER BY c.id"
    ).fetchall():  # fmt: skip
        comparison = Comparison(
            prompt_id=pid, left_id=left, right_id=right, decision=decision, swapped=bool(swapped),
            strength=strength, margin=margin, rationale=rationale, edited_id=edited, seconds=seconds,
            annotator=annotator, origin=origin, run_id=run_id, id=cid, created_at=created_at,
        )  # fmt: skip
        record = ComparisonRecord(
            line=0,
            messages=json.loads(pid_messages),
            left=get_generation(db, left),
            right=get_generation(db, right),
            comparison=comparison,
            edited=get_generation(db, edited) if edited is not None else None,
            split=split,
            prompt_source=source,
        )
        rows.append(render_comparison(record))
    return rows, {}


def prompt_rows(db: sqlite_utils.Database) -> tuple[list[dict], dict[str, int]]:
    """Every prompt with its split, in id order (re-imports with `--format prompts`)."""
    rows = [
        render_prompt(json.loads(messages), split)
        for messages, split in db.execute("SELECT messages, split FROM prompts ORDER BY id")
    ]
    return rows, {}


def export_rows(db: sqlite_utils.Database, fmt: str) -> tuple[list[dict], dict[str, int]]:
    """(JSON rows, {reason: count left out}) for one export format."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"cannot export {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")
    return {"trl": trl_rows, "hh": hh_rows, "comparisons": comparison_rows, "prompts": prompt_rows}[
        fmt
    ](db)


def export_file(db: sqlite_utils.Database, path: str | Path, fmt: str, *, force: bool = False) -> ExportReport:
    """Write JSONL to `path`: a regular file atomically (temporary file renamed into place).

    Refuses (`UnsafeTarget`) a symlink, FIFO, device or read-only file unless
    `force`, and always a directory or this database's own files.
    """
    db_file = db.execute("PRAGMA database_list").fetchone()[2]
    target = check_target(path, force=force, protect=(Path(db_file),) if db_file else ())
    rows, left_out = export_rows(db, fmt)
    write_text(target, dumps_jsonl(rows))
    return ExportReport(str(path), fmt, len(rows), left_out)
