"""The inspector's widgets: sorting samples, their cells and wording, the samples table and the detail pane."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from tuilab.diagnostics.flags import FLAG_HELP
from tuilab.records import Sample
from tuilab.tui.widgets.samples import (
    COLUMNS,
    SampleDetail,
    SamplesTable,
    flag_cell,
    flags_text,
    num,
    numbers_line,
    row_cells,
    sort_samples,
    sort_value,
)

from .hosting import Host


def test_sorting_puts_missing_values_last():
    a = Sample("p", "a", score=0.5, kl=None, flags=["long"], step=1)
    b = Sample("p", "b", score=1.5, kl=0.2, step=2)
    c = Sample("p", "c", score=None, kl=0.1, flags=["long", "no_eos"], step=3)
    assert [s.response for s in sort_samples([a, b, c], "score")] == ["b", "a", "c"]
    assert [s.response for s in sort_samples([a, b, c], "score", descending=False)] == ["a", "b", "c"]
    assert [s.response for s in sort_samples([a, b, c], "kl")] == ["b", "c", "a"]
    assert [s.response for s in sort_samples([a, b, c], "flags")] == ["c", "a", "b"]
    with pytest.raises(ValueError):
        sort_samples([a], "colour")


def test_wording():
    assert "cut off at the length cap" in str(flags_text(["no_eos"]))
    assert "No flags" in str(flags_text([]))


def test_a_bad_sort_key_names_the_keys_there_are():
    with pytest.raises(ValueError, match=r"sort by one of score, kl, length, spread, flags, step, gold; got 'colour'"):
        sort_samples([], "colour")
    assert sort_samples([], "score") == []


def test_ties_go_to_the_newest_step_and_missing_values_stay_newest_first():
    old, new = Sample("p", "old", score=1.0, step=1), Sample("p", "new", score=1.0, step=5)
    none_old, none_new = Sample("p", "n1", step=2), Sample("p", "n2", step=9)
    for descending in (True, False):
        got = sort_samples([old, none_old, new, none_new], "score", descending=descending)
        assert [s.response for s in got] == ["new", "old", "n2", "n1"]
    assert [s.response for s in sort_samples([old, new], "step", descending=False)] == ["old", "new"]


def test_a_non_finite_value_sorts_as_missing_like_the_store():
    """The store writes NaN/inf as NULL; the in-memory sort must put them where the store would: last."""
    a, b = Sample("p", "a", score=1.0, step=1), Sample("p", "b", score=3.0, step=3)
    c = Sample("p", "c", score=2.0, step=4)
    nan, inf = Sample("p", "nan", score=float("nan"), step=2), Sample("p", "inf", score=float("inf"), step=5)
    assert [s.response for s in sort_samples([a, nan, b, c], "score")] == ["b", "c", "a", "nan"]
    assert [s.response for s in sort_samples([c, inf, a], "score")] == ["c", "a", "inf"]

def test_sort_values():
    s = Sample("p", "r", score=2.0, length=12, flags=["long", "repetitive"], step=3)
    assert sort_value(s, "score") == 2.0 and sort_value(s, "length") == 12.0 and sort_value(s, "step") == 3.0
    assert sort_value(s, "flags") == 2.0 and sort_value(Sample("p", "r"), "flags") == 0.0
    assert sort_value(s, "gold") is None


def test_table_cells_of_a_sample():
    s = Sample("p", "r", score=1.23456, gold=None, kl=0.5, length=40, eos=False, spread=0.1,
               flags=["long", "no_eos", "new_flag"], step=7, hacked=True)
    cells = row_cells(s)
    assert len(cells) == len(COLUMNS)
    assert [str(c) for c in cells] == ["7", "1.23", "–", "0.50", "40✂", "0.10", "hacked", "long cut new_flag"]
    assert cells[6].style == "bold red" and cells[7].style == "yellow"
    plain = row_cells(Sample("p", "r", eos=True))
    assert [str(c) for c in plain] == ["0", "–", "–", "–", "–", "–", "", ""] and plain[7].style == ""
    assert num(None) == "–" and num(0.12345, 3) == "0.123" and num(2) == "2.00"
    assert flag_cell(["uncertain", "overrated"]).plain == "unsure over"


def test_numbers_line_spells_out_what_the_row_abbreviates():
    s = Sample("p", "r", score=1.5, gold=-0.25, kl=0.125, length=12, spread=None, eos=False, step=4, hacked=True)
    assert numbers_line(s).plain == ("step 4 · score 1.500 · gold -0.250 · KL 0.125 · tokens 12 · spread – · "
                                     "cut off (no end-of-turn) · marked hacked")
    assert numbers_line(Sample("p", "r", eos=True)).plain == (
        "step 0 · score – · gold – · KL – · tokens – · spread –")


def test_flags_in_words():
    text = flags_text(["long", "no_eos", "mystery"]).plain.split("\n")
    assert text[0] == f"long: {FLAG_HELP['long']}"
    assert text[1] == f"cut (no eos): {FLAG_HELP['no_eos']}"
    assert text[2] == "mystery: (no explanation recorded for this flag)"


def _samples() -> list[Sample]:
    return [Sample("Q1?", "short", score=0.5, step=1), Sample("Q2?", "long one", score=1.5, flags=["long"], step=2),
            Sample("Q3?", "middle", score=1.0, step=3)]


async def test_the_table_lists_samples_keeps_the_cursor_and_refreshes_a_row():
    table = SamplesTable(id="table")
    app = Host(table)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        assert [str(c.label) for c in table.columns.values()] == [label for _, label in COLUMNS]
        assert table.current() is None
        samples = _samples()
        table.show(samples)
        assert table.row_count == 3 and table.current() is samples[0]
        assert [str(c) for c in table.get_row("1")][:2] == ["2", "1.50"]
        ordered = sort_samples(samples, "score")
        table.show(ordered, keep=samples[0])  # re-sorted: the cursor follows the sample it was on
        assert table.cursor_row == 2 and table.current() is samples[0]
        await pilot.press("up")
        assert table.current() is samples[2]
        samples[2].hacked = True
        table.refresh_sample(samples[2])
        assert str(table.get_cell("1", "hacked")) == "hacked"
        table.show(ordered, keep=Sample("Q?", "not listed"))
        assert table.cursor_row == 0
        table.show([])
        assert table.row_count == 0 and table.current() is None


def _static(detail: SampleDetail, selector: str) -> str:
    return str(detail.query_one(selector, Static).render())


async def test_the_detail_pane_shows_one_sample_beside_its_reference():
    detail = SampleDetail(id="detail")
    app = Host(detail)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = Sample("What is 2+2?", "Four, and here is a long story about numbers", ref_response="4.",
                   score=2.0, length=11, eos=False, flags=["long"], step=6)
        detail.show(s)
        assert _static(detail, "#sd-numbers").startswith("step 6 · score 2.000")
        assert _static(detail, "#sd-prompt") == "Prompt  What is 2+2?"
        assert _static(detail, "#sd-policy") == s.response and _static(detail, "#sd-ref") == "4."
        policy = detail.query_one("#sd-policy", Static)
        assert policy.border_title == "Policy (this sample)" and policy.border_subtitle == "no end-of-turn: cut off"
        assert detail.query_one("#sd-ref", Static).border_title == "Reference (adapter off)"
        assert _static(detail, "#sd-flags").startswith("long: ")
        detail.show(Sample("Q?", "A.", eos=True))
        assert "no reference answer was sampled at this step" in _static(detail, "#sd-ref")
        assert policy.border_subtitle == "" and _static(detail, "#sd-flags").startswith("No flags")
        detail.show(None)
        assert _static(detail, "#sd-numbers") == "No sample selected."
        assert all(_static(detail, w) == "" for w in ("#sd-prompt", "#sd-policy", "#sd-ref", "#sd-flags"))
