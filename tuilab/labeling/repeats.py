"""Self-consistency repeats: a share of already-decided pairs comes back later, sides swapped, unmarked.

A labeler who agrees with themselves on 95% of repeats gives a reward model
cleaner data than one at 70%; the only way to know is to ask again. The
repeat is chosen among the labeler's older decisions (never their latest
`min_age`, so it is not recognised from a moment ago), shown with the sides
the other way round (so agreeing means the same answer wins, not the same
key), and recorded like any decision; `store.agreement` finds it as a later
decision on the same two generations, compared with the first, never counted as a first decision.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from tuilab.labeling.candidates import Candidate
from tuilab.labeling.queue import ReadyPair
from tuilab.records import Generation
from tuilab.store.agreement import repeat_candidates
from tuilab.store.generations import get_generation
from tuilab.store.prompts import get_prompt


@dataclass(frozen=True)
class RepeatPolicy:
    """How often a repeat replaces a fresh pair, and how old its first decision must be."""

    share: float = 0.05
    min_age: int = 20

    def check(self) -> None:
        if not 0.0 <= self.share <= 0.5:
            raise ValueError(f"repeat share must be between 0 and 0.5, got {self.share}")
        if self.min_age < 0:
            raise ValueError(f"repeat min_age must be 0 or more, got {self.min_age}")


def candidate_of(g: Generation) -> Candidate:
    """A stored generation as the queue's candidate."""
    return Candidate(text=g.text, model=g.model, adapter=g.adapter, n_tokens=g.n_tokens, finished=g.finished,
                     params=dict(g.params))


def pick_repeat(db: Any, rng: random.Random, policy: RepeatPolicy, labeler: str, *,
                busy: set[tuple[int, int]] = frozenset(), source: str = "") -> ReadyPair | None:
    """One of `labeler`'s older decisions as a pair to show again, sides swapped; None when none qualifies.

    `busy` holds generation pairs already waiting in the queue (never the same pair twice in a row).
    """
    choices = [c for c in repeat_candidates(db, labeler, min_age=policy.min_age) if c.key not in busy]
    if not choices:
        return None
    first = rng.choice(choices)
    # The other way round: what was on the right is now on the left, so candidate A changes side too.
    left, right = get_generation(db, first.right_id), get_generation(db, first.left_id)
    return ReadyPair(prompt=get_prompt(db, first.prompt_id), left=candidate_of(left), right=candidate_of(right),
                     left_id=first.right_id, right_id=first.left_id, swapped=not first.swapped, source=source,
                     repeat_of=first.comparison_id)
