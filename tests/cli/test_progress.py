"""cli/progress.py: forwarded event batches → one rich bar on stderr, warnings and checkpoints as lines."""

from __future__ import annotations

import pytest

from tuilab.cli.progress import Column, ProgressView
from tuilab.training.events import Cancelled, Checkpoint, Metrics, RunWarning

COLUMNS = [Column("score", "objective/scores", "+.3f"), Column("kl", "objective/kl", ".2f"),
           Column("", "time/step_s", ".1f", "s/step")]


def _task(view: ProgressView):
    return view.progress.tasks[0]


def test_metrics_fill_their_columns_and_move_the_bar(capsys):
    with ProgressView("ppo", COLUMNS, quiet=False) as view:
        assert _task(view).fields == {"f0": "–", "f1": "–", "f2": "–"}  # nothing known yet
        view([Metrics(step=1, values={"objective/scores": 0.12345, "time/step_s": 2.04}, total_steps=8)])
        assert _task(view).fields == {"f0": "+0.123", "f1": "–", "f2": "2.0s/step"}
        assert (_task(view).completed, _task(view).total) == (1, 8)
        # A later batch updates what it carries and keeps the rest.
        view([Metrics(step=2, values={"objective/kl": 0.5}, total_steps=8),
              Metrics(step=3, values={"objective/scores": -1.0, "other": 9.0}, total_steps=8)])
        assert _task(view).fields == {"f0": "-1.000", "f1": "0.50", "f2": "2.0s/step"}
        assert _task(view).completed == 3
    final = capsys.readouterr().err.splitlines()[-1]
    assert final.startswith("ppo ") and "3/8 score -1.000 kl 0.50 2.0s/step" in final


def test_warnings_and_checkpoints_print_as_lines_above_the_bar(capsys):
    with ProgressView("reward model", COLUMNS[:1], quiet=False) as view:
        view([RunWarning(step=4, code="length_drift", message="answers grew 3× longer"),
              Checkpoint(step=5, path="/lab/models/runs/ppo-1/checkpoints/step-5"),
              Cancelled(step=5)])  # an event the bar does not show is ignored
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "warning (step 4, length_drift): answers grew 3× longer"
    assert lines[1] == "checkpoint at step 5: /lab/models/runs/ppo-1/checkpoints/step-5"


def test_quiet_keeps_the_bar_off_but_still_prints_the_lines(capsys):
    with ProgressView("dpo", COLUMNS, quiet=True) as view:
        view([Metrics(step=1, values={"objective/scores": 1.0}, total_steps=2),
              RunWarning(step=1, code="nan", message="a NaN loss was skipped")])
        assert _task(view).fields["f0"] == "+1.000"  # the numbers are kept, only not drawn
    err = capsys.readouterr().err
    assert err == "warning (step 1, nan): a NaN loss was skipped\n"


@pytest.mark.parametrize(("eta", "shown"), [(True, True), (False, False)])
def test_eta_adds_a_time_remaining_column(capsys, eta, shown):
    with ProgressView("reward model", COLUMNS[:1], quiet=False, eta=eta) as view:
        view([Metrics(step=1, values={}, total_steps=4)])
    assert ("ETA" in capsys.readouterr().err) is shown


def test_a_column_formats_with_its_spec_and_suffix_and_an_empty_label_shows_only_the_value(capsys):
    columns = [Column("eos", "response/eos_rate", ".0%"), Column("", "time/step_s", ".1f", "s/step")]
    with ProgressView("ppo", columns, quiet=False) as view:
        view([Metrics(step=2, values={"response/eos_rate": 0.75, "time/step_s": 12.34}, total_steps=2)])
    assert "2/2 eos 75% 12.3s/step" in capsys.readouterr().err
