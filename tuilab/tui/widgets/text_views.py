"""The prompt and the two responses: each scrolls on its own, plain text or Markdown."""

from __future__ import annotations

from rich.markdown import Markdown as RichMarkdown
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tuilab.labeling.candidates import Candidate
from tuilab.records import Prompt
from tuilab.tui.format import prompt_text, tokens_label


def body(text: str, markdown: bool) -> RichMarkdown | Text:
    """Markdown rendered by Rich (cheap, no widget tree) or the literal text."""
    return RichMarkdown(text) if markdown else Text(text)


class PromptView(VerticalScroll):
    """The prompt, chat-formatted when it has several turns."""

    def compose(self) -> ComposeResult:
        yield Static(id="prompt-text", markup=False)

    def show(self, prompt: Prompt | None) -> None:
        self.query_one("#prompt-text", Static).update(prompt_text(prompt) if prompt else Text(""))
        n = len(prompt.messages) if prompt else 0
        self.border_title = f"Prompt #{prompt.id}" if prompt else "Prompt"
        self.border_subtitle = f"{n} turns" if n > 1 else ""
        self.scroll_home(animate=False)


class ResponsePane(VerticalScroll, can_focus=True):
    """One side of the pair. Its model is never shown here (revealed after the decision)."""

    def __init__(self, side: str, keys: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.side = side
        self.keys = keys
        self.border_title = f"{side.capitalize()} [{keys}]"

    def compose(self) -> ComposeResult:
        yield Static(classes="response-text", markup=False)

    def show(self, candidate: Candidate | None, markdown: bool = False) -> None:
        text = candidate.text if candidate else ""
        self.query_one(".response-text", Static).update(body(text, markdown))
        self.border_subtitle = tokens_label(candidate) if candidate else ""
        self.scroll_home(animate=False)
