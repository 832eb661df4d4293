"""config.py: defaults, TOML files and `--set` overrides, checked names and types, saved-run round trips."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tuilab.config import (
    DEFAULT_MODEL,
    ConfigError,
    DPOConfig,
    LabPaths,
    LoraSettings,
    PPOConfig,
    RewardConfig,
    SamplingConfig,
    apply_overrides,
    from_dict,
    load_config,
    parse_sets,
    to_dict,
)

CONFIGS = [SamplingConfig, LoraSettings, RewardConfig, PPOConfig, DPOConfig]
TRAINING = [RewardConfig, PPOConfig, DPOConfig]


# ------------------------------------------------------------------ LabPaths


def test_lab_home_is_the_flag_then_the_environment_then_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUILAB_HOME", raising=False)
    assert LabPaths.resolve().home == tmp_path.resolve()
    monkeypatch.setenv("TUILAB_HOME", str(tmp_path / "env-lab"))
    assert LabPaths.resolve().home == tmp_path / "env-lab"
    assert LabPaths.resolve(tmp_path / "flag-lab").home == tmp_path / "flag-lab"
    assert LabPaths.resolve("relative").home == tmp_path / "relative"  # made absolute where it was given


def test_lab_folders_hang_off_the_home_unless_a_database_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    paths = LabPaths.resolve("~/lab")
    assert paths.home == tmp_path / "lab"
    assert (paths.db, paths.models, paths.runs) == (
        tmp_path / "lab" / "db" / "lab.db", tmp_path / "lab" / "models", tmp_path / "lab" / "models" / "runs")
    elsewhere = LabPaths.resolve("~/lab", "~/other.db")
    assert elsewhere.db == tmp_path / "other.db" and elsewhere.models == tmp_path / "lab" / "models"


# ------------------------------------------------------------------ defaults and construction


def test_training_configs_share_the_common_settings_with_their_own_defaults():
    for cls in TRAINING:
        cfg = cls()
        assert (cfg.base_model, cfg.four_bit, cfg.lora, cfg.name) == (DEFAULT_MODEL, False, LoraSettings(), "")
        assert cfg.max_grad_norm == 1.0 and cfg.seed == 0
    # DPO redeclares two of the pair-training settings; the reward model keeps them.
    assert (RewardConfig().learning_rate, RewardConfig().warmup_ratio) == (1e-4, 0.03)
    assert (DPOConfig().learning_rate, DPOConfig().warmup_ratio) == (5e-5, 0.0)
    assert RewardConfig().epochs == DPOConfig().epochs and RewardConfig().ties == DPOConfig().ties == "skip"
    assert PPOConfig().learning_rate == 2e-4 and not hasattr(PPOConfig(), "epochs")


def test_configs_are_built_by_keyword_only():
    for cls in CONFIGS:
        with pytest.raises(TypeError):
            cls(8)
    assert RewardConfig(epochs=3).epochs == 3


def test_each_config_has_its_own_lora_section():
    a, b = RewardConfig(), RewardConfig()
    a.lora.r = 32
    assert b.lora.r == 8 and PPOConfig().lora.r == 8


# ------------------------------------------------------------------ apply_overrides


def test_overrides_reach_nested_sections_by_dots_or_tables():
    cfg = apply_overrides(PPOConfig(), {"kl_coef": "0.1", "lora.r": "16", "lora": {"alpha": 64, "dropout": "0.05"}})
    assert (cfg.kl_coef, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (0.1, 16, 64, 0.05)


@pytest.mark.parametrize(("key", "text", "value"), [
    ("four_bit", "yes", True), ("four_bit", " Off ", False), ("four_bit", "1", True), ("four_bit", False, False),
    ("epochs", "3", 3), ("epochs", 4.0, 4), ("learning_rate", "1e-4", 1e-4), ("learning_rate", 2, 2.0),
    ("name", "run a", "run a"), ("ties", "half", "half"),
])
def test_values_are_read_as_the_field_type(key, text, value):
    got = getattr(apply_overrides(RewardConfig(), {key: text}), key)
    assert got == value and type(got) is type(value)


def test_an_optional_setting_takes_none():
    cfg = apply_overrides(SamplingConfig(), {"seed": "7"})
    assert cfg.seed == 7
    assert apply_overrides(cfg, {"seed": "none"}).seed is None
    assert apply_overrides(SamplingConfig(seed=3), {"seed": None}).seed is None
    with pytest.raises(ConfigError, match="^seed: expected int, got 'x'$"):
        apply_overrides(SamplingConfig(), {"seed": "x"})


@pytest.mark.parametrize(("values", "message"), [
    ({"epochs": "2.5"}, "epochs: expected int, got '2.5'"),
    ({"epochs": 2.5}, "epochs: expected int, got 2.5"),
    ({"four_bit": "maybe"}, "four_bit: expected true/false, got 'maybe'"),
    ({"lora.r": "big"}, "lora.r: expected int, got 'big'"),
    ({"learning_rate": "fast"}, "learning_rate: expected float, got 'fast'"),
    ({"lora.rank": 4}, "unknown setting 'lora.rank'; known: alpha, dropout, layers, r, target_modules"),
    ({"lora": 4}, "lora is a section; set lora.<name>=value"),
    ({"epochs.max": 4}, "epochs is not a section"),
])
def test_a_bad_override_names_the_key(values, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides(RewardConfig(), values)
    assert str(err.value) == message


def test_an_unknown_setting_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        apply_overrides(DPOConfig(), {"betta": 0.2})
    text = str(err.value)
    assert text.startswith("unknown setting 'betta'; known: ")
    known = text.split("known: ")[1].split(", ")
    assert known == sorted(f.name for f in dataclasses.fields(DPOConfig))


def test_a_boolean_is_not_a_number():
    with pytest.raises(ConfigError, match="epochs: expected int, got True"):
        apply_overrides(RewardConfig(), {"epochs": True})


def test_a_list_is_not_a_string():
    with pytest.raises(ConfigError, match='lora.target_modules: expected str, .*comma-separated, e.g. "q_proj,v_proj"'):
        apply_overrides(RewardConfig(), {"lora": {"target_modules": ["q_proj", "v_proj"]}})


# ------------------------------------------------------------------ parse_sets and load_config


def test_sets_are_split_at_the_first_equals_sign_and_trimmed():
    assert parse_sets([" lora.r = 16", "name=a=b", "gold_scorer="]) == {"lora.r": "16", "name": "a=b",
                                                                       "gold_scorer": ""}
    assert parse_sets(["epochs=1", "epochs=2"]) == {"epochs": "2"}  # the last one wins


@pytest.mark.parametrize("bad", ["epochs", "=3", " =3", ""])
def test_a_set_without_a_key_is_refused(bad):
    with pytest.raises(ConfigError, match=f"^--set expects key=value, got {bad!r}$"):
        parse_sets([bad])


def test_load_config_is_defaults_then_the_file_then_the_sets(tmp_path):
    assert load_config(PPOConfig) == PPOConfig()
    toml = tmp_path / "ppo.toml"
    toml.write_text('kl_coef = 0.2\ntotal_updates = 12\nreward_run = "rm-1"\n[lora]\nr = 4\n')
    cfg = load_config(PPOConfig, toml, ["total_updates=20", "lora.alpha=8"])
    assert (cfg.kl_coef, cfg.total_updates, cfg.reward_run, cfg.lora.r, cfg.lora.alpha) == (0.2, 20, "rm-1", 4, 8)
    assert cfg.batch_size == PPOConfig().batch_size


def test_load_config_names_a_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'nope.toml'}: no such config file$"):
        load_config(RewardConfig, tmp_path / "nope.toml")
    broken = tmp_path / "rm.toml"
    broken.write_text("epochs = 2\nlora = {r = }\n")
    with pytest.raises(ConfigError, match=rf"^{broken}: .*line 2"):
        load_config(RewardConfig, broken)
    wrong = tmp_path / "types.toml"
    wrong.write_text('epochs = "many"\n')
    with pytest.raises(ConfigError, match="^epochs: expected int, got 'many'$"):
        load_config(RewardConfig, wrong)


def test_the_example_configs_load():
    root = Path(__file__).resolve().parents[1] / "examples"
    files = sorted(root.rglob("*.toml"))
    assert files
    kinds = {"rm": RewardConfig, "ppo": PPOConfig, "dpo": DPOConfig}
    for path in files:
        cls = next((c for k, c in kinds.items() if path.stem.startswith(k)), None)
        assert cls is not None, f"{path}: name it rm*, ppo* or dpo* so this test knows its config"
        assert isinstance(load_config(cls, path), cls), path


# ------------------------------------------------------------------ to_dict / from_dict


def _changed(cls):
    """An instance with every field moved off its default (nested sections too)."""
    cfg = cls()
    for f in dataclasses.fields(cls):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            setattr(cfg, f.name, _changed(type(value)))
        elif isinstance(value, bool):
            setattr(cfg, f.name, not value)
        elif isinstance(value, int | float):
            setattr(cfg, f.name, type(value)(value + 3))
        elif isinstance(value, str):
            setattr(cfg, f.name, value + "-x")
        elif value is None:
            setattr(cfg, f.name, 5)
    return cfg


@pytest.mark.parametrize("cls", CONFIGS)
def test_a_saved_config_comes_back_the_same(cls):
    for cfg in (cls(), _changed(cls)):
        saved = json.loads(json.dumps(to_dict(cfg)))  # as a run row keeps it
        assert from_dict(cls, saved) == cfg
    assert _changed(cls) != cls()


def test_to_dict_nests_sections_and_keeps_every_field():
    data = to_dict(RewardConfig(epochs=3))
    assert data["epochs"] == 3 and data["lora"] == to_dict(LoraSettings())
    assert set(data) == {f.name for f in dataclasses.fields(RewardConfig)}


def test_a_partial_saved_config_fills_in_defaults_and_an_unknown_key_is_refused():
    assert from_dict(PPOConfig, {"kl_coef": 0.3}) == PPOConfig(kl_coef=0.3)
    with pytest.raises(ConfigError, match="unknown setting 'old_knob'"):
        from_dict(PPOConfig, {"old_knob": 1})
