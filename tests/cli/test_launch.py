"""Bare `tuilab`'s options for the lab UI: the label queue's share of self-consistency repeats."""

from __future__ import annotations

import pytest

from tuilab.cli import build_parser, main


def test_repeat_share_defaults_to_five_percent_and_takes_a_fraction_or_a_percentage():
    parser = build_parser()
    assert parser.parse_args([]).repeat_share == 0.05
    assert parser.parse_args(["--repeat-share", "10%"]).repeat_share == pytest.approx(0.10)
    assert parser.parse_args(["--repeat-share", "0.2", "runs", "list"]).repeat_share == pytest.approx(0.2)
    assert parser.parse_args(["--repeat-share", "0"]).repeat_share == 0.0


@pytest.mark.parametrize("value, words", [("60%", "between 0 and 0.5"), ("-0.1", "between 0 and 0.5"),
                                          ("often", "such as 0.05 or 5%")])
def test_a_repeat_share_out_of_range_is_one_line_before_anything_starts(value, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["--home", str(tmp_path), "--repeat-share", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "--repeat-share" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "db").exists()
