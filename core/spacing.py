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
    def uncalibrated(cls) -> Spacing:
        return cls(1.0, 1.0, "none")

    @classmethod
    def square(cls, mm: float, source: str = "user") -> Spacing:
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


# DICOM ultrasound region codes (PS3.3 C.8.5.5.1): spatial format 1 = 2D, data type 1 = tissue
# (B-mode), physical units 3 = cm.
_US_2D, _US_TISSUE, _US_UNIT_CM = 1, 1, 3


def _region_contains(region, x: float, y: float) -> bool:
    return (
        region.RegionLocationMinX0 <= x <= region.RegionLocationMaxX1
        and region.RegionLocationMinY0 <= y <= region.RegionLocationMaxY1
    )


def _region_area(region) -> float:
    width = region.RegionLocationMaxX1 - region.RegionLocationMinX0 + 1
    height = region.RegionLocationMaxY1 - region.RegionLocationMinY0 + 1
    return float(width * height)


def _bmode_region_spacing(dataset) -> Spacing | None:
    """Spacing from the B-mode region of `SequenceOfUltrasoundRegions`, or None.

    Candidates are regions with RegionSpatialFormat == 1 (2D), RegionDataType == 1 (tissue) and
    both PhysicalUnitsX/YDirection == 3 (cm; deltas are converted to mm). Among them the region
    holding the image centre wins; when none or several hold it, the largest region (by pixel
    area) among those is chosen. Regions with missing or non-positive deltas are ignored.
    """
    regions = getattr(dataset, "SequenceOfUltrasoundRegions", None) or []
    candidates = []
    for region in regions:
        try:
            if (
                int(region.RegionSpatialFormat) == _US_2D
                and int(region.RegionDataType) == _US_TISSUE
                and int(region.PhysicalUnitsXDirection) == _US_UNIT_CM
                and int(region.PhysicalUnitsYDirection) == _US_UNIT_CM
            ):
                col_mm = abs(float(region.PhysicalDeltaX)) * 10.0
                row_mm = abs(float(region.PhysicalDeltaY)) * 10.0
                if col_mm > 0 and row_mm > 0 and math.isfinite(col_mm * row_mm):
                    candidates.append((region, Spacing(row_mm, col_mm, "dicom-us-region")))
        except (AttributeError, TypeError, ValueError):
            continue
    if not candidates:
        return None
    centre_x = (int(getattr(dataset, "Columns", 0) or 0) - 1) / 2
    centre_y = (int(getattr(dataset, "Rows", 0) or 0) - 1) / 2
    try:
        at_centre = [c for c in candidates if _region_contains(c[0], centre_x, centre_y)]
        pool = at_centre or candidates
        return max(pool, key=lambda c: _region_area(c[0]))[1]
    except (AttributeError, TypeError):  # region bounds missing: keep the first candidate
        return candidates[0][1]


def spacing_from_dicom(dataset) -> Spacing:
    """Pixel spacing stored in a DICOM header (a pydicom Dataset; pixel data not needed).

    Order: the B-mode ultrasound region (source "dicom-us-region", see `_bmode_region_spacing`),
    else `PixelSpacing` (row, column in mm; "dicom-pixel-spacing"), else uncalibrated.
    """
    region_spacing = _bmode_region_spacing(dataset)
    if region_spacing is not None:
        return region_spacing
    pixel_spacing = getattr(dataset, "PixelSpacing", None)
    if pixel_spacing is not None:
        try:
            row_mm, col_mm = (float(v) for v in pixel_spacing)
            return Spacing(row_mm, col_mm, "dicom-pixel-spacing")
        except (TypeError, ValueError):
            pass
    return Spacing.uncalibrated()


def lookup_csv_size(csv_sizes: dict[str, float] | None, path: str | Path) -> float | None:
    """The pixel size for `path` in a {filename: mm} CSV mapping: exact name, then ignoring case."""
    if not csv_sizes:
        return None
    name = Path(path).name
    if name in csv_sizes:
        return csv_sizes[name]
    folded = name.casefold()
    for key, mm in csv_sizes.items():
        if key.casefold() == folded:
            return mm
    return None


def spacing_for_file(
    path: str | Path, csv_sizes: dict[str, float] | None = None, user_mm: float | None = None
) -> Spacing:
    """Decide the spacing of a frame file.

    Precedence, most explicit first: a value the user typed (`user_mm`, source "user") > the
    pixel-size CSV entry matched by file name ("csv") > the file's own DICOM spacing
    (`spacing_from_dicom`) > uncalibrated ("none"). The DICOM header is only read when neither
    of the first two applies; a file that is not DICOM or whose header cannot be read is
    uncalibrated.
    """
    if user_mm is not None:
        return Spacing.square(user_mm, "user")
    csv_mm = lookup_csv_size(csv_sizes, path)
    if csv_mm is not None:
        return Spacing.square(csv_mm, "csv")
    from .io.dicom import is_dicom, read_dicom_spacing  # lazy: io imports this module

    if is_dicom(path):
        return read_dicom_spacing(path)
    return Spacing.uncalibrated()
