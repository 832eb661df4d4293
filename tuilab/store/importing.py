"""Importing data files: streamed record by record into one transaction.

A bad line fails the whole import (`FILE:LINE: …`) and rolls back what was
written before it, as does a database error: an import is all or nothing.
Records stream in batches, so memory is a batch, not the file. Duplicates are
counted and named by line, never doubled: prompts by the hash of their
messages, preference pairs by (prompt, chosen, rejected), comparisons by
(prompt, both texts, decision, edit, time).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import sqlite_utils

from tuilab.records import Comparison, Generation
from tuilab.store.comparisons import record_comparison
from tuilab.store.formats import (
    MAX_FIELD_CHARS,
    SPLITS,
    ComparisonRecord,
    FormatError,
    PairRecord,
    PromptRecord,
    iter_records,
    resolve_format,
)
from tuilab.store.generations import add_generation, find_generation
from tuilab.store.pairs import preference_pairs
from tuilab.store.prompts import add_prompt_rows, find_prompt, transaction

SHOWN_LINES = 5
KEPT_LINES = 1000  # duplicate line numbers the report remembers (it counts them all)
BATCH = 2000  # prompts written per statement batch


@dataclass
class ImportReport:
    """What an import did (or, with `dry_run`, would do)."""

    path: str
    format: str
    records: int
    prompts_added: int = 0
    prompts_existing: int = 0  # records whose prompt was already stored (normal for pairs)
    comparisons_added: int = 0
    generations_added: int = 0
    generations_reused: int = 0
    duplicates: int = 0  # records skipped: the same prompt / pair / comparison is already stored
    duplicate_lines: list[int] = field(default_factory=list)
    run_links_dropped: int = 0  # comparisons format: run ids this database does not have
    dry_run: bool = False

    @property
    def kind(self) -> str:
        return (
            "prompts"
            if self.format == "prompts"
            else "pairs"
            if self.format in ("trl", "hh")
            else "comparisons"
        )

    def summary(self) -> str:
        """A few lines for the terminal."""
        name = Path(self.path).name
        verb = "Would import" if self.dry_run else "Imported"
        lines = [f"{verb} {name} ({self.format}, {_n(self.records, 'record')}):"]
        if self.format == "prompts":
            lines.append(f"  {_n(self.prompts_added, 'new prompt')}")
        else:
            lines.append(
                f"  {_n(self.comparisons_added, 'new ' + self.kind[:-1])}, "
                f"{_n(self.generations_added, 'new response')}; prompts: {self.prompts_added} new, "
                f"{self.prompts_existing} already stored"
            )
        if self.duplicates:
            shown = ", ".join(str(n) for n in self.duplicate_lines[:SHOWN_LINES])
            more = ", …" if len(self.duplicate_lines) > SHOWN_LINES else ""
            lines.append(
                f"  {_n(self.duplicates, 'duplicate ' + self.kind[:-1])} skipped "
                f"(already stored or repeated in the file): line{'s' if self.duplicates > 1 else ''} "
                f"{shown}{more}"
            )
        if self.run_links_dropped:
            lines.append(
                f"  {self.run_links_dropped} links to runs this lab does not have were dropped"
            )
        return "\n".join(lines)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class _DryRun(Exception):
    pass


def import_file(
    db: sqlite_utils.Database,
    path: str | Path,
    *,
    fmt: str = "auto",
    split: str | None = None,
    source: str | None = None,
    dry_run: bool = False,
    max_chars: int = MAX_FIELD_CHARS,
) -> ImportReport:
    """Stream `path` into the database in one transaction; a bad line (FormatError) or a
    database error rolls everything back, so nothing is imported.

    Memory stays at one batch of records, not the file. `split` forces the split
    of new prompts (else the file's, else from the hash); `source` labels new
    prompts (default `import:<file name>`); `max_chars` is the per-field limit.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = Path(path)
    fmt = resolve_format(path, fmt, max_chars=max_chars)
    report = ImportReport(str(path), fmt, 0, dry_run=dry_run)
    src = source if source is not None else f"import:{path.name}"
    writer = {"prompts": _prompts, "trl": _pairs, "hh": _pairs, "comparisons": _comparisons}[fmt]
    try:
        with transaction(db):
            writer(db, _counted(iter_records(path, fmt, max_chars=max_chars), report), report, split, src)
            if report.records == 0:
                raise FormatError(path, None, "no records in the file")
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


def _counted(records: Iterable, report: ImportReport) -> Iterator:
    for record in records:
        report.records += 1
        yield record


def _batches(records: Iterable, size: int = BATCH) -> Iterator[list]:
    batch: list = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _duplicate(report: ImportReport, line: int) -> None:
    report.duplicates += 1
    if len(report.duplicate_lines) < KEPT_LINES:
        report.duplicate_lines.append(line)


def _key(*parts: object) -> bytes:
    """A 16-byte digest standing for a duplicate key (the texts themselves would fill memory)."""
    return hashlib.blake2b(json.dumps(parts, ensure_ascii=False).encode(), digest_size=16).digest()


def _prompts(db, records: Iterable[PromptRecord], report: ImportReport, split, source) -> None:
    for batch in _batches(records):
        result = add_prompt_rows(db, [(r.messages, split or r.split) for r in batch], source=source)
        report.prompts_added += len(result.added)
        report.prompts_existing += len(result.duplicates)
        for i in result.duplicates:
            _duplicate(report, batch[i].line)


def _prompt_id(db, messages, split, source, report: ImportReport) -> int:
    pid = find_prompt(db, messages)
    if pid is not None:
        report.prompts_existing += 1
        return pid
    report.prompts_added += 1
    return add_prompt_rows(db, [(messages, split)], source=source).ids[0]


def _gen_fields(g: Generation) -> dict:
    return dict(
        origin=g.origin, model=g.model, adapter=g.adapter, n_tokens=g.n_tokens,
        finished=g.finished, step=g.step, params=g.params, run_id=g.run_id,
    )  # fmt: skip


def _generation(db, pid: int, g: Generation, report: ImportReport) -> int:
    fields = _gen_fields(g)
    gid = find_generation(db, pid, g.text, **fields)
    if gid is not None:
        report.generations_reused += 1
        return gid
    report.generations_added += 1
    return add_generation(db, pid, g.text, **fields)


def _pairs(db, records: list[PairRecord], report: ImportReport, split, source) -> None:
    # A pair is known when the lab already trains on it, however it got there.
    seen = {_key(p.prompt_id, p.chosen, p.rejected) for p in preference_pairs(db, ties="skip")}
    for r in records:
        pid = _prompt_id(db, r.messages, split, source, report)
        key = _key(pid, r.chosen, r.rejected)
        if key in seen:
            _duplicate(report, r.line)
            continue
        seen.add(key)
        chosen = _generation(db, pid, Generation(r.chosen, origin="import"), report)
        rejected = _generation(db, pid, Generation(r.rejected, origin="import"), report)
        c = Comparison(
            prompt_id=pid, left_id=chosen, right_id=rejected, decision="left",
            swapped=False, margin=r.margin, origin="import",
        )  # fmt: skip
        record_comparison(db, c)
        report.comparisons_added += 1


def _comparison_keys(db) -> set[bytes]:
    rows = db.execute(
        "SELECT c.prompt_id, l.text, r.text, c.decision, e.text, c.created_at FROM comparisons c"
        " JOIN generations l ON l.id = c.left_id JOIN generations r ON r.id = c.right_id"
        " LEFT JOIN generations e ON e.id = c.edited_id"
    ).fetchall()
    return {_key(*row) for row in rows}


def _comparisons(db, records: list[ComparisonRecord], report: ImportReport, split, source) -> None:
    seen = _comparison_keys(db)
    runs = {row[0] for row in db.execute("SELECT id FROM runs")}

    def run_link(run_id: str | None) -> str | None:
        if run_id is None or run_id in runs:
            return run_id
        report.run_links_dropped += 1
        return None

    for r in records:
        pid = _prompt_id(
            db,
            r.messages,
            split or r.split,
            source if r.prompt_source is None else r.prompt_source,
            report,
        )
        rc = r.comparison
        edited_text = r.edited.text if r.edited else None
        key = _key(pid, r.left.text, r.right.text, rc.decision, edited_text, rc.created_at or None)
        if key in seen:
            _duplicate(report, r.line)
            continue
        seen.add(key)
        left_g, right_g, edited_g = (
            None if g is None else replace(g, run_id=run_link(g.run_id))
            for g in (r.left, r.right, r.edited)
        )
        left = _generation(db, pid, left_g, report)
        right = _generation(db, pid, right_g, report)
        if right == left:
            # Two sides equal in every field still need two rows.
            right = add_generation(db, pid, right_g.text, **_gen_fields(right_g))
            report.generations_reused -= 1
            report.generations_added += 1
        edited = _generation(db, pid, edited_g, report) if edited_g is not None else None
        c = replace(rc, prompt_id=pid, left_id=left, right_id=right, edited_id=edited, run_id=run_link(rc.run_id))
        record_comparison(db, c, created_at=rc.created_at or None)
        report.comparisons_added += 1
