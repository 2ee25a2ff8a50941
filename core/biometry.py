"""Head biometry from a fitted ellipse: HC, BPD, OFD and area.

The ellipse follows the OUTER border of the skull (the clinical HC definition, and the HC18
reference), so BPD = 2b and OFD = 2a are outer-to-outer diameters along the ellipse's axes.
Clinical BPD is often measured outer-to-inner; these values are not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
class Biometry:
    """Head measurements in `unit` ("mm", or "px" for an uncalibrated frame).

    hc: head circumference; bpd: 2b and ofd: 2a, outer-to-outer; area: pi * a * b (unit^2);
    ellipse_mm: the ellipse in physical space (in pixels when uncalibrated).
    """

    hc: float
    bpd: float
    ofd: float
    area: float
    unit: str
    ellipse_mm: Ellipse


def biometry_from_ellipse(ellipse_px: Ellipse, spacing: Spacing) -> Biometry:
    """Biometry of a pixel-space ellipse (x, y) = (col, row) under `spacing`.

    The ellipse is mapped exactly into mm space (columns scaled by col_mm, rows by row_mm), so
    anisotropic spacing is handled exactly. BPD = 2b (minor axis), OFD = 2a (major axis), both
    outer-to-outer. An uncalibrated spacing gives values in pixels with unit "px".
    """
    if spacing.calibrated:
        ellipse_mm = ellipse_px.scaled(spacing.col_mm, spacing.row_mm)
    else:
        ellipse_mm = ellipse_px
    a, b = ellipse_mm.a, ellipse_mm.b
    return Biometry(
        hc=ramanujan_perimeter(a, b),
        bpd=2 * b,
        ofd=2 * a,
        area=math.pi * a * b,
        unit=spacing.unit,
        ellipse_mm=ellipse_mm,
    )
