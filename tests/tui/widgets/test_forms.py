"""Config forms: the fields each form offers, form values read into a config (or named errors), the mounted form."""

from __future__ import annotations

import pytest
from textual.widgets import Checkbox, Input, Label, Select

from tuilab.config import DPOConfig, PPOConfig, RewardConfig, apply_overrides
from tuilab.tui.widgets.forms import (
    DPO_FIELDS,
    PPO_FIELDS,
    RM_FIELDS,
    ConfigForm,
    FieldSpec,
    FormErrors,
    build_config,
    dpo_form,
    fmt_value,
    get_key,
    ppo_form,
    rm_form,
)

from .hosting import Host


def test_form_values_become_a_config_or_named_errors():
    cfg = build_config(RewardConfig, None, {"lora.r": "16", "learning_rate": "3e-4", "four_bit": True,
                                            "ties": "half", "name": ""}, RM_FIELDS)
    assert cfg.lora.r == 16 and cfg.learning_rate == 3e-4 and cfg.four_bit and cfg.ties == "half"
    with pytest.raises(FormErrors) as err:
        build_config(RewardConfig, None, {"epochs": "two", "batch_size": "", "learning_rate": "1e-4"}, RM_FIELDS)
    keys = [k for k, _ in err.value.errors]
    assert keys == ["epochs", "batch_size"]
    assert "epochs: expected a whole number, got 'two'" in str(err.value)
    ppo = build_config(PPOConfig, None, {"reward_run": "rm-1", "kl_coef": "0.1", "adaptive_kl": True,
                                         "ensemble_mode": "min", "gold_scorer": ""}, PPO_FIELDS)
    assert ppo.reward_run == "rm-1" and ppo.kl_coef == 0.1 and ppo.adaptive_kl and ppo.ensemble_mode == "min"


def test_the_form_fields_reach_the_config():
    cfg = build_config(PPOConfig, None, {"audit_pairs": "3", "audit_every": "4", "checkpoint_every": "2",
                                         "value_learning_rate": "1e-5"}, PPO_FIELDS)
    assert (cfg.audit_pairs, cfg.audit_every, cfg.checkpoint_every) == (3, 4, 2)
    assert cfg.value_learning_rate == 1e-5
    with pytest.raises(FormErrors, match="audit pairs: expected a whole number"):
        build_config(PPOConfig, None, {"audit_pairs": "two"}, PPO_FIELDS)


@pytest.mark.parametrize(("cls", "specs"), [(RewardConfig, RM_FIELDS), (PPOConfig, PPO_FIELDS),
                                            (DPOConfig, DPO_FIELDS)])
def test_every_field_names_a_setting_of_its_config(cls, specs):
    cfg = cls()
    keys = [s.key for s in specs]
    assert len(keys) == len(set(keys))
    for spec in specs:
        get_key(cfg, spec.key)  # raises AttributeError for a field the config does not have
        assert spec.kind in ("text", "int", "float", "bool", "choice")
        if spec.kind != "choice":
            assert not spec.choices
        elif spec.key != "reward_run":  # the reward runs' choices come from the database
            assert spec.choices
        for _, value in spec.choices:
            apply_overrides(cls(), {spec.key: value})  # every offered choice is a value the config takes
    # Each config's current values survive the round trip through the form's text.
    same = build_config(cls, None, {s.key: fmt_value(get_key(cfg, s.key)) if s.kind != "bool" else get_key(cfg, s.key)
                                    for s in specs if not (s.kind == "choice" and not s.choices)}, specs)
    assert same == cfg


def test_field_labels_values_and_dotted_keys():
    assert FieldSpec("learning_rate", "learning rate", short="lr").short_label == "lr"
    assert FieldSpec("epochs", "epochs").short_label == "epochs"
    assert [fmt_value(v) for v in (3e-4, 0.1, 1.0, 16, None, "", "half", True)] == [
        "0.0003", "0.1", "1", "16", "", "", "half", "True"]
    cfg = RewardConfig()
    assert get_key(cfg, "lora.r") == cfg.lora.r and get_key(cfg, "epochs") == cfg.epochs
    with pytest.raises(AttributeError):
        get_key(cfg, "lora.nope")


def test_build_config_copies_its_base_and_keeps_what_the_form_does_not_show():
    base = RewardConfig(epochs=5, seed=7)
    cfg = build_config(RewardConfig, base, {"epochs": " 3 ", "lora.r": "4"}, RM_FIELDS)
    assert (cfg.epochs, cfg.lora.r, cfg.seed) == (3, 4, 7)  # spaces stripped; seed (not on the form) kept
    assert (base.epochs, base.lora.r) == (5, RewardConfig().lora.r)  # the base is not touched
    assert build_config(RewardConfig, None, {}, RM_FIELDS) == RewardConfig()


