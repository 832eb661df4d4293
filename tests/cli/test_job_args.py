"""cli/job_args.py: flags → config, checks before a run exists, resume rules, and how a run's end is reported."""

from __future__ import annotations

import json
import math

import pytest

from tests.jobs.rm_data import insert_pairs
from tuilab.cli import CLIError, build_parser
from tuilab.cli.job_args import (
    build_config,
    json_safe,
    resume,
    resume_override,
    run_with_progress,
    validate,
)
from tuilab.cli.progress import Column
from tuilab.config import DEFAULT_MODEL, DPOConfig, PPOConfig, RewardConfig
from tuilab.jobs.resume import JobRefused
from tuilab.jobs.runner import Job
from tuilab.store import runs
from tuilab.store.db import open_db
from tuilab.training.events import CancelledRun, Checkpoint, Metrics


def parse(*argv: str):
    """The namespace the real `tuilab` parser gives a verb."""
    return build_parser().parse_args(list(argv))


# ------------------------------------------------------------------ build_config


def test_defaults_then_config_file_then_sets_then_the_global_flags(tmp_path):
    toml = tmp_path / "rm.toml"
    toml.write_text('epochs = 5\nlearning_rate = 3e-4\nbase_model = "from-file"\n[lora]\nr = 4\n')
    cfg = build_config(RewardConfig, parse("train", "rm", "--config", str(toml), "--set", "epochs=1",
                                           "--set", "lora.alpha=32"))
    assert (cfg.epochs, cfg.learning_rate, cfg.lora.r, cfg.lora.alpha) == (1, 3e-4, 4, 32)
    assert cfg.base_model == "from-file"  # the default --model does not override a config's base
    assert (cfg.four_bit, cfg.name, cfg.batch_size) == (False, "", RewardConfig().batch_size)
    cfg = build_config(RewardConfig, parse("--model", "other", "--4bit", "train", "rm", "--config", str(toml),
                                           "--name", "n1"))
    assert (cfg.base_model, cfg.four_bit, cfg.name) == ("other", True, "n1")


def test_an_explicit_base_model_set_wins_over_the_global_model():
    args = parse("--model", "global-one", "train", "ppo", "--set", "base_model = set-one")
    assert build_config(PPOConfig, args).base_model == "set-one"
    assert build_config(PPOConfig, parse("train", "ppo")).base_model == DEFAULT_MODEL


@pytest.mark.parametrize(("content", "message"), [
    (None, "{path}: no such config file"),
    (b"epochs = \xff\n", "{path}: not UTF-8 text (byte 10); save it as UTF-8"),
    (b"epochs = = 2\n", "{path}: Invalid value (at line 1, column 10)"),
    (b"epochz = 2\n", "{path}: unknown setting 'epochz'; known: "),
    (b"[lora]\nr = 'big'\n", "{path}: lora.r: expected int, got 'big'"),
    (b"lora = 3\n", "{path}: lora is a section; set lora.<name>=value"),
])
def test_a_bad_config_file_is_one_sentence_naming_the_file(tmp_path, content, message):
    path = tmp_path / "rm.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CLIError) as err:
        build_config(RewardConfig, parse("train", "rm", "--config", str(path)))
    assert str(err.value).startswith(message.format(path=path))
    assert str(err.value).count(str(path)) == 1  # named once, not "file: file: …"


def test_a_folder_given_as_config_is_refused(tmp_path):
    with pytest.raises(CLIError, match=f"^{tmp_path} is a directory, not a TOML config file$"):
        build_config(DPOConfig, parse("train", "dpo", "--config", str(tmp_path)))


@pytest.mark.parametrize(("sets", "message"), [
    (["epochs=two"], "--set epochs: expected int, got 'two'"),
    (["epochs"], "--set expects key=value, got 'epochs'"),
    (["=3"], "--set expects key=value, got '=3'"),
    (["lora.rank=3"], "--set unknown setting 'lora.rank'; known: alpha, dropout, layers, r, target_modules"),
    (["four_bit=maybe"], "--set four_bit: expected true/false, got 'maybe'"),
    (["epochs.x=1"], "--set epochs is not a section"),
])
def test_a_bad_set_is_one_sentence_starting_with_set(sets, message):
    argv = ["train", "rm"]
    for s in sets:
        argv += ["--set", s]
    with pytest.raises(CLIError) as err:
        build_config(RewardConfig, parse(*argv))
    assert str(err.value) == message


