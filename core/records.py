"""The measurement record: one per frame read, with its provenance."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .ellipse import Ellipse
from .spacing import Spacing

STATUS_OK = "ok"


@dataclass(frozen=True)
class MeasurementRecord:
    """What HC Studio reports for one frame.

    Lengths are in mm when the spacing is calibrated, else in pixels (`unit == "px"`).
    `ellipse_px` is in frame pixel coordinates; `bpd`/`ofd` are outer-to-outer minor/major axes.
    A frame with no head keeps its record with `ellipse_px is None` and the reason in `status`.
    """

    file: str
    frame_index: int
    spacing: Spacing
    status: str = STATUS_OK
    ellipse_px: Ellipse | None = None
    hc: float | None = None
    bpd: float | None = None
    ofd: float | None = None
    area: float | None = None
    ga_hadlock_weeks: float | None = None
    ga_hadlock_note: str = ""
    ga_intergrowth_weeks: float | None = None
    ga_intergrowth_note: str = ""
    centile: float | None = None
    z_score: float | None = None
    fit_iou: float | None = None
    confidence: float | None = None
    model: str = ""
    origin: str = "auto"  # "auto" or "edited"
    accepted: bool | None = None

    @property
    def unit(self) -> str:
        return self.spacing.unit

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK and self.ellipse_px is not None

    def replace(self, **changes) -> MeasurementRecord:
        return dataclasses.replace(self, **changes)