def test_an_empty_optional_field_is_fine_and_an_empty_required_one_is_named():
    cfg = build_config(PPOConfig, None, {"name": "", "gold_scorer": "  "}, PPO_FIELDS)
    assert cfg.name == "" and cfg.gold_scorer == ""
    with pytest.raises(FormErrors) as err:
        build_config(PPOConfig, None, {"kl_coef": " ", "max_new_tokens": "", "name": ""}, PPO_FIELDS)
    assert err.value.errors == [("kl_coef", "β (KL coef): empty; enter a value"),
                                ("max_new_tokens", "max new tokens: empty; enter a value")]
    assert str(err.value) == "β (KL coef): empty; enter a value; max new tokens: empty; enter a value"


def test_bad_values_are_named_by_the_field_label_in_words():
    with pytest.raises(FormErrors) as err:
        build_config(RewardConfig, None, {"lora.r": "1.5", "learning_rate": "fast", "four_bit": "maybe",
                                          "nope": "1"}, RM_FIELDS)
    messages = dict(err.value.errors)
    assert messages["lora.r"] == "LoRA r: expected a whole number, got '1.5'"
    assert messages["learning_rate"] == "learning rate: expected a number, got 'fast'"
    assert messages["four_bit"] == "4-bit: expected true/false, got 'maybe'"
    assert messages["nope"].startswith("nope: unknown setting 'nope'; known: ")  # a key no field has
    assert list(messages) == ["lora.r", "learning_rate", "four_bit", "nope"]  # in the order given


async def test_the_mounted_form_shows_the_config_and_reads_it_back():
    form = rm_form(RewardConfig(epochs=3, four_bit=True, ties="half"))
    app = Host(form)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert form.id == "rm-form"
        assert isinstance(form.widget("lora.r"), Input) and form.query_one("#rm-lora-r") is form.widget("lora.r")
        assert isinstance(form.widget("four_bit"), Checkbox) and isinstance(form.widget("ties"), Select)
        values = form.values()
        assert values["epochs"] == "3" and values["four_bit"] is True and values["ties"] == "half"
        assert values["learning_rate"] == "0.0001" and values["name"] == ""
        assert list(values) == [s.key for s in RM_FIELDS]
        assert str(form.widget("four_bit").label) == "on"
        assert form.config() == RewardConfig(epochs=3, four_bit=True, ties="half")


async def test_set_value_and_the_checkbox_says_on_or_off():
    form = rm_form()
    app = Host(form)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        form.set_value("lora.r", 32)
        form.set_value("learning_rate", 5e-5)
        form.set_value("ties", "half")
        form.set_value("four_bit", True)
        await pilot.pause()
        cfg = form.config()
        assert (cfg.lora.r, cfg.learning_rate, cfg.ties, cfg.four_bit) == (32, 5e-5, "half", True)
        assert form.values()["learning_rate"] == "5e-05"
        assert str(form.widget("four_bit").label) == "on"
        form.set_value("four_bit", False)
        await pilot.pause()
        assert str(form.widget("four_bit").label) == "off"


async def test_bad_fields_are_marked_until_they_are_fixed():
    form = rm_form()
    app = Host(form)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        form.set_value("epochs", "two")
        form.set_value("batch_size", "")
        with pytest.raises(FormErrors, match="epochs: expected a whole number, got 'two'"):
            form.config()
        invalid = [row.id for row in form.query(".form-row.-invalid")]
        assert invalid == ["rm-epochs-row", "rm-batch-size-row"]
        assert form.values()["epochs"] == "two"  # nothing typed is lost
        form.set_value("epochs", "4")
        form.set_value("batch_size", "2")
        assert (form.config().epochs, form.config().batch_size) == (4, 2)
        assert not list(form.query(".form-row.-invalid"))


async def test_choices_from_the_database_keep_the_current_pick():
    form = ppo_form()
    app = Host(form)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert form.id == "ppo-form" and form.values()["reward_run"] == ""  # no reward run yet: blank
        form.set_choices("reward_run", [("rm-a (0.81)", "rm-a"), ("rm-b (0.77)", "rm-b")], value="rm-b")
        assert form.values()["reward_run"] == "rm-b"
        form.set_choices("reward_run", [("rm-c", "rm-c"), ("rm-b", "rm-b")])
        assert form.values()["reward_run"] == "rm-b"  # still offered: still picked
        form.set_choices("reward_run", [("rm-d", "rm-d")], value="rm-gone")
        assert form.values()["reward_run"] != "rm-gone"
        form.set_value("reward_run", "rm-d")
        assert form.config().reward_run == "rm-d"


async def test_a_narrow_form_uses_the_short_labels():
    form = dpo_form(DPOConfig(loss="ipo"))
    app = Host(form)
    async with app.run_test(size=(30, 40)) as pilot:
        await pilot.pause()
        assert form.id == "dpo-form" and form.size.width < 36
        labels = [str(label.render()) for label in form.query(".form-label").results(Label)]
        assert labels == [s.short_label for s in DPO_FIELDS] and "lr" in labels
        assert form.values()["loss"] == "ipo"
    form = ConfigForm(DPOConfig, DPO_FIELDS, prefix="wide")
    app = Host(form)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        labels = [str(label.render()) for label in form.query(".form-label").results(Label)]
        assert labels == [s.label for s in DPO_FIELDS]
