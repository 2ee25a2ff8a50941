"""Training settings and the `hc-studio train` options derived from them (no torch needed)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest
from hc_studio.core.training_settings import (
    DataSettings,
    TrainSettings,
    add_settings_arguments,
    given_values,
    settings_from_args,
)


def parser_of(*types: type) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    for settings_type in types:
        add_settings_arguments(parser, settings_type)
    return parser


def test_no_option_given_gives_the_dataclass_defaults() -> None:
    args = parser_of(TrainSettings, DataSettings).parse_args([])
    assert given_values(TrainSettings, args) == {}
    assert settings_from_args(TrainSettings, args) == TrainSettings()
    assert settings_from_args(DataSettings, args) == DataSettings()


def test_options_become_settings_of_the_right_types() -> None:
    args = parser_of(TrainSettings, DataSettings).parse_args(
        [
            "--iterations",
            "7",
            "--lr",
            "0.5",
            "--image-size",
            "32",
            "48",
            "--no-augment",
            "--dilated-bottleneck",
            "--set",
            "a=1",
            "--set",
            "b=x",
            "--unlabelled-batch-size",
            "3",
            "--labelled",
            "DIR",
            "--val-fraction",
            "0.3",
        ]  # fmt: skip
    )
    settings = settings_from_args(TrainSettings, args)
    assert (settings.iterations, settings.lr, settings.image_size) == (7, 0.5, (32, 48))
    assert settings.augment is False and settings.dilated_bottleneck is True
    assert settings.method_options == {"a": "1", "b": "x"}
    assert settings.unlabelled_batch_size == 3
    data = settings_from_args(DataSettings, args)
    assert str(data.labelled_dir) == "DIR" and data.val_fraction == 0.3
    assert set(given_values(TrainSettings, args)) == {
        "iterations", "lr", "image_size", "augment", "dilated_bottleneck", "method_options",
        "unlabelled_batch_size",
    }  # fmt: skip


@pytest.mark.parametrize(
    "arguments",
    [["--iterations", "0"], ["--image-size", "30", "48"], ["--optimizer", "rmsprop"],
     ["--val", "x", "--val-fraction", "0.1"], ["--labeled-fraction", "0"], ["--set", "novalue"]],
)  # fmt: skip
def test_bad_values_are_usage_errors(arguments) -> None:
    with pytest.raises(SystemExit):
        parser_of(TrainSettings, DataSettings).parse_args(arguments)


def test_every_visible_option_has_a_sentence_and_its_default() -> None:
    parser = parser_of(TrainSettings, DataSettings)
    visible = [a for a in parser._actions if a.help not in (None, argparse.SUPPRESS)]
    visible = [a for a in visible if a.dest != "help"]
    fields = [f for t in (TrainSettings, DataSettings) for f in dataclasses.fields(t)]
    assert len(visible) == len([f for f in fields if not f.metadata.get("hidden")])
    for action in visible:
        assert len(action.help) > 25 and "(default " in action.help, action.option_strings
    lr = next(a for a in visible if "--lr" in a.option_strings)
    assert "(default 0.01)" in lr.help


def test_defaults_are_written_once_in_the_settings() -> None:
    help_text = parser_of(TrainSettings).format_help()
    assert "(default 1000)" in help_text  # iterations, from the dataclass
    changed = dataclasses.replace(TrainSettings(), iterations=5)
    assert changed.iterations == 5 and TrainSettings().iterations == 1000


def test_saved_settings_round_trip_and_wrong_types_are_named() -> None:
    settings = TrainSettings(method="ersr", image_size=(32, 48), method_options={"k": "v"})
    assert TrainSettings.from_dict(settings.to_dict()) == settings
    assert TrainSettings.from_dict({"unknown_field": 1}) == TrainSettings()
    for field_name, bad in (("iterations", "many"), ("image_size", [1]), ("augment", 1)):
        with pytest.raises(ValueError, match=field_name):
            TrainSettings.from_dict({field_name: bad})
    data = DataSettings(labelled_dir=None, val_fraction=0.5)
    assert DataSettings.from_dict(data.to_dict()) == data


def test_a_mask_label_is_saved_and_read_back() -> None:
    from hc_studio.core.training_settings import DataSettings

    data = DataSettings(labelled_dir=Path("clinic"), mask_label=2)
    assert DataSettings.from_dict(json.loads(json.dumps(data.to_dict()))) == data
    with pytest.raises(ValueError, match="mask_label"):
        DataSettings.from_dict({"mask_label": "2"})
