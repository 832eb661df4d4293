"""Reusable widgets of the lab's screens (styled in `tuilab/tui/app.tcss`)."""

from tuilab.tui.widgets.panels import ErrorPanel, WaitingPanel
from tuilab.tui.widgets.status import StatsStrip, StatusLine
from tuilab.tui.widgets.text_views import PromptView, ResponsePane

__all__ = ["ErrorPanel", "PromptView", "ResponsePane", "StatsStrip", "StatusLine", "WaitingPanel"]
