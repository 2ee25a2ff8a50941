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


def mask_label_number(text: str) -> int:
    """argparse type: a label value of a label-map mask, 1-65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 1-65535, got {text}")
    return value


MASK_LABEL_HELP = (
    "the head's value in label-map masks (e.g. 2 for PSFHS: 1 pubic symphysis, 2 head); "
    "without it, a mask with several values is refused with the values found"
)


def add_mask_label_argument(parser: argparse.ArgumentParser) -> None:
    """--mask-label N (see `core.label_masks`)."""
    parser.add_argument("--mask-label", type=mask_label_number, metavar="N", help=MASK_LABEL_HELP)


def say(message: str) -> None:
    """A progress or summary line on stderr (stdout stays free for data)."""
    print(message, file=sys.stderr, flush=True)
