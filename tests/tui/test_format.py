"""The screens' wording, without an app: decisions, prompts, the stats strip, model reveals, token counts."""

from __future__ import annotations

from rich.text import Text

from tuilab.diagnostics.agreement import Agreement
from tuilab.diagnostics.intervals import Interval
from tuilab.labeling.candidates import Candidate
from tuilab.labeling.consistency import LabelerReport
from tuilab.records import LabelStats, Prompt
from tuilab.tui.format import (
    candidate_origin,
    decision_label,
    pct,
    prompt_text,
    stats_text,
    tokens_label,
)


def style_of(text: Text, part: str) -> str:
    """The styles of the spans covering the first character of `part` (what the reader sees it in)."""
    at = text.plain.index(part)
    return " ".join(str(s.style) for s in text.spans if s.start <= at < s.end)


# ---------------------------------------------------------------- decisions


def test_decision_label_says_strength_and_edit_only_where_they_mean_something():
    assert decision_label("left") == "left better"
    assert decision_label("right", 2) == "right much better"
    assert decision_label("tie", 2) == "tie"  # a tie has no strength
    assert decision_label("both_bad") == "both bad" and decision_label("skip") == "skipped"
    assert decision_label("left", 2, edited=True) == "left much better, edited"
    assert decision_label("hacked") == "hacked"  # a decision it does not know is shown as stored


# ---------------------------------------------------------------- prompts


def test_a_single_user_turn_is_shown_plain():
    p = Prompt(id=1, messages=[{"role": "user", "content": "Why do cats purr?"}], text="Why do cats purr?")
    shown = prompt_text(p)
    assert shown.plain == "Why do cats purr?" and not shown.spans


