"""Deciding pairs without a person: `tuilab label auto`'s engine.

Pairs come from the database (pairs someone else decided, so the annotator's
agreement with them can be measured) or are generated fresh by a candidate
source. Each pair's sides are randomised as on the label screen, one of the
annotators is drawn at random to decide it (AlpacaFarm's pool of simulated
annotators), or every annotator decides it (`each=True`, to measure their
agreement), and the decision is stored like a person's, with `origin` "auto"
and the annotator's name.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuilab.labeling.annotators import Annotator, Shown
from tuilab.records import Comparison
from tuilab.store.agreement import PairToDecide
from tuilab.store.comparisons import record_comparison
from tuilab.store.db import transaction


@dataclass
class AutoReport:
    pairs: int = 0
    by_annotator: Counter = field(default_factory=Counter)
    by_decision: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        who = ", ".join(f"{name} {n}" for name, n in sorted(self.by_annotator.items())) or "nobody"
        what = " · ".join(f"{d} {n}" for d, n in sorted(self.by_decision.items())) or "—"
        return f"Decided {sum(self.by_annotator.values())} times on {self.pairs} pairs ({who}): {what}"


def auto_label(
    db: Any,
    annotators: Sequence[Annotator],
    pairs: Sequence[PairToDecide],
    *,
    each: bool = False,
    seed: int | None = None,
    batch: int = 16,
    progress: Callable[[int, int], Any] | None = None,
) -> AutoReport:
    """Decide every pair (sides randomised) and store the decisions; committed batch by batch."""
    if not annotators:
        raise ValueError("no annotator given")
    rng = random.Random(seed)
    report = AutoReport(pairs=len(pairs))
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        jobs: dict[int, list[tuple[PairToDecide, bool]]] = {}
        for pair in chunk:
            chosen = range(len(annotators)) if each else [rng.randrange(len(annotators))]
            for i in chosen:
                jobs.setdefault(i, []).append((pair, rng.random() < 0.5))
        for i, work in jobs.items():
            annotator = annotators[i]
            shown = [_shown(p, swapped) for p, swapped in work]
            decisions = annotator.decide(shown)
            if len(decisions) != len(work):
                raise RuntimeError(f"{annotator.name} answered {len(decisions)} of {len(work)} pairs")
            with transaction(db):
                for (pair, swapped), decision in zip(work, decisions, strict=True):
                    left, right = (pair.b_id, pair.a_id) if swapped else (pair.a_id, pair.b_id)
                    record_comparison(db, Comparison(prompt_id=pair.prompt_id, left_id=left, right_id=right,
                                                     decision=decision, swapped=swapped,
                                                     annotator=annotator.name, origin="auto"))
                    report.by_annotator[annotator.name] += 1
                    report.by_decision[decision] += 1
        if progress is not None:
            progress(min(start + batch, len(pairs)), len(pairs))
    return report


def _shown(pair: PairToDecide, swapped: bool) -> Shown:
    left, right = (pair.b_text, pair.a_text) if swapped else (pair.a_text, pair.b_text)
    return Shown(prompt=pair.prompt_text, messages=json.loads(pair.messages_json), left=left, right=right)


def new_pairs(db: Any, source: Any, n: int, *, split: str = "train", seed: int | None = None,
              batch: int = 8) -> list[PairToDecide]:
    """Generate `n` fresh pairs with a candidate source (prompts nobody labeled first) and store both sides."""
    from tuilab.labeling.candidates import source_pairs
    from tuilab.store.generations import add_generation
    from tuilab.store.prompts import sample_prompts

    prompts = sample_prompts(db, n, split=split, seed=seed, exclude_labeled=True)
    if len(prompts) < n:
        have = {p.id for p in prompts}
        prompts += [p for p in sample_prompts(db, n, split=split, seed=seed) if p.id not in have][: n - len(prompts)]
    out: list[PairToDecide] = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start:start + batch]
        for prompt, (a, b) in zip(chunk, source_pairs(source, chunk), strict=True):
            with transaction(db):
                ids = [add_generation(db, prompt.id, c.text, model=c.model, adapter=c.adapter, params=dict(c.params),
                                      n_tokens=c.n_tokens, finished=c.finished) for c in (a, b)]
            out.append(PairToDecide(prompt.id, json.dumps(prompt.messages), prompt.text, ids[0], a.text,
                                    ids[1], b.text))
    return out
