"""Argument types shared by `hc-studio train` and `hc-studio pretrain`."""

from __future__ import annotations

import argparse

import pytest
from hc_studio.core.training.commands.arguments import add_image_size_argument, positive_int


def test_image_sizes_must_be_positive_multiples_of_16() -> None:
    parser = argparse.ArgumentParser()
    add_image_size_argument(parser)
    assert parser.parse_args(["--image-size", "224", "336"]).image_size == [224, 336]
    assert parser.parse_args([]).image_size == (192, 288)
    for bad in (["200", "336"], ["0", "16"], ["-16", "32"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["--image-size", *bad])


def test_positive_int_refuses_zero() -> None:
    assert positive_int("3") == 3
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int("0")


@pytest.mark.parametrize("command", ["train", "export", "pretrain"])
def test_every_option_has_a_sentence_and_its_default(command: str) -> None:
    from hc_studio.core.cli import build_parser

    parser = build_parser(only=command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    actions = [a for a in sub.choices[command]._actions if a.dest != "help"]
    for action in actions:
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help and len(action.help) > 20, action.option_strings
        words = action.help.lower()
        assert "default" in words or "required" in words, (action.option_strings, action.help)


def test_pretrain_command_defaults_are_the_settings_defaults() -> None:
    pytest.importorskip("torch")
    from hc_studio.core.training.commands.pretrain import DEFAULTS
    from hc_studio.core.training.pretrain import PretrainSettings

    for name, value in vars(DEFAULTS).items():
        assert getattr(PretrainSettings(), name) == value, name


def test_export_refuses_metadata_options_it_would_ignore(tmp_path, capsys) -> None:
    from hc_studio.core.cli import main

    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"x")
    code = main(["export", str(checkpoint), "--out", str(tmp_path / "m.onnx"), "--data", "HC18"])
    assert code == 1 and "--data and --validation apply to an HC Studio ONNX model" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "m.onnx").exists()
