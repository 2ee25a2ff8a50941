"""Pixel spacing of a frame, with where it came from."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

SOURCES = ("dicom-us-region", "dicom-pixel-spacing", "csv", "user", "calibration", "none")


@dataclass(frozen=True)
class Spacing:
    """Size of one pixel: `row_mm` along y (rows), `col_mm` along x (columns).

    `source == "none"` marks an uncalibrated frame: measurements are then in pixels
    (row_mm = col_mm = 1 only as a unit of "pixel", never as millimetres).
    """

    row_mm: float
    col_mm: float
    source: str

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown spacing source {self.source!r}")
        for value in (self.row_mm, self.col_mm):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"pixel spacing must be a positive number, got {value!r}")

    @property
    def calibrated(self) -> bool:
        return self.source != "none"

    @property
    def unit(self) -> str:
        return "mm" if self.calibrated else "px"

    @property
    def isotropic(self) -> bool:
        return math.isclose(self.row_mm, self.col_mm, rel_tol=1e-6)

    @classmethod
    def uncalibrated(cls) -> "Spacing":
        return cls(1.0, 1.0, "none")

    @classmethod
    def square(cls, mm: float, source: str = "user") -> "Spacing":
        return cls(float(mm), float(mm), source)


def read_pixel_csv(path: str | Path) -> dict[str, float]:
    """Read an HC18-style CSV (`filename,pixel size(mm)[,...]`) into {filename: mm}.

    Raises ValueError naming the file and line on malformed content.
    """
    path = Path(path)
    sizes: dict[str, float] = {}
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or len(header) < 2:
            raise ValueError(f"{path}: expected a header 'filename,pixel size(mm)'")
        for line_no, row in enumerate(reader, start=2):
            if not row or not row[0].strip():
                continue
            try:
                mm = float(row[1])
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{line_no}: pixel size is not a number: {row!r}") from None
            if not (math.isfinite(mm) and mm > 0):
                raise ValueError(f"{path}:{line_no}: pixel size must be positive, got {mm}")
            sizes[row[0].strip()] = mm
    return sizes


def calibrate_two_points(
    p1_xy: tuple[float, float], p2_xy: tuple[float, float], distance_mm: float
) -> Spacing:
    """Square spacing from two points (pixel x, y) a known distance apart (e.g. a depth ruler)."""
    length_px = math.hypot(p2_xy[0] - p1_xy[0], p2_xy[1] - p1_xy[1])
    if length_px <= 0:
        raise ValueError("the two calibration points are the same point")
    if not distance_mm > 0:
        raise ValueError(f"the known distance must be positive, got {distance_mm}")
    mm = distance_mm / length_px
    return Spacing(mm, mm, "calibration")
