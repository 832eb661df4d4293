"""The decision keys the label screen and an opened comparison share."""

from __future__ import annotations

from tuilab.tui.screens.detail import ComparisonScreen
from tuilab.tui.screens.keys import decision_bindings
from tuilab.tui.screens.label import LabelScreen


def test_decision_bindings_call_the_action_with_each_decision():
    actions = {b.key: b.action for b in decision_bindings("relabel")}
    assert actions == {
        "1": "relabel('left')", "2": "relabel('right')",
        "exclamation_mark": "relabel('left', 2)", "at,quotation_mark": "relabel('right', 2)",
        "t": "relabel('tie')", "b": "relabel('both_bad')", "s": "relabel('skip')",
    }
    shown = [(b.key, b.key_display) for b in decision_bindings("decide", shown=("1/←", "2/→")) if b.show]
    assert shown == [("1", "1/←"), ("2", "2/→"), ("t", None), ("b", None), ("s", None)]


def test_both_screens_decide_with_the_same_keys():
    def decisions(screen: type, action: str) -> dict[str, str]:
        return {b.key: b.action.removeprefix(action) for b in screen.BINDINGS if b.action.startswith(action)}

    label, detail = decisions(LabelScreen, "decide"), decisions(ComparisonScreen, "relabel")
    assert detail.items() <= label.items()  # the label screen adds the arrows
    assert set(label) - set(detail) == {"left", "right", "shift+left", "shift+right"}
