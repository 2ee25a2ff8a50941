"""Argument types shared by the training commands (`train`, `pretrain`).

The parsers live with the settings they parse (`core.training_settings`); this module gives the
commands without a settings dataclass of their own the same types and the same image size.
"""

from __future__ import annotations

import argparse
import dataclasses

from ...training_settings import IMAGE_MULTIPLE, TrainSettings, image_size, positive_int

MULTIPLE = IMAGE_MULTIPLE
__all__ = ["MULTIPLE", "add_image_size_argument", "image_size", "positive_int"]


def default_image_size() -> tuple[int, int]:
    """The training image size default, written once in TrainSettings."""
    return next(f.default for f in dataclasses.fields(TrainSettings) if f.name == "image_size")


def add_image_size_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    height, width = default_image_size()
    parser.add_argument(
        "--image-size",
        type=image_size,
        nargs=2,
        default=(height, width),
        metavar=("H", "W"),
        help=f"Network input height and width, multiples of {MULTIPLE} (default {height} {width}).",
    )
