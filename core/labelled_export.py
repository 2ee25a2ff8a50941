"""Accepted frames as a labelled folder that `hc-studio train --labeled` takes as it is.

The frames a sonographer accepted (automatic or edited) are the clinic's own labels: each is
written as `images/NAME.png` (the frame, 8-bit grey) and `masks/NAME.png` (the accepted ellipse,
filled, 0/255), with `pixel_size.csv` (`filename,pixel size(mm)`, HC18's header) beside them.
`core.dataset.import_labelled_folder` reads the folder back with the same ellipses.

A frame is left out, with the reason, when it has no ellipse, no pixel size (a label without a
scale would train HC in pixels) or non-square pixels (the CSV holds one size per image). The
folder is written beside its target under a temporary name and renamed when complete, so a
failed export never leaves a half-written folder, and an existing non-empty folder is refused.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .csv_safety import safe_writer
from .ellipse import rasterize_ellipse
from .io import read_frame
from .records import MeasurementRecord

PIXEL_CSV_NAME = "pixel_size.csv"
PIXEL_CSV_HEADER = ("filename", "pixel size(mm)")

PixelReader = Callable[[MeasurementRecord], np.ndarray]


def read_record_frame(record: MeasurementRecord) -> np.ndarray:
    return read_frame(record.file, record.frame_index).pixels


@dataclass
class LabelledExport:
    """What was written (image names) and what was left out (file, frame, reason)."""

    folder: Path
    written: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def _skip_reason(record: MeasurementRecord) -> str | None:
    if record.ellipse_px is None:
        return "no ellipse"
    if not record.spacing.calibrated:
        return "no pixel size (uncalibrated)"
    if abs(record.spacing.row_mm - record.spacing.col_mm) > 1e-9:
        return "non-square pixels (the pixel CSV holds one size per image)"
    return None


def _name(record: MeasurementRecord, taken: set[str]) -> str:
    stem = Path(record.file).stem
    base = f"{stem}_f{record.frame_index:04d}" if record.frame_index else stem
    name, number = base, 2
    while name.lower() in taken:  # same file name in two folders
        name, number = f"{base}-{number}", number + 1
    taken.add(name.lower())
    return name


def _write_png(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise OSError(f"{path}: could not be written")


def export_labelled_folder(
    records: Iterable[MeasurementRecord],
    folder: str | Path,
    read_pixels: PixelReader = read_record_frame,
) -> LabelledExport:
    """Write the ACCEPTED `records` as a labelled folder at `folder` (see the module text).
    Raises ValueError when `folder` exists and is not empty, or when no frame can be written;
    OSError naming the file when writing fails (nothing is left at `folder` then)."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"{folder}: exists and is not an empty folder; choose a new one")
    result = LabelledExport(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        (staging / "images").mkdir()
        (staging / "masks").mkdir()
        taken: set[str] = set()
        rows = []
        for record in records:
            if record.accepted is not True:
                continue
            where = f"{Path(record.file).name} frame {record.frame_index + 1}"
            reason = _skip_reason(record)
            if reason is None:
                try:
                    pixels = np.asarray(read_pixels(record), dtype=np.float32)
                except (OSError, ValueError) as error:
                    reason = f"frame not read ({error})"
            if reason is not None:
                result.left_out.append(f"{where}: {reason}")
                continue
            name = _name(record, taken) + ".png"
            image = np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)
            mask = rasterize_ellipse(record.ellipse_px, pixels.shape).astype(np.uint8) * 255
            _write_png(staging / "images" / name, image)
            _write_png(staging / "masks" / name, mask)
            rows.append((name, f"{record.spacing.row_mm:.9g}"))
            result.written.append(name)
        if not rows:
            raise ValueError(
                "no accepted frame can be exported as a label"
                + ("".join(f"\n{line}" for line in result.left_out) or ": accept frames first")
            )
        with open(staging / PIXEL_CSV_NAME, "w", newline="", encoding="utf-8") as handle:
            writer = safe_writer(handle)
            writer.writerow(PIXEL_CSV_HEADER)
            writer.writerows(rows)
        if folder.exists():
            folder.rmdir()  # empty (checked above): replaced by the complete folder
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result
