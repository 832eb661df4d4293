"""What a labeling decision writes: one comparison (and, for an edit, the edited text), committed on return.

The label screen, a headless annotator and the tests all record decisions
through these functions, so a decision means the same row whoever made it.
Sides are recorded as shown (`left_id`, `right_id`) with `swapped` saying
whether candidate A was shown on the right.
"""

from __future__ import annotations

from typing import Any

from tuilab.labeling.queue import ReadyPair
from tuilab.records import Comparison
from tuilab.store.comparisons import delete_comparison, record_comparison, update_comparison
from tuilab.store.generations import add_generation

STRENGTH_DECISIONS = ("left", "right")  # only a preference can be "much better"


def record_decision(
    db: Any,
    pair: ReadyPair,
    decision: str,
    *,
    strength: int = 1,
    rationale: str = "",
    edited_id: int | None = None,
    seconds: float | None = None,
    annotator: str = "",
    origin: str = "human",
) -> Comparison:
    """Store `decision` on `pair`; the returned comparison carries its database id.

    A person's answer to a self-consistency repeat is stored with origin "repeat": it
    measures consistency (`labeling.consistency`) and is kept apart from first decisions
    in exports and training.
    """
    if origin == "human" and getattr(pair, "repeat_of", None) is not None:
        origin = "repeat"
    comparison = Comparison(
        prompt_id=pair.prompt.id,
        left_id=pair.left_id,
        right_id=pair.right_id,
        decision=decision,
        swapped=pair.swapped,
        strength=strength if decision in STRENGTH_DECISIONS else 1,
        rationale=rationale,
        edited_id=edited_id,
        seconds=seconds,
        annotator=annotator,
        origin=origin,
    )
    record_comparison(db, comparison)
    return comparison


def record_edit(db: Any, pair: ReadyPair, text: str, base: str) -> int:
    """Store an edited answer (based on the `base` side, "left" or "right") as a generation; returns its id."""
    if base not in ("left", "right"):
        raise ValueError(f"an edit is based on 'left' or 'right', got {base!r}")
    base_id = pair.left_id if base == "left" else pair.right_id
    return add_generation(db, pair.prompt.id, text, origin="edit", params={"based_on": base_id, "side": base},
                          finished=True)


def undo_decision(db: Any, comparison_id: int) -> None:
    """Remove a decision made in this session (the pair goes back on screen)."""
    delete_comparison(db, comparison_id)


def add_note(db: Any, comparison_id: int, text: str) -> None:
    """Attach (or replace) the rationale of a recorded decision."""
    update_comparison(db, comparison_id, rationale=text)
