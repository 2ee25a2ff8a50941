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
