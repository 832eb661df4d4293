"""The labeling screen: a prompt, two responses, one key per decision.

Nothing lost: a decision is committed (`record_comparison` returns after COMMIT)
before the next pair is shown. Never wait: the next pair comes from the feeder's
queue, with no model call on this thread. Biases visible: sides are randomised
per pair and recorded, the models are revealed only after the decision, and the
stats strip shows position and length bias.

Time to decide counts only while the pair is on screen and no dialog is open.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Header

from tuilab.labeling.candidates import Candidate
from tuilab.labeling.decisions import add_note, record_decision, record_edit, undo_decision
from tuilab.labeling.queue import FeedState, ReadyPair
from tuilab.tui.format import candidate_origin, decision_label
from tuilab.tui.messages import FeedChanged, MarkdownToggled, StatsChanged
from tuilab.tui.screens.keys import decision_bindings
from tuilab.tui.widgets import (
    ErrorPanel,
    PromptView,
    ResponsePane,
    StatsStrip,
    StatusLine,
    WaitingPanel,
)

if TYPE_CHECKING:
    from tuilab.tui.app import TuilabApp
    from tuilab.tui.screens.editor import EditResult


@dataclass
class Done:
    """A decision made in this session (what undo takes back)."""

    pair: ReadyPair
    comparison_id: int
    decision: str
    strength: int
    note: str
    seconds: float
    edited_id: int | None = None


class LabelScreen(Screen):
    """Compare two responses; every key is one decision or one edit of the last one."""

    KEYS_HELP = [
        ("Decide (saved before the next pair appears)", [
            ("1  ←", "left is better"),
            ("2  →", "right is better"),
            ("!  @", "left / right is MUCH better (shift+1 / shift+2; also shift+← / shift+→): strength 2, TRL margin"),
            ("t", "tie"),
            ("b", "both bad"),
            ("s", "skip (recorded, never trained on)"),
            ("e", "edit a response: your text is preferred over both (in the editor: ctrl+t other side, "
                  "ctrl+s save, esc cancel = nothing recorded)"),
        ]),
        ("Fix", [
            ("u", "undo the last decision (repeat to go further back): deletes it, shows that pair again"),
            ("n", "note on the pair on screen (saved with the decision); on the last decision when none is shown"),
            ("N", "note on the last decision"),
            ("r", "regenerate this pair (after an error: retry)"),
            ("esc", "stop waiting for a regeneration, show the next pair"),
        ]),
        ("View", [
            ("tab", "focus the prompt, the left or the right text; ↑ ↓ pgup pgdn scroll it"),
            ("m", "plain text / rendered Markdown"),
            ("c", "candidate source: two samples, or model A vs model B; pairs kept ready"),
        ]),
    ]
    HELP_NOTES = (
        "Which model wrote each side is hidden until you decide, then shown on the status line. "
        "Sides are shuffled per pair and the shuffle is recorded. Time to decide counts only while "
        "the pair is on screen and no dialog is open."
    )

    BINDINGS = [
        *decision_bindings("decide", shown=("1/←", "2/→")),
        # The arrows decide too (shift: much better).
        Binding("left", "decide('left')", "Left", show=False, priority=True),
        Binding("right", "decide('right')", "Right", show=False, priority=True),
        Binding("shift+left", "decide('left', 2)", "Left ≫", show=False, priority=True),
        Binding("shift+right", "decide('right', 2)", "Right ≫", show=False, priority=True),
        Binding("u", "undo", "Undo"),
        Binding("e", "edit", "Edit"),
        Binding("n", "note", "Note", show=False),
        Binding("N", "note_last", "Note on last", show=False),
        Binding("r", "regenerate", "Regen", show=False),
        Binding("m", "toggle_markdown", "Markdown", show=False),
        Binding("c", "app.candidate_settings", "Source", show=False),
        Binding("escape", "stop_waiting", "Next pair", show=False),
    ]

    class PairShown(Message):
        """Posted after a pair has been rendered (the latency bench listens for it)."""

        def __init__(self, pair: ReadyPair) -> None:
            super().__init__()
            self.pair = pair

    def __init__(self) -> None:
        super().__init__()
        self.current: ReadyPair | None = None
        self.history: list[Done] = []
        self.pending_note = ""
        self.awaiting_prompt: int | None = None
        self._shown_at = 0.0
        self._suspended_at: float | None = None
        self.clock = time.monotonic  # replaceable in tests

    @property
    def lab(self) -> TuilabApp:
        return self.app  # type: ignore[return-value]

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(icon="●")
        yield PromptView(id="prompt")
        with ContentSwitcher(initial="waiting", id="body"):
            with Horizontal(id="pair"):
                yield ResponsePane("left", "1 ←", id="left")
                yield ResponsePane("right", "2 →", id="right")
            yield WaitingPanel(id="waiting")
            yield ErrorPanel(id="error")
        yield StatusLine(id="status")
        yield StatsStrip(id="stats")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Label"
        self.query_one("#status", StatusLine).set_state(self.lab.feed_state)
        self._show_next()
        self.refresh_stats()
        self.query_one("#left", ResponsePane).focus()

    def on_screen_suspend(self) -> None:
        if self._suspended_at is None:
            self._suspended_at = self.clock()

    def on_screen_resume(self) -> None:
        self._resume_clock()
        self.refresh_stats()
        self._on_feed(self.lab.feed_state)

    def _resume_clock(self) -> None:
        """Time to decide does not run while a dialog or another screen is in front."""
        if self._suspended_at is not None:
            self._shown_at += self.clock() - self._suspended_at
            self._suspended_at = None

    def seconds_on_screen(self) -> float:
        if self._suspended_at is not None and self.is_active:
            self._resume_clock()  # a key can arrive before the resume event is handled
        end = self._suspended_at if self._suspended_at is not None else self.clock()
        return max(0.0, end - self._shown_at)

    # ------------------------------------------------------------ feeder

    def on_feed_changed(self, message: FeedChanged) -> None:
        self._on_feed(message.state)

    def on_stats_changed(self, message: StatsChanged) -> None:
        self.query_one("#stats", StatsStrip).set_stats(message.stats, message.report)

    def on_markdown_toggled(self, _message: MarkdownToggled) -> None:
        self.refresh_markdown()

    def _on_feed(self, state: FeedState) -> None:
        self.query_one("#status", StatusLine).set_state(state)
        if self.current is None:
            self._show_next()

    def _show_next(self) -> None:
        """Show the next ready pair, or say why there is none."""
        if self.current is not None:
            return
        feeder = self.lab.feeder
        # Audit pairs a PPO run has just written to the database come before the pairs generated earlier.
        pair = feeder.take(self.awaiting_prompt, db=self.lab.db) if feeder is not None else None
        if pair is not None:
            self.awaiting_prompt = None
            self._display(pair)
            return
        state = self.lab.feed_state
        switcher = self.query_one("#body", ContentSwitcher)
        waiting = self.query_one("#waiting", WaitingPanel)
        if state.phase in ("failed", "no_prompts"):
            waiting.stop()
            self._show_error(state)
            switcher.current = "error"
            return
        if self.awaiting_prompt is None and state.preview_prompt is not None:
            self._show_preview(state)
            return
        if self.awaiting_prompt is None:
            self.query_one("#prompt", PromptView).show(None)
        title = "Regenerating this pair…" if self.awaiting_prompt is not None else "Generating candidates…"
        switcher.current = "waiting"
        waiting.show_state(state, title)

    def _show_preview(self, state: FeedState) -> None:
        """The next pair as it is being written (sides as they will be shown); keys wait for the whole pair."""
        markdown = self.lab.markdown
        self.query_one("#prompt", PromptView).show(state.preview_prompt)
        for side, text in (("#left", state.preview_left), ("#right", state.preview_right)):
            pane = self.query_one(side, ResponsePane)
            pane.show(Candidate(text=text, model=""), markdown)
            pane.border_subtitle = "generating…"
        self.query_one("#waiting", WaitingPanel).stop()
        self.query_one("#body", ContentSwitcher).current = "pair"

    def _show_error(self, state: FeedState) -> None:
        panel = self.query_one("#error", ErrorPanel)
        if state.phase == "no_prompts":
            panel.show_error(
                "No prompts to label",
                state.error,
                "Checked again every few seconds. Meanwhile: F2 browses the data, ? shows the keys.",
            )
        else:
            panel.show_error(
                "Candidate generation failed",
                state.error or "unknown error",
                "r retries · c chooses another candidate source · F2 browses the data · "
                "the rest of the lab keeps working.",
                state.traceback,
            )

    def _display(self, pair: ReadyPair, note: str = "") -> None:
        self.current = pair
        self.pending_note = note
        self._shown_at = self.clock()
        if self._suspended_at is not None:
            self._suspended_at = self._shown_at
        markdown = self.lab.markdown
        prompt_view = self.query_one("#prompt", PromptView)
        prompt_view.show(pair.prompt)
        if pair.source.startswith("audit pair"):  # marked as an audit; which side is the policy stays hidden
            prompt_view.border_subtitle = " · ".join(b for b in (pair.source, prompt_view.border_subtitle) if b)
        self.query_one("#left", ResponsePane).show(pair.left, markdown)
        self.query_one("#right", ResponsePane).show(pair.right, markdown)
        self.query_one("#waiting", WaitingPanel).stop()
        self.query_one("#body", ContentSwitcher).current = "pair"
        if note:
            self._say(Text(f"✎ note: {note}", style="italic"))
        self.call_after_refresh(lambda: self.post_message(self.PairShown(pair)))

    def refresh_markdown(self) -> None:
        if self.current is not None:
            self.query_one("#left", ResponsePane).show(self.current.left, self.lab.markdown)
            self.query_one("#right", ResponsePane).show(self.current.right, self.lab.markdown)

    def refresh_stats(self) -> None:
        """Ask for fresh stats (computed in a worker; they arrive as a `StatsChanged` message)."""
        self.lab.refresh_label_stats()

    def _say(self, message: Text | str) -> None:
        self.query_one("#status", StatusLine).set_message(message)

    def _nothing_on_screen(self) -> None:
        state = self.lab.feed_state
        if state.phase == "failed":
            msg = "No pair on screen: generation failed (r retries)."
        elif self.awaiting_prompt is not None:
            msg = "Still regenerating this pair (esc shows the next one instead)."
        else:
            msg = "No pair on screen yet: still generating."
        self.notify(msg, severity="warning", timeout=3)

    # ------------------------------------------------------------ decisions

    def action_decide(self, decision: str, strength: int = 1) -> None:
        self.decide(decision, strength)

    def decide(self, decision: str, strength: int = 1, edited_id: int | None = None) -> int | None:
        """Record a decision on the pair on screen; returns the comparison id once committed."""
        pair = self.current
        if pair is None:
            self._nothing_on_screen()
            return None
        seconds = round(self.seconds_on_screen(), 3)
        try:
            comparison = record_decision(self.lab.db, pair, decision, strength=strength, rationale=self.pending_note,
                                         edited_id=edited_id, seconds=seconds, annotator=self.lab.annotator)
        except Exception as exc:  # noqa: BLE001 - the pair stays on screen: nothing is lost
            self.lab.report_error("Saving the decision", f"{type(exc).__name__}: {exc} — the pair stays on screen")
            return None
        cid, strength = comparison.id, comparison.strength
        self.history.append(Done(pair, cid, decision, strength, self.pending_note, seconds, edited_id))
        self.current = None
        self.pending_note = ""
        self._show_next()
        self._reveal(cid, pair, decision, strength, edited_id is not None)
        self.call_after_refresh(self.refresh_stats)
        return cid

    def _reveal(self, cid: int, pair: ReadyPair, decision: str, strength: int, edited: bool) -> None:
        """After the decision, and only then: which model wrote each side."""
        label = decision_label(decision, strength, edited)
        line = Text()
        line.append(f"#{cid} {label}", style="bold")
        line.append(" · left: ", style="dim")
        line.append(candidate_origin(pair.left))
        line.append(" · right: ", style="dim")
        line.append(candidate_origin(pair.right))
        why = pair.left.params.get("why")  # the disagreement source says why it asked this pair
        if why:
            line.append(f" · {why}", style="dim")
        self._say(line)
        if self.lab.reveal_toasts:
            self.notify(
                f"left: {candidate_origin(pair.left)}\nright: {candidate_origin(pair.right)}",
                title=f"#{cid} {label}",
                timeout=2.5,
            )

    def action_undo(self) -> None:
        if not self.history:
            self.notify("Nothing to undo: no decision left in this session.", severity="warning", timeout=3)
            return
        done = self.history[-1]
        try:
            undo_decision(self.lab.db, done.comparison_id)
        except Exception as exc:  # noqa: BLE001
            self.lab.report_error("Undo", f"{type(exc).__name__}: {exc}")
            return
        self.history.pop()
        if self.current is not None and self.lab.feeder is not None:
            self.lab.feeder.put_front(self.current)
        self.current = None
        self.awaiting_prompt = None
        self._display(done.pair, note=done.note)
        self._say(Text(f"undone: #{done.comparison_id} {decision_label(done.decision, done.strength)}"
                       f" — the pair is back ({len(self.history)} more to undo)", style="yellow"))
        self.call_after_refresh(self.refresh_stats)

    # ------------------------------------------------------------ edit, notes, regenerate

    def action_edit(self) -> None:
        from tuilab.tui.screens.editor import EditScreen

        pair = self.current
        if pair is None:
            self._nothing_on_screen()
            return
        self.app.push_screen(EditScreen(pair.left.text, pair.right.text, base="left"), self._edited)

    def _edited(self, result: EditResult | None) -> None:
        pair = self.current
        if result is None or pair is None:
            self.notify("Edit cancelled: nothing recorded.", timeout=3)
            return
        base_text = pair.left.text if result.base == "left" else pair.right.text
        if result.text.strip() == base_text.strip():
            self.notify(f"Text unchanged: recorded as {result.base} better, without an edit.", timeout=3)
            self.decide(result.base)
            return
        try:
            gen_id = record_edit(self.lab.db, pair, result.text, result.base)
        except Exception as exc:  # noqa: BLE001
            self.lab.report_error("Saving the edit", f"{type(exc).__name__}: {exc} — the pair stays on screen")
            return
        self.decide(result.base, edited_id=gen_id)

    def action_note(self) -> None:
        from tuilab.tui.screens.note import NoteScreen

        if self.current is None:
            self.action_note_last()
            return

        def done(text: str | None) -> None:
            if text is None:
                return
            self.pending_note = text
            self._say(Text(f"✎ note: {text}" if text else "note cleared", style="italic"))

        self.app.push_screen(NoteScreen(self.pending_note, "Note on this pair (saved with your decision)"), done)

    def action_note_last(self) -> None:
        from tuilab.tui.screens.note import NoteScreen

        if not self.history:
            self.notify("No decision yet in this session to add a note to.", severity="warning", timeout=3)
            return
        last = self.history[-1]

        def done(text: str | None) -> None:
            if text is None:
                return
            try:
                add_note(self.lab.db, last.comparison_id, text)
            except Exception as exc:  # noqa: BLE001
                self.lab.report_error("Saving the note", f"{type(exc).__name__}: {exc}")
                return
            last.note = text
            self._say(Text(f"✎ note saved on #{last.comparison_id}", style="italic"))

        self.app.push_screen(NoteScreen(last.note, f"Note on decision #{last.comparison_id}"), done)

    def action_regenerate(self) -> None:
        state = self.lab.feed_state
        if self.current is None:
            if state.phase in ("failed", "no_prompts") or self.lab.feeder is None:
                self.notify("Retrying candidate generation…", timeout=2)
                self.lab.retry_candidates()
                self._show_next()
            else:
                self._nothing_on_screen()
            return
        if self.lab.feeder is None:
            return
        prompt = self.current.prompt
        self.current = None
        self.awaiting_prompt = prompt.id
        self.lab.feeder.regenerate(prompt)
        self._say(Text(f"regenerating prompt #{prompt.id} (the old pair stays stored, unlabeled)", style="dim"))
        self._show_next()

    def action_stop_waiting(self) -> None:
        if self.awaiting_prompt is None:
            return
        self.awaiting_prompt = None
        self._show_next()

    def action_toggle_markdown(self) -> None:
        self.lab.toggle_markdown()
        self.notify("Markdown rendered" if self.lab.markdown else "Plain text", timeout=1.5)