# ------------------------------------------------------------------ json_safe


def test_json_safe_turns_non_finite_floats_into_null_at_any_depth():
    value = {"a": math.nan, "b": [1.0, math.inf, (2, -math.inf)], "c": {"d": "nan", "e": 3}, "f": None}
    safe = json_safe(value)
    assert safe == {"a": None, "b": [1.0, None, [2, None]], "c": {"d": "nan", "e": 3}, "f": None}
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe
    assert math.isnan(value["a"]) and math.isinf(value["b"][1])  # the input is left alone


# ------------------------------------------------------------------ resume_override


def test_on_resume_only_the_length_may_change():
    assert resume_override(parse("train", "ppo", "--resume", "p"), "total_updates") is None
    assert resume_override(parse("train", "ppo", "--resume", "p", "--set", "total_updates=40"), "total_updates") == 40
    assert resume_override(parse("train", "dpo", "--resume", "d", "--set", "epochs = 3"), "epochs") == 3


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "beta=0.2", "--set", "epochs=3", "--set", "loss=ipo"], "--resume can only change epochs, not beta, loss"),
    (["--config", "x.toml"], "--resume continues a run with its own config; drop --config"),
    (["--set", "epochs=many"], "epochs: expected int, got 'many'"),
    (["--set", "epochs"], "--set expects key=value, got 'epochs'"),
])
def test_a_resume_that_would_change_the_run_is_refused(argv, message):
    with pytest.raises(CLIError) as err:
        resume_override(parse("train", "dpo", "--resume", "dpo-1", *argv), "epochs")
    assert str(err.value) == message


# ------------------------------------------------------------------ validate


def test_validate_checks_an_empty_lab_without_creating_it(lab_home, tiny_model_dir):
    args = parse("--model", str(tiny_model_dir), "train", "rm", "--set", "min_pairs=4")
    with pytest.raises(CLIError, match="0 usable, 4 needed"):
        validate("rm", build_config(RewardConfig, args), args)
    assert not (lab_home / "db").exists()  # a lab that did not exist still does not


def test_validate_names_the_config_file_of_a_bad_value(lab_home, tmp_path, tiny_model_dir):
    db = open_db(lab_home / "db" / "lab.db")
    insert_pairs(db, 20)
    db.conn.close()
    toml = tmp_path / "dpo.toml"
    toml.write_text("beta = 0.0\nmin_pairs = 4\n")
    args = parse("--model", str(tiny_model_dir), "train", "dpo", "--config", str(toml))
    with pytest.raises(CLIError) as err:
        validate("dpo", build_config(DPOConfig, args), args)
    assert "beta must be positive" in str(err.value) and str(err.value).endswith(f"(in {toml})")
    args = parse("--model", str(tiny_model_dir), "train", "dpo", "--set", "min_pairs=4")
    validate("dpo", build_config(DPOConfig, args), args)  # 20 pairs, a good config: no refusal


def test_validate_refuses_a_database_that_is_not_a_lab(tmp_path):
    notes = tmp_path / "notes.db"
    notes.write_text("not a database at all, just some text that is long enough to have a header\n" * 3)
    args = parse("--db", str(notes), "train", "rm")
    with pytest.raises(CLIError, match=str(notes)):
        validate("rm", build_config(RewardConfig, args), args)


# ------------------------------------------------------------------ resume


def test_resume_without_a_lab_says_there_is_none_yet(lab_home):
    with pytest.raises(CLIError, match=r"no run 'ppo-1': there is no lab database at .*lab\.db yet"):
        resume(parse("train", "ppo", "--resume", "ppo-1"), lambda db, run_id: None)
    assert not (lab_home / "db").exists()


