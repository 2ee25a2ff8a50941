"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
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
        help="pixel size in mm for every frame, 0.01-2, overriding DICOM and CSV (default: each "
        "file's own from the pixel CSV or DICOM, else uncalibrated and reported in pixels)",
    )
    group.add_argument(
        "--pixel-csv",
        type=Path,
        metavar="CSV",
        help="CSV 'filename,pixel size(mm)[,...]' giving each file's pixel size, HC18 style "
        "(default: none)",
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
    "without it, a mask with several values is refused with the values found (default: "
    "none, masks are binary)"
)


def add_mask_label_argument(parser: argparse.ArgumentParser) -> None:
    """--mask-label N (see `core.label_masks`)."""
    parser.add_argument("--mask-label", type=mask_label_number, metavar="N", help=MASK_LABEL_HELP)


def say(message: str) -> None:
    """A progress or summary line on stderr (stdout stays free for data)."""
    print(message, file=sys.stderr, flush=True)


EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # the shell's 128 + SIGINT / SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that a batch can save what it did."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` instead of ending the process on the spot.

    Only the main thread can set a signal handler; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


EXIT_STOPPED = 2  # an error stopped the batch (1 means: it ran, some frames gave no result)


def save_partial(
    verb: str, count: int, out: Path | None, why: str, write: Callable[[Path], object]
) -> str:
    """Save the `count` rows of a batch that stopped early with `write(path)` into the partial
    file beside `out` (never over `out`); returns the sentence that says what happened."""
    from ..output_paths import partial_path

    if out is None:
        return f"{verb} stopped ({why}) after {count} frame(s); nothing was written"
    kept = f"{out} was not changed" if out.exists() else f"{out} was not written"
    if count == 0:
        return f"{verb} stopped ({why}) before any frame; {kept}"
    partial = partial_path(out)
    try:
        write(partial)
    except OSError as error:
        return f"{verb} stopped ({why}); {kept}; the rows could not be saved: {error}"
    return (
        f"{verb} stopped ({why}) after {count} frame(s): the rows so far are in {partial}; {kept}"
    )


def batch_stopped(stop: BaseException, report: Callable[[str], str], debug: bool = False) -> int:
    """Say why a batch stopped (`report(why)` saves its rows and returns the sentence) and give
    the exit code: 130 for Ctrl-C, 143 for SIGTERM, 2 for an error (re-raised with `debug`)."""
    if isinstance(stop, KeyboardInterrupt):
        terminated = isinstance(stop, Terminated)
        say(report("terminated" if terminated else "interrupted"))
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    say(report(f"{type(stop).__name__}: {stop}"))
    if debug:
        raise stop
    return EXIT_STOPPED
