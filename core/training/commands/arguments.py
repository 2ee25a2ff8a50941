"""Argument types shared by the training commands (`train`, `pretrain`)."""

from __future__ import annotations

import argparse

MULTIPLE = 16  # 2 ** the U-Net's number of poolings


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def image_size(text: str) -> int:
    value = int(text)
    if value <= 0 or value % MULTIPLE:
        raise argparse.ArgumentTypeError(
            f"image sizes must be positive multiples of {MULTIPLE}, got {text}"
        )
    return value


def add_image_size_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--image-size",
        type=image_size,
        nargs=2,
        default=(192, 288),
        metavar=("H", "W"),
        help=f"network input, multiples of {MULTIPLE} (default 192 288)",
    )
