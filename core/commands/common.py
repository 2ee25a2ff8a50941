"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def pixel_size_mm(text: str) -> float:
    """argparse type: a pixel size in mm inside `core.spacing.PLAUSIBLE_PIXEL_MM`."""
    from ..spacing_value import check_pixel_size

    try:
        return check_pixel_size(float(text), "--pixel-size")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--pixel-size: ")) from None


def add_spacing_arguments(parser: argparse.ArgumentParser) -> None:
    """--pixel-size MM | --pixel-csv CSV (mutually exclusive)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--pixel-size",
        type=pixel_size_mm,
        metavar="MM",
        help="pixel size in mm for every frame, 0.01-2 (overrides DICOM and CSV)",
    )
    group.add_argument(
        "--pixel-csv",
        type=Path,
        metavar="CSV",
        help="CSV 'filename,pixel size(mm)[,...]' giving each file's pixel size (HC18 style)",
    )


def say(message: str) -> None:
    """A progress or summary line on stderr (stdout stays free for data)."""
    print(message, file=sys.stderr, flush=True)
