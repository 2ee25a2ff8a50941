"""Learn from corrections: the frames a sonographer accepted, as a labelled folder for `train`.

`export_accepted(records, out)` writes, for every record accepted in review (`accepted is True`,
automatic or edited) that has an ellipse:

- `images/<name>.png`: the frame (8-bit grey, as the measurement read it);
- `masks/<name>.png`: the accepted ellipse, filled (0/255), which `core.dataset` reads as a
  filled mask and fits back to the same ellipse;
- `pixel_size.csv`: `filename,pixel size(mm)` for the calibrated frames (HC18 style; found by
  the import beside the images) - a frame with a non-square pixel gets no row and is reported;
- `patients.csv`: the source file of each frame as its patient, so frames of one cine or one
  file stay on one side of a train/validation split;
- `sources.csv`: where each frame came from (file, frame index, automatic or edited).

The folder is built beside `out` and renamed into place at the end: an existing `out` that is
not empty is never written into, and a failure leaves no half-written folder.
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
from .io import FrameReadError, read_frame

PIXEL_CSV = "pixel_size.csv"
PATIENTS_CSV = "patients.csv"
SOURCES_CSV = "sources.csv"


@dataclass
class CorrectionExport:
    """What was written (`names`, the image file names) and what was left out, and why."""

    folder: Path
    names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _name_for(record, taken: set[str]) -> str:
    stem = Path(record.file).stem or "frame"
    base = f"{stem}_f{record.frame_index:04d}" if record.frame_index else stem
    name, counter = f"{base}.png", 2
    while name in taken:
        name, counter = f"{base}_{counter}.png", counter + 1
    taken.add(name)
    return name


def _read_pixels(record) -> np.ndarray:
    return read_frame(record.file, record.frame_index).pixels


def _write_png(path: Path, pixels: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise OSError(f"{path.name}: could not be encoded as PNG")
    path.write_bytes(encoded.tobytes())


def export_accepted(
    records: Iterable,
    out: str | Path,
    read_pixels: Callable[[object], np.ndarray] | None = None,
) -> CorrectionExport:
    """Write the accepted records' frames and ellipses as a labelled folder (module docstring).

    `records`: `MeasurementRecord`s (file, frame_index, spacing, ellipse_px, origin, accepted);
    `read_pixels(record)` gives the frame as (H, W) float 0..1 (default: read it from its file).
    Raises FileExistsError when `out` exists and is not empty, ValueError when nothing was
    accepted with an ellipse.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: exists and is not empty; choose a new folder")
    read_pixels = read_pixels or _read_pixels
    export = CorrectionExport(folder=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        rows = _write_frames(records, building, read_pixels, export)
        if not export.names:
            raise ValueError("no accepted frame with an ellipse to export")
        _write_tables(building, rows, export)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(building, out)
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return export


def _write_frames(records, building: Path, read_pixels, export: CorrectionExport) -> list:
    (building / "images").mkdir()
    (building / "masks").mkdir()
    taken: set[str] = set()
    rows = []
    for record in records:
        label = f"{Path(record.file).name} frame {record.frame_index}"
        if record.accepted is not True:
            continue  # only what a sonographer accepted teaches the model
        if record.ellipse_px is None:
            export.skipped.append((label, "accepted without an ellipse"))
            continue
        try:
            pixels = np.asarray(read_pixels(record), dtype=np.float32)
        except (FrameReadError, OSError, ValueError) as error:
            export.skipped.append((label, f"frame cannot be read ({error})"))
            continue
        name = _name_for(record, taken)
        image = np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
        mask = rasterize_ellipse(record.ellipse_px, image.shape).astype(np.uint8) * 255
        _write_png(building / "images" / name, image)
        _write_png(building / "masks" / name, mask)
        export.names.append(name)
        rows.append((name, record))
    return rows


def _write_tables(building: Path, rows: list, export: CorrectionExport) -> None:
    sizes = []
    for name, record in rows:
        spacing = record.spacing
        if not spacing.calibrated:
            continue
        if abs(spacing.row_mm - spacing.col_mm) > 1e-9 * spacing.col_mm:
            export.skipped.append((name, "pixel not square: no pixel size written (in pixels)"))
            continue
        sizes.append((name, f"{spacing.col_mm:.9g}"))
    if sizes:
        _write_csv(building / PIXEL_CSV, ["filename", "pixel size(mm)"], sizes)
    _write_csv(
        building / PATIENTS_CSV,
        ["filename", "patient"],
        [(name, Path(record.file).stem) for name, record in rows],
    )
    _write_csv(
        building / SOURCES_CSV,
        ["filename", "source", "frame", "origin"],
        [(name, record.file, record.frame_index, record.origin) for name, record in rows],
    )


def _write_csv(path: Path, header: list[str], rows: list) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = safe_writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
