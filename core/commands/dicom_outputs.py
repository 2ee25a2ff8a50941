"""The `--best-frame` column and `--sr-out` structured reports of `hc-studio measure`.

Kept apart from the measure command so that it only needs three calls from it:
`add_arguments(parser)`, `extra_columns(args, records, quality)` for the CSV writer, and
`write_outputs(args, records, quality) -> bool` after the CSV is written. `quality` maps
(file, frame_index) to the frame's `core.image_quality.ImageQuality`, kept by the measure command
beside each record as it measures (the best frame of a clip weighs it).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

from .common import say


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--best-frame",
        action="store_true",
        help="add a best_frame column: 1 on the suggested frame of each clip, 0 on its other "
        "frames, empty for single frames (default: no column)",
    )
    parser.add_argument(
        "--sr-out",
        type=Path,
        metavar="DIR",
        help="write one DICOM Structured Report (OB-GYN TID 5000) per exam into DIR, with the "
        "measurements reported without a flag (of a clip, its best frame) (default: none)",
    )


def extra_columns(
    args: argparse.Namespace, records: Sequence, quality: Mapping | None = None
) -> dict[str, list[str]] | None:
    """{"best_frame": [...]} for `write_records_csv(extra_columns=...)` with --best-frame."""
    if not getattr(args, "best_frame", False):
        return None
    from ..best_frame import BEST_FRAME_COLUMN, best_frame_column

    return {BEST_FRAME_COLUMN: best_frame_column(records, quality)}


def write_outputs(
    args: argparse.Namespace, records: Sequence, quality: Mapping | None = None
) -> bool:
    """Write the SRs asked for; False when an exam could not be written (each one is said)."""
    if getattr(args, "sr_out", None) is None:
        return True
    from ..dicom_sr import unflagged_records, write_exam_srs

    chosen = unflagged_records(records, quality)
    if not chosen:
        say(f"structured report: no measurement without a flag, in mm; nothing in {args.sr_out}")
        return True
    result = write_exam_srs(chosen, args.sr_out)
    for line in result.notes + result.failed:
        say(f"structured report: {line}")
    for path in result.written:
        say(f"structured report -> {path}")
    return not result.failed
