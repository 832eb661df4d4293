"""One comparison in full (both responses, the decision, the models) and one prompt in full.

Here the models are shown: the decision is already made. Re-labeling changes the
stored row in place; deleting removes it (and its edit, if nothing else uses it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tuilab.labeling.candidates import Candidate
from tuilab.records import Generation
from tuilab.tui.format import candidate_origin, decision_label
from tuilab.tui.screens.keys import decision_bindings
from tuilab.tui.widgets import PromptView, ResponsePane

if TYPE_CHECKING:
    from tuilab.tui.app import TuilabApp


def as_candidate(g: Generation) -> Candidate:
    return Candidate(g.text, g.model, g.adapter, g.n_tokens, g.finished, dict(g.params))


def origin_of(g: Generation) -> str:
    if g.origin == "edit":
        return "human edit"
    who = candidate_origin(as_candidate(g))
    return who if g.origin == "model" else f"{who} [{g.origin}]"


class ComparisonScreen(ModalScreen[bool]):
    """Returns True when the comparison was changed or deleted (the list reloads)."""

    BINDINGS = [
        Binding("escape,q", "close", "Close", priority=True),
        *decision_bindings("relabel"),
        Binding("n", "note", "Note"),
        Binding("d,delete", "delete", "Delete"),
        Binding("m", "toggle_markdown", "Markdown"),
    ]

    def __init__(self, comparison_id: int) -> None:
        super().__init__()
        self.cid = comparison_id
        self.changed = False
        self._c: Any = None
        self._gens: dict[str, Generation] = {}

    @property
    def lab(self) -> TuilabApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="detail-dialog", classes="dialog"):
            yield Static(id="detail-meta", markup=False)
            yield PromptView(id="detail-prompt")
            with Horizontal(id="detail-pair"):
                yield ResponsePane("left", "1", id="detail-left")
                yield ResponsePane("right", "2", id="detail-right")
            yield ResponsePane("edit", "preferred over both", id="detail-edit")
            yield Static(
                Text.assemble(("1 2 ! @ t b s", "bold"), " re-label · ", ("n", "bold"), " note · ",
                              ("d", "bold"), " delete · ", ("m", "bold"), " markdown · ", ("esc", "bold"), " close"),
                id="detail-hint",
            )

    def on_mount(self) -> None:
        self.load()
        self.query_one("#detail-left").focus()

    def load(self) -> None:
        from tuilab.store.comparisons import get_comparison
        from tuilab.store.generations import get_generation
        from tuilab.store.prompts import get_prompt

        db = self.lab.db
        c = self._c = get_comparison(db, self.cid)
        self._gens = {"left": get_generation(db, c.left_id), "right": get_generation(db, c.right_id)}
        if c.edited_id is not None:
            self._gens["edit"] = get_generation(db, c.edited_id)
        self.query_one("#detail-prompt", PromptView).show(get_prompt(db, c.prompt_id))
        self._show_texts()
        meta = Text()
        meta.append(f"#{c.id} ", style="bold")
        meta.append(decision_label(c.decision, c.strength, c.edited_id is not None), style="bold reverse")
        bits = [f"sides {'swapped' if c.swapped else 'as generated'}"]
        if c.seconds is not None:
            bits.append(f"{c.seconds:.1f} s to decide")
        if c.margin is not None:
            bits.append(f"margin {c.margin:g}")
        bits += [c.origin, c.created_at[:16].replace("T", " ")]
        if c.annotator:
            bits.append(c.annotator)
        meta.append("  " + " · ".join(bits), style="dim")
        if c.rationale:
            meta.append(f"\n✎ {c.rationale}", style="italic")
        self.query_one("#detail-meta", Static).update(meta)

    def _show_texts(self) -> None:
        c = self._c
        md = self.lab.markdown
        for side in ("left", "right"):
            pane = self.query_one(f"#detail-{side}", ResponsePane)
            g = self._gens[side]
            pane.show(as_candidate(g), md)
            mark = " ✓" if c.decision == side else ""
            pane.border_title = f"{side.capitalize()}{mark} · {origin_of(g)}"
            pane.set_class(c.decision == side, "chosen")
        edit = self.query_one("#detail-edit", ResponsePane)
        edit.display = "edit" in self._gens
        if "edit" in self._gens:
            edit.show(as_candidate(self._gens["edit"]), md)
            edit.border_title = "Edit ✓ (preferred over both)"

    def action_toggle_markdown(self) -> None:
        self.lab.toggle_markdown()
        self._show_texts()

    def action_relabel(self, decision: str, strength: int = 1) -> None:
        from tuilab.store.comparisons import update_comparison

        try:
            update_comparison(self.lab.db, self.cid, decision=decision,
                              strength=strength if decision in ("left", "right") else 1)
        except Exception as exc:  # noqa: BLE001
            self.lab.report_error("Re-label", f"{type(exc).__name__}: {exc}")
            return
        self.changed = True
        self.load()
        self.notify(f"#{self.cid} re-labeled: {decision_label(decision, strength)}", timeout=2)

    def action_note(self) -> None:
        from tuilab.store.comparisons import update_comparison
        from tuilab.tui.screens.note import NoteScreen

        def done(text: str | None) -> None:
            if text is None:
                return
            update_comparison(self.lab.db, self.cid, rationale=text)
            self.changed = True
            self.load()

        self.app.push_screen(NoteScreen(self._c.rationale, f"Note on decision #{self.cid}"), done)

    def action_delete(self) -> None:
        from tuilab.store.comparisons import delete_comparison
        from tuilab.tui.screens.confirm import ConfirmScreen

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_comparison(self.lab.db, self.cid)
            except Exception as exc:  # noqa: BLE001
                self.lab.report_error("Delete", f"{type(exc).__name__}: {exc}")
                return
            self.notify(f"#{self.cid} deleted", timeout=2)
            self.dismiss(True)

        self.app.push_screen(ConfirmScreen(f"Delete comparison #{self.cid}? Its responses stay stored."), done)

    def action_close(self) -> None:
        self.dismiss(self.changed)


class PromptScreen(ModalScreen[None]):
    """A prompt's full conversation and where it came from."""

    BINDINGS = [Binding("escape,q", "close", "Close", priority=True)]

    def __init__(self, prompt_id: int) -> None:
        super().__init__()
        self.prompt_id = prompt_id

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-dialog", classes="dialog"):
            yield Static(id="prompt-meta", markup=False)
            yield PromptView(id="prompt-full")
            yield Static(Text.assemble(("esc", "bold"), " close"), id="prompt-hint")

    def on_mount(self) -> None:
        from tuilab.store.prompts import get_prompt, prompt_usage

        db = self.app.db  # type: ignore[attr-defined]
        p = get_prompt(db, self.prompt_id)
        n_gen, n_cmp = prompt_usage(db, p.id)
        self.query_one("#prompt-meta", Static).update(Text.assemble(
            (f"Prompt #{p.id}", "bold"),
            (f"  {p.split} split · source {p.source or '–'} · {n_gen} responses · {n_cmp} comparisons", "dim"),
        ))
        view = self.query_one("#prompt-full", PromptView)
        view.show(p)
        view.focus()

    def action_close(self) -> None:
        self.dismiss(None)
