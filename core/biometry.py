"""Head biometry from a fitted ellipse: HC, BPD, OFD and area, as one value object.

The ellipse follows the OUTER border of the skull (the clinical HC definition, and the HC18
reference), so BPD = 2b and OFD = 2a are outer-to-outer diameters along the ellipse's axes.
Clinical BPD is often measured outer-to-inner; these values are not.

`HeadBiometry` declares its own CSV columns (`HeadBiometry.COLUMNS`: name, decimals, unit), and
`core.export` writes and reads exactly those; a new value (BPD outer-to-inner, another structure)
is a field and a column here, nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from .ellipse import Ellipse
from .spacing import Spacing


def ramanujan_perimeter(a: float, b: float) -> float:
    """Perimeter of an ellipse with semi-axes a, b (Ramanujan's second approximation)."""
    a, b = abs(float(a)), abs(float(b))
    if a + b == 0:
        return 0.0
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


@dataclass(frozen=True)
class BiometryColumn:
    """One CSV column of a biometry object: `name` in the header, the object's `field`, the
    `decimals` written, and `unit_power` (1: a length in the record's unit, 2: an area in unit^2).
    """

    name: str
    field: str
    decimals: int
    unit_power: int = 1

    def unit(self, unit: str) -> str:
        """This column's unit when the lengths are in `unit` ("mm" -> "mm" or "mm^2")."""
        return unit if self.unit_power == 1 else f"{unit}^{self.unit_power}"


@dataclass(frozen=True)
class HeadBiometry:
    """Head measurements in `unit` ("mm", or "px" for an uncalibrated frame).

    hc: head circumference; bpd: 2b and ofd: 2a, outer-to-outer; area: pi * a * b (unit^2).
    """

    hc: float
    bpd: float
    ofd: float
    area: float
    unit: str

    # Column order is the CSV's; micrometre precision for lengths.
    COLUMNS: ClassVar[tuple[BiometryColumn, ...]] = (
        BiometryColumn("hc", "hc", 3),
        BiometryColumn("bpd_outer_outer", "bpd", 3),
        BiometryColumn("ofd_outer_outer", "ofd", 3),
        BiometryColumn("area", "area", 3, unit_power=2),
    )

    def cells(self) -> dict[str, float]:
        """{CSV column name: value} for `COLUMNS`."""
        return {column.name: getattr(self, column.field) for column in self.COLUMNS}

    @classmethod
    def from_cells(cls, cells: Mapping[str, str], unit: str) -> HeadBiometry | None:
        """The biometry written in `cells` (CSV texts by column name); None when all are empty.

        An empty cell among filled ones (a value that was not finite) reads as NaN.
        """
        texts = {column.field: cells[column.name].strip() for column in cls.COLUMNS}
        if not any(texts.values()):
            return None
        values = {field: float(text) if text else math.nan for field, text in texts.items()}
        return cls(unit=unit, **values)


def ellipse_in_mm(ellipse_px: Ellipse, spacing: Spacing) -> Ellipse:
    """The pixel ellipse (x, y) = (col, row) mapped exactly into physical space: columns scaled
    by col_mm, rows by row_mm (exact under anisotropic spacing). Uncalibrated: unchanged."""
    if not spacing.calibrated:
        return ellipse_px
    return ellipse_px.scaled(spacing.col_mm, spacing.row_mm)


def biometry_from_ellipse(ellipse_px: Ellipse, spacing: Spacing) -> HeadBiometry:
    """Biometry of a pixel-space ellipse under `spacing`, measured on `ellipse_in_mm`.

    BPD = 2b (minor axis), OFD = 2a (major axis), both outer-to-outer. An uncalibrated spacing
    gives values in pixels with unit "px".
    """
    ellipse_mm = ellipse_in_mm(ellipse_px, spacing)
    a, b = ellipse_mm.a, ellipse_mm.b
    return HeadBiometry(
        hc=ramanujan_perimeter(a, b),
        bpd=2 * b,
        ofd=2 * a,
        area=math.pi * a * b,
        unit=spacing.unit,
    )
