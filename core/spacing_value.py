"""The pixel-spacing value (`Spacing`, with its provenance) and the plausible pixel sizes.

A leaf module: the frame readers (`core.io`) build Spacings from file headers, and the spacing
policy (`core.spacing`) decides which one applies to a frame. Both import this module and
`core.io` never imports `core.spacing`, so the two cannot form an import circle.
`core.spacing` re-exports everything here; import from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SOURCES = ("dicom-us-region", "dicom-pixel-spacing", "csv", "user", "calibration", "none")

# Fetal ultrasound frames have pixels of roughly 0.05-0.5 mm. A size far outside this range is a
# wrong unit (cm, um), a wrong column or a typo, and would give a confident wrong HC.
PLAUSIBLE_PIXEL_MM = (0.01, 2.0)


def pixel_size_problem(mm: float) -> str | None:
    """Why `mm` cannot be a pixel size (a sentence), or None when it is plausible."""
    low, high = PLAUSIBLE_PIXEL_MM
    try:
        mm = float(mm)
    except (TypeError, ValueError):
        return f"pixel size {mm!r} is not a number"
    if not (math.isfinite(mm) and mm > 0):
        return f"pixel size {mm:g} mm is not a positive number (plausible: {low:g}-{high:g} mm)"
    if not low <= mm <= high:
        return f"pixel size {mm:g} mm is outside the plausible range {low:g}-{high:g} mm"
    return None


def check_pixel_size(mm: float, where: str) -> float:
    """`mm` as a float; ValueError '<where>: pixel size ... outside ...' when implausible."""
    problem = pixel_size_problem(mm)
    if problem is not None:
        raise ValueError(f"{where}: {problem}")
    return float(mm)


@dataclass(frozen=True)
class Spacing:
    """Size of one pixel: `row_mm` along y (rows), `col_mm` along x (columns).

    `source == "none"` marks an uncalibrated frame: measurements are then in pixels
    (row_mm = col_mm = 1 only as a unit of "pixel", never as millimetres).

    `detail` names the source precisely ("sizes.csv row 12", "DICOM ultrasound region 1 ...");
    `notes` say why more explicit sources were not used (a DICOM region outside the image, an
    implausible value). Neither takes part in equality: two spacings with the same sizes and
    source measure the same.
    """

    row_mm: float
    col_mm: float
    source: str
    detail: str = field(default="", compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown spacing source {self.source!r}")
        for value in (self.row_mm, self.col_mm):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"pixel spacing must be a positive number, got {value!r}")
        object.__setattr__(self, "notes", tuple(self.notes))  # a list when read from JSON

    @property
    def calibrated(self) -> bool:
        return self.source != "none"

    @property
    def unit(self) -> str:
        return "mm" if self.calibrated else "px"

    @property
    def isotropic(self) -> bool:
        return math.isclose(self.row_mm, self.col_mm, rel_tol=1e-6)

    @property
    def provenance(self) -> str:
        """`detail` and `notes` in one line, for display and logs."""
        return "; ".join(part for part in (self.detail, *self.notes) if part)

    def with_notes(self, notes: tuple[str, ...] | list[str]) -> Spacing:
        """This spacing with `notes` added after its own."""
        if not notes:
            return self
        return Spacing(self.row_mm, self.col_mm, self.source, self.detail, (*self.notes, *notes))

    @classmethod
    def uncalibrated(cls, notes: tuple[str, ...] | list[str] = ()) -> Spacing:
        return cls(1.0, 1.0, "none", "", tuple(notes))

    @classmethod
    def square(cls, mm: float, source: str = "user", detail: str = "") -> Spacing:
        return cls(float(mm), float(mm), source, detail)