def test_resume_hands_the_lab_to_the_resume_function_and_turns_a_refusal_into_one_line(lab_home):
    open_db(lab_home / "db" / "lab.db").conn.close()
    seen = []

    def resume_fn(db, run_id, **length):
        seen.append((run_id, length, db.execute("select count(*) from runs").fetchone()[0]))
        return "the job"

    args = parse("train", "ppo", "--resume", "ppo-1")
    assert resume(args, resume_fn, total_updates=12) == "the job"
    assert seen == [("ppo-1", {"total_updates": 12}, 0)]

    def refuse(db, run_id, **length):
        raise JobRefused(f"run {run_id} is a dpo run, not a PPO run")

    with pytest.raises(CLIError, match="^run ppo-1 is a dpo run, not a PPO run$"):
        resume(args, refuse, total_updates=None)


# ------------------------------------------------------------------ run_with_progress

COLUMNS = [Column("loss", "loss", ".3f")]


def _job(fn, **kw) -> Job:
    return Job(kind="ppo", config=PPOConfig(total_updates=3), fn=fn, **kw)


def test_a_completed_run_prints_its_metrics_as_one_strict_json_line(lab_home, capsys):
    def loop(ctx):
        ctx.sink(Metrics(step=1, values={"loss": 0.5}, total_steps=2))
        ctx.sink(Metrics(step=2, values={"loss": 0.25}, total_steps=2))
        return {"loss": 0.25, "eval/accuracy": math.nan}

    job = _job(loop)
    code = run_with_progress(job, parse("train", "ppo"), title="ppo", columns=COLUMNS, about="base model m",
                             what="PPO", resumable=True)
    out, err = capsys.readouterr()
    assert code == 0
    assert json.loads(out) == {"loss": 0.25, "eval/accuracy": None, "run_id": job.run_id}
    assert out.count("\n") == 1 and "NaN" not in out
    said = "".join(err.split())  # rich wraps long lines at the console's width
    assert f"run{job.run_id}:basemodelm,output{lab_home / 'models' / 'runs' / job.run_id}" in said
    assert "2/2loss0.250" in said  # the bar, last drawn
    db = open_db(lab_home / "db" / "lab.db")
    assert runs.get_run(db, job.run_id).status == "completed"
    db.conn.close()


@pytest.mark.parametrize(("resumable", "hint"), [
    (True, "; continue with `tuilab train ppo --resume {run_id}`"), (False, ""),
])
def test_a_cancelled_run_exits_130_and_says_how_to_continue(lab_home, capsys, resumable, hint):
    def loop(ctx):
        ctx.sink(Metrics(step=1, values={"loss": 0.5}, total_steps=3))
        ctx.sink(Checkpoint(step=2, path="ckpt"))
        raise CancelledRun()

    job = _job(loop)
    code = run_with_progress(job, parse("train", "ppo", "--quiet"), title="ppo", columns=COLUMNS, about="x",
                             what="PPO", resumable=resumable)
    out, err = capsys.readouterr()
    assert code == 130 and out == ""
    assert err.splitlines()[-1] == f"tuilab: run {job.run_id} cancelled at step 2" + hint.format(run_id=job.run_id)


def test_a_failed_run_is_a_cli_error_naming_the_run_and_the_step(lab_home, capsys):
    def loop(ctx):
        ctx.sink(Metrics(step=3, values={"loss": 0.5}, total_steps=9))
        raise ValueError("the reward model returned\nNaN for every answer")

    job = _job(loop)
    with pytest.raises(CLIError) as err:
        run_with_progress(job, parse("train", "ppo", "--quiet"), title="ppo", columns=COLUMNS, about="x",
                          what="PPO", resumable=True)
    assert str(err.value) == f"PPO run {job.run_id} failed at step 3: ValueError: NaN for every answer"
    assert capsys.readouterr().out == ""


def test_a_resumed_run_says_resuming_and_other_ranks_say_nothing(lab_home, capsys, monkeypatch):
    job = _job(lambda ctx: {"loss": 1.0})
    run_with_progress(job, parse("train", "ppo", "--resume", job.run_id), title="ppo", columns=COLUMNS,
                      about="base model m", what="PPO", resumable=True)
    assert f"resuming{job.run_id}:basemodelm" in "".join(capsys.readouterr().err.split())
    monkeypatch.setenv("RANK", "1")  # a launched process other than the main one
    job = _job(lambda ctx: {"loss": 1.0})
    run_with_progress(job, parse("train", "ppo"), title="ppo", columns=COLUMNS, about="base model m", what="PPO",
                      resumable=True)
    assert capsys.readouterr().err == ""
