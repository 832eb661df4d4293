"""`tuilab models …` and the launch path, run in-process through `tuilab.cli.main`."""

from __future__ import annotations

import json
import shutil

import pytest

from tuilab.cli import main
from tuilab.config import DEFAULT_MODEL


def test_list_with_no_models(lab_home, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "no models in" in out and "tuilab models setup" in out


def test_import_then_list(lab_home, tiny_model_dir, capsys):
    assert main(["models", "import", str(tiny_model_dir), "--name", "tiny"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("tiny: ") and str(lab_home / "models" / "tiny") in captured.out
    assert "smoke test" in captured.err  # progress goes to stderr
    assert (lab_home / "models" / "tiny" / "config.json").is_file()

    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "PARAMS", "SIZE", "PATH"]
    assert lines[1].split()[0] == "tiny" and lines[1].endswith(str(lab_home / "models" / "tiny"))

    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed] == ["tiny"] and listed[0]["params"] > 0
    assert listed[0]["source"] == str(tiny_model_dir.resolve())


def test_import_twice_is_a_no_op(lab_home, tiny_model_dir, capsys):
    assert main(["models", "import", str(tiny_model_dir)]) == 0
    capsys.readouterr()
    assert main(["models", "import", str(tiny_model_dir)]) == 0
    assert "already imported" in capsys.readouterr().err


def test_import_errors_are_one_line_with_exit_1(lab_home, tmp_path, capsys):
    assert main(["models", "import", str(tmp_path / "nothing.gguf")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tuilab: ") and "no such file" in err
    assert main(["models", "import", str(tmp_path), "--name", "runs"]) == 1
    assert "invalid model name" in capsys.readouterr().err


def test_home_flag_wins(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.delenv("TUILAB_HOME", raising=False)
    home = tmp_path / "elsewhere"
    assert main(["--home", str(home), "models", "import", str(tiny_model_dir), "--name", "t"]) == 0
    assert (home / "models" / "t" / "config.json").is_file()


def test_setup_when_already_there(lab_home, tiny_model_dir, capsys):
    shutil.copytree(tiny_model_dir, lab_home / "models" / DEFAULT_MODEL)
    assert main(["models", "setup"]) == 0
    assert capsys.readouterr().out.startswith(f"already imported: {DEFAULT_MODEL}")


def test_setup_from_a_wrong_file_is_refused(lab_home, tmp_path, capsys):
    fake = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    fake.write_bytes(b"GGUF-not-really")
    assert main(["models", "setup", "--from", str(fake)]) == 1
    assert "does not match the pinned" in capsys.readouterr().err
    assert not (lab_home / "models" / DEFAULT_MODEL).exists()


@pytest.fixture
def opened(monkeypatch):
    """Stand-in for the Textual app (it needs a terminal): records what the lab was opened with."""
    import tuilab.tui.app as app

    calls = []

    def fake_run_app(paths, *, model, four_bit=False, repeat_share=0.05):
        calls.append({"paths": paths, "model": model, "four_bit": four_bit, "repeat_share": repeat_share})
        return 0

    monkeypatch.setattr(app, "run_app", fake_run_app)
    return calls


def test_bare_tuilab_opens_the_lab_on_the_default_model(lab_home, tiny_model_dir, opened, capsys):
    shutil.copytree(tiny_model_dir, lab_home / "models" / DEFAULT_MODEL)
    assert main(["--4bit"]) == 0
    assert opened[0]["model"] == str(lab_home / "models" / DEFAULT_MODEL)
    assert opened[0]["four_bit"] is True and opened[0]["paths"].home == lab_home
    assert capsys.readouterr().err == ""  # nothing to import: no output before the UI


def test_launch_with_another_model(lab_home, tiny_model_dir, opened):
    assert main(["--model", str(tiny_model_dir)]) == 0
    assert opened[0]["model"] == str(tiny_model_dir.resolve()) and opened[0]["four_bit"] is False


def test_launch_passes_the_repeat_share_to_the_label_queue(lab_home, tiny_model_dir, opened):
    assert main(["--repeat-share", "10%", "--model", str(tiny_model_dir)]) == 0
    assert opened[0]["repeat_share"] == pytest.approx(0.10)
    assert main(["--model", str(tiny_model_dir)]) == 0
    assert opened[1]["repeat_share"] == 0.05


def test_launch_with_an_unknown_model_says_how_to_get_one(lab_home, opened, capsys):
    assert main(["--model", "not-a-model"]) == 1
    assert "tuilab models setup" in capsys.readouterr().err
    assert opened == []
