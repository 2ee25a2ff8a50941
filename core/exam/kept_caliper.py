"""A BPD outer-to-inner caliper placed by hand, kept for its frame.

`core.skull.bpd_outer_inner` reads the far inner border from the image; when the person moves the
caliper's far end, that placement replaces the automatic one in the results panel, the printed
report and the correction log, marked as edited. It is kept with the ellipse it was placed on:
once the ellipse changes, the caliper's axis has moved and the hand placement no longer applies
(`applies_to`). Its length is measured again under the frame's spacing (`value`), so a later
calibration gives the right number in mm.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..ellipse import Ellipse
from ..records import MeasurementRecord
from ..skull import SkullBpd, caliper_length
from ..spacing import Spacing

EDITED_NOTE = "moved by hand"


@dataclass(frozen=True)
class KeptCaliper:
    """End points (frame pixels, x y), the ellipse they were placed on, and the automatic
    length they replace (None when the image gave none) in `auto_unit`."""

    near_xy: tuple[float, float]
    far_xy: tuple[float, float]
    far_outer_xy: tuple[float, float]
    ellipse_px: Ellipse
    auto_value: float | None = None
    auto_unit: str = "mm"

    def applies_to(self, record: MeasurementRecord | None) -> bool:
        return record is not None and record.ellipse_px == self.ellipse_px

    def value(self, spacing: Spacing) -> float:
        return caliper_length(self.near_xy, self.far_xy, spacing)

    def skull(self, automatic: SkullBpd | None, record: MeasurementRecord) -> SkullBpd:
        """The automatic reading with the far inner end where the person put it."""
        value = self.value(record.spacing)
        if automatic is None:
            outer_outer = record.bpd if record.bpd is not None else float("nan")
            automatic = SkullBpd(
                outer_outer, None, None, record.unit, self.near_xy, self.far_outer_xy, None
            )
        return dataclasses.replace(
            automatic, outer_inner=value, far_inner_xy=self.far_xy, note=EDITED_NOTE
        )

    def to_json(self) -> dict:
        return {
            "near_xy": list(self.near_xy),
            "far_xy": list(self.far_xy),
            "far_outer_xy": list(self.far_outer_xy),
            "ellipse_px": dataclasses.asdict(self.ellipse_px),
            "auto_value": self.auto_value,
            "auto_unit": self.auto_unit,
        }

    @classmethod
    def from_json(cls, data: dict) -> KeptCaliper:
        """Raises KeyError, TypeError or ValueError on data that is not a kept caliper."""

        def point(value) -> tuple[float, float]:
            x, y = value
            return float(x), float(y)

        ellipse = data["ellipse_px"]
        auto = data.get("auto_value")
        return cls(
            point(data["near_xy"]),
            point(data["far_xy"]),
            point(data["far_outer_xy"]),
            Ellipse(**{k: float(ellipse[k]) for k in ("cx", "cy", "a", "b", "angle")}),
            None if auto is None else float(auto),
            str(data.get("auto_unit", "mm")),
        )
