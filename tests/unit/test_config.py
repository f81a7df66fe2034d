"""Settings: defaults, per-model moods, and one clear error per bad value."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import confuse
import pytest

from beetsplug.musicnn.config import DEFAULTS, MODEL_MOODS, Settings, load_settings, mood_names
from beetsplug.musicnn.errors import ConfigError, MoodConfigError

LIBRARY = Path("/music/library.db")
CONFIG_DIR = Path("/home/me/.config/beets")


def view(**values: Any) -> confuse.Configuration:
    config = confuse.Configuration("musicnn-unit-test", read=False)
    config.add(DEFAULTS)
    for key, value in values.items():
        config[key] = value
    return config


def load(**values: Any) -> Settings:
    return load_settings(view(**values), LIBRARY, CONFIG_DIR)


def test_defaults() -> None:
    settings = load()
    assert settings.model_name == "msd" and settings.backend == "auto"
    assert settings.precision == "auto" and settings.batch_size is None  # the engine's best
    assert settings.device == "auto"
    assert settings.database == Path("/music/musicnn.db")  # beside the library
    assert settings.model_dir == CONFIG_DIR / "musicnn"
    assert settings.timeout == 900 and settings.min_free_memory == 512 * 2**20
    assert settings.ffmpeg == ("ffmpeg",) and settings.graph is None
    assert [m.name for m in settings.moods] == ["happy", "sad", "relaxed", "party"]
    assert all(m.threshold == 0.75 for m in settings.moods)
    # every field has one default, and only `moods` (per model) is not in DEFAULTS
    keys = {f.metadata["key"] for f in fields(Settings)}
    assert keys - set(DEFAULTS) == {"moods"}


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_a_device_is_taken_as_written(value: str) -> None:
    assert load(device=value).device == value  # engine.choose checks it against the machine


def test_in_memory_library_keeps_its_database_in_the_config_dir() -> None:
    settings = load_settings(view(), Path(":memory:"), CONFIG_DIR)
    assert settings.database == CONFIG_DIR / "musicnn.db"


def test_command_line_overrides_the_config() -> None:
    assert load_settings(view(threads=3), LIBRARY, CONFIG_DIR, threads=1).threads == 1
    assert load_settings(view(threads=3), LIBRARY, CONFIG_DIR, threads=None).threads == 3


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("threads", -3, "a whole number at least 0"),
        ("threads", 1.5, "a whole number at least 0"),
        ("patch_hop", 0, "a whole number at least 1"),
        ("batch_size", "abc", "auto or a whole number at least 1"),
        ("batch_size", 0, "auto or a whole number at least 1"),
        ("precision", "fp8", "one of auto, f32, bf16, fp16"),
        ("model", "vgg", "one of msd, mtt"),
        ("backend", "onnx", "one of auto, openvino, tensorflow, essentia, torch"),
        ("device", "gpu", "auto, cpu, cuda or cuda:N"),
        ("device", "cuda:x", "auto, cpu, cuda or cuda:N"),
        ("device", 0, "auto, cpu, cuda or cuda:N"),
        ("timeout", -1, "a number at least 0"),
        ("tag_threshold", 1.5, "a number at least 0 and at most 1"),
        ("tag_threshold", -0.1, "a number at least 0 and at most 1"),
        ("auto", "sometimes", "yes or no"),
        ("ffmpeg", [], "a command"),
        ("silence_level", 3, "a number at least -200 and at most 0"),
        ("min_free_memory", "lots", "a number at least 0"),
    ],
)
def test_a_bad_value_names_the_option_and_what_it_allows(
    key: str, value: Any, allowed: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(**{key: value})
    message = str(raised.value)
    assert message.startswith(f"musicnn.{key}: {value!r} is not allowed: use {allowed}")
    assert "\n" not in message


def test_moods_merge_key_by_key() -> None:
    settings = load(moods={"party": {"threshold": 0.6}, "sexy": {"tags": ["sexy"]}})
    by_name = {m.name: m for m in settings.moods}
    assert by_name["party"].threshold == 0.6 and by_name["party"].tags == ("party", "dance")
    assert by_name["sexy"].tags == ("sexy",) and by_name["sexy"].threshold == 0.75
    assert by_name["happy"].tags == ("happy",)


def test_an_empty_tag_list_switches_a_mood_off() -> None:
    assert "sad" not in {m.name for m in load(moods={"sad": {"tags": []}}).moods}


def test_a_mood_tag_the_model_lacks_is_refused() -> None:
    with pytest.raises(MoodConfigError, match=r"musicnn\.moods\.happy: the model has no tag 'joy'"):
        load(moods={"happy": {"tags": ["joy"]}})


def test_a_label_inside_another_is_refused() -> None:
    with pytest.raises(MoodConfigError, match="label 'happy' is part of 'unhappy'"):
        load(moods={"unhappy": {"tags": ["sad"]}})


def test_a_mood_threshold_outside_0_1_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"musicnn\.moods\.party\.threshold: 2"):
        load(moods={"party": {"threshold": 2}})


def test_mtt_works_with_its_own_default_moods() -> None:
    settings = load(model="mtt")
    assert {m.name: m.tags for m in settings.moods} == {
        name: tuple(spec["tags"]) for name, spec in MODEL_MOODS["mtt"].items()
    }
    # MSD's happy does not exist in MTT: asking for it names the tag
    with pytest.raises(MoodConfigError, match="the model has no tag 'happy'"):
        load(model="mtt", moods={"happy": {"tags": ["happy"]}})


def test_field_types_follow_the_model_and_never_raise() -> None:
    assert mood_names(view()) == ["happy", "sad", "relaxed", "party"]
    assert mood_names(view(model="mtt")) == ["relaxed", "party"]
    assert mood_names(view(moods={"sad": {"tags": []}, "calm": {"tags": ["soft"]}})) == [
        "happy", "relaxed", "party", "calm",
    ]  # fmt: skip
    assert mood_names(view(moods="not a mapping")) == ["happy", "sad", "relaxed", "party"]


def test_a_misspelt_option_is_named_with_the_closest_one() -> None:
    with pytest.raises(
        ConfigError, match=r"^musicnn: unknown option 'thread' \(did you mean threads\?\)"
    ):
        load(thread=4)
    with pytest.raises(
        ConfigError,
        match=r"^musicnn.moods.happy: unknown option 'treshold' \(did you mean threshold",
    ):
        load(moods={"happy": {"tags": ["sad"], "treshold": 0.5}})


def test_a_section_that_is_no_mapping_is_one_error() -> None:
    for value in (None, 5, ["threads"]):  # `musicnn:` with every option commented out...
        config = confuse.Configuration("musicnn-unit-test", read=False)
        config["musicnn"] = value
        with pytest.raises(ConfigError, match=r"^musicnn: give a mapping of options"):
            load_settings(config["musicnn"], LIBRARY, CONFIG_DIR)
        assert mood_names(config["musicnn"]) == ["happy", "sad", "relaxed", "party"]


def test_an_unknown_tag_offers_the_closest_ones() -> None:
    with pytest.raises(MoodConfigError, match=r"no tag 'chil' \(closest: chill"):
        load(moods={"relaxed": {"tags": ["chil"]}})