def test_several_turns_are_a_transcript_with_each_role_named_and_coloured():
    msgs = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi."},
            {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye?"}]
    shown = prompt_text(Prompt(id=2, messages=msgs, text="Bye?"))
    assert shown.plain == "system: Be terse.\n\nuser: Hi.\n\nassistant: Hello.\n\nuser: Bye?\n"
    assert style_of(shown, "system:") == "bold magenta" and style_of(shown, "assistant:") == "bold green"
    assert style_of(shown, "Be terse.") == "italic"  # the system prompt reads as an instruction
    # A lone system turn is not a plain question: it is shown with its role.
    assert prompt_text(None, [{"role": "system", "content": "Be terse."}]).plain == "system: Be terse.\n"


def test_messages_given_win_over_the_prompts_and_a_prompt_without_messages_shows_its_text():
    p = Prompt(id=3, messages=[{"role": "user", "content": "stored"}], text="stored")
    assert prompt_text(p, [{"role": "user", "content": "given"}]).plain == "given"
    assert prompt_text(Prompt(id=4, messages=[], text="only text")).plain == "only text"
    assert prompt_text(None).plain == ""


# ---------------------------------------------------------------- the stats strip


def stats(**kw) -> LabelStats:
    base = dict(session=3, total=10, by_decision={"left": 4, "right": 2, "tie": 1, "skip": 3},
                left_share=4 / 6, longer_share=None, median_seconds=2.5)
    return LabelStats(**{**base, **kw})


def test_pct_rounds_and_has_a_dash_for_no_data():
    assert (pct(None), pct(0.0), pct(0.5), pct(2 / 3), pct(1.0)) == ("–", "0%", "50%", "67%", "100%")


def test_wide_strip_counts_every_decision_and_the_biases_on_one_line():
    shown = stats_text(stats()).plain
    assert shown == ("labeled 3 session · 10 total │ left 4 · right 2 · tie 1 · both bad 0 · skip 3 │ "
                     "left picks 67% · longer picked – │ median 2.5s")


def test_narrow_strip_fits_78_columns_up_to_999_of_each_decision():
    assert stats_text(stats(), wide=False).plain == "3 session/10 │ L4 R2 T1 B0 S3 │ left 67% longer – │ med 2.5s"
    big = stats(session=999, total=9999, median_seconds=12.3,
                by_decision={"left": 999, "right": 999, "tie": 999, "both_bad": 999, "skip": 999},
                left_share=0.5, longer_share=0.5)
    line = stats_text(big, wide=False).plain
    assert len(line) <= 78 and line.endswith("med 12.3s")
    assert stats_text(stats(median_seconds=None), wide=False).plain.endswith("med –")


def test_a_bias_is_highlighted_only_with_ten_strict_picks_and_far_from_half():
    few = stats_text(stats(by_decision={"left": 6, "right": 3}, left_share=6 / 9))
    assert style_of(few, "67%") == ""  # 9 strict picks: too few to call it a bias
    far = stats_text(stats(by_decision={"left": 8, "right": 2}, left_share=0.8, longer_share=0.6))
    assert style_of(far, "80%") == "bold red"  # 30 points off 50 %: more than the 15-point tolerance
    assert style_of(far, "60%") == "green"


def interval(estimate: float, low: float, high: float, n: int) -> Interval:
    return Interval(estimate=estimate, low=low, high=high, n=n)


def report(position=None, length=None, agreement=None) -> LabelerReport:
    return LabelerReport(labeler="me", decisions=20, repeats=agreement.n if agreement else 0,
                         self_agreement=agreement, position=position, length=length)


def test_with_the_labelers_figures_each_bias_has_its_interval_and_count():
    rep = report(position=interval(0.8, 0.58, 0.92, 20), length=interval(0.55, 0.34, 0.74, 20))
    shown = stats_text(stats(), report=rep)
    first, second = shown.plain.split("\n")
    assert first == ("labeled 3 session · 10 total │ left 4 · right 2 · tie 1 · both bad 0 · skip 3 │ "
                     "median 2.5s")
    assert second == "left picks 80% [58–92%] n=20 · longer picked 55% [34–74%] n=20"
    assert style_of(shown, "80%") == "bold red"  # the interval excludes 50 %
    assert style_of(shown, "55%") == "green"  # it includes 50 %
    narrow = stats_text(stats(), wide=False, report=rep).plain
    assert narrow.endswith("\nleft 80%±17 longer 55%±20")


def test_intervals_on_fewer_than_ten_picks_are_not_shown_and_keep_one_line():
    rep = report(position=interval(0.8, 0.38, 0.96, 5), length=None)
    shown = stats_text(stats(), report=rep).plain
    assert "\n" not in shown and "left picks 67%" in shown and "n=5" not in shown


def test_self_agreement_appears_once_a_repeat_is_decided():
    agreement = Agreement(n=4, agree=3, percent=interval(0.75, 0.3, 0.95, 4), kappa=None, kappa_interval=None)
    rep = report(agreement=agreement)
    wide = stats_text(stats(), report=rep).plain
    assert wide.split("\n")[1] == "left picks 67% · longer picked – │ self-agreement 75% [30–95%] on 4 repeats"
    assert stats_text(stats(), wide=False, report=rep).plain.endswith("│ self 3/4")
    one = Agreement(n=1, agree=1, percent=interval(1.0, 0.21, 1.0, 1), kappa=None, kappa_interval=None)
    assert "on 1 repeat" in stats_text(stats(), report=report(agreement=one)).plain
    assert "repeats" not in stats_text(stats(), report=report(agreement=one)).plain
    nothing = Agreement(n=0, agree=0, percent=None, kappa=None, kappa_interval=None)
    assert "self" not in stats_text(stats(), report=report(agreement=nothing)).plain


# ---------------------------------------------------------------- candidates


def test_candidate_origin_names_model_adapter_side_temperature_and_seed():
    c = Candidate("x", "smollm2", "runs/ppo-1/policy", params={"temperature": 0.7, "seed": 0, "side": "B"})
    assert candidate_origin(c) == "smollm2 + runs/ppo-1/policy (B, T 0.7, seed 0)"
    assert candidate_origin(Candidate("x", "smollm2", params={"seed": None, "temperature": 1.0})) == "smollm2 (T 1)"
    assert candidate_origin(Candidate("x", "smollm2")) == "smollm2"
    assert candidate_origin(Candidate("x", "")) == "?"


def test_tokens_label_says_when_a_response_was_cut_off():
    assert tokens_label(Candidate("x", "m", n_tokens=12, finished=True)) == "12 tokens"
    assert tokens_label(Candidate("x", "m", n_tokens=64, finished=False)) == "64 tokens · cut off"
    assert tokens_label(Candidate("x", "m")) == "? tokens"  # unknown count, unknown end: nothing claimed
