"""The prompt and the two responses: plain text or Markdown, titles, token counts; never the model's name."""

from __future__ import annotations

from rich.markdown import Markdown
from rich.text import Text
from textual.widgets import Static

from tuilab.labeling.candidates import Candidate
from tuilab.records import Prompt
from tuilab.tui.widgets.text_views import PromptView, ResponsePane, body

from .hosting import Host

CHAT = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "And now?"}]


def test_body_is_markdown_only_when_asked():
    assert isinstance(body("**bold**", True), Markdown)
    plain = body("**bold**", False)
    assert isinstance(plain, Text) and plain.plain == "**bold**"


async def test_prompt_view_titles_the_prompt_and_counts_turns():
    view = PromptView(id="prompt")
    app = Host(view)
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        text = view.query_one("#prompt-text", Static)
        view.show(Prompt(7, [{"role": "user", "content": "What is a prime?"}], "What is a prime?"))
        assert view.border_title == "Prompt #7" and view.border_subtitle == ""
        assert str(text.render()) == "What is a prime?"
        view.show(Prompt(8, CHAT, "And now?"))
        assert view.border_title == "Prompt #8" and view.border_subtitle == "4 turns"
        shown = str(text.render())
        assert shown.startswith("system: Be terse.") and "assistant: Hello." in shown and "user: And now?" in shown
        view.show(None)
        assert view.border_title == "Prompt" and view.border_subtitle == "" and str(text.render()) == ""


async def test_a_long_prompt_scrolls_and_a_new_one_starts_at_the_top():
    view = PromptView()
    app = Host(view)
    async with app.run_test(size=(80, 20)) as pilot:
        long = "\n".join(f"line {i}" for i in range(60))
        view.show(Prompt(1, [{"role": "user", "content": long}], long))
        await pilot.pause()
        assert view.max_scroll_y > 0
        view.scroll_end(animate=False)
        await pilot.pause()
        assert view.scroll_y > 0
        view.show(Prompt(2, [{"role": "user", "content": long}], long))
        await pilot.pause()
        assert view.scroll_y == 0


async def test_response_pane_shows_the_text_and_its_tokens_not_its_model():
    pane = ResponsePane("left", "1 ←", id="left")
    app = Host(pane)
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        assert pane.border_title == "Left [1 ←]" and pane.side == "left" and pane.can_focus
        text = pane.query_one(".response-text", Static)
        pane.show(Candidate("Paris is **the** capital.", model="secret-model", adapter="runs/ppo-1", n_tokens=7,
                            finished=True))
        assert str(text.render()) == "Paris is **the** capital." and pane.border_subtitle == "7 tokens"
        assert "secret-model" not in f"{pane.border_title}{pane.border_subtitle}{text.render()}"
        pane.show(Candidate("Paris is **the** capital.", model="m", n_tokens=48, finished=False), markdown=True)
        assert isinstance(text.content, Markdown) and pane.border_subtitle == "48 tokens · cut off"
        pane.show(Candidate("x", model="m"))
        assert pane.border_subtitle == "? tokens"
        pane.show(None)
        assert str(text.render()) == "" and pane.border_subtitle == ""
