"""Key bindings more than one screen shares."""

from __future__ import annotations

from textual.binding import Binding


def decision_bindings(action: str, shown: tuple[str, str] = ("1", "2")) -> list[Binding]:
    """The keys of a preference decision, each calling `action(decision[, strength])`: 1 / 2 left /
    right better, ! / @ much better (strength 2), t tie, b both bad, s skip. `shown`: how the footer
    writes the keys 1 and 2 (the label screen adds its arrows). The label screen decides with them,
    an opened comparison re-labels."""
    return [
        Binding("1", f"{action}('left')", "Left", key_display=shown[0]),
        Binding("2", f"{action}('right')", "Right", key_display=shown[1]),
        Binding("exclamation_mark", f"{action}('left', 2)", "Left ≫", show=False, key_display="!"),
        Binding("at,quotation_mark", f"{action}('right', 2)", "Right ≫", show=False, key_display="@"),
        Binding("t", f"{action}('tie')", "Tie"),
        Binding("b", f"{action}('both_bad')", "Both bad"),
        Binding("s", f"{action}('skip')", "Skip"),
    ]
