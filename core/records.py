"""The measurement record: one per frame read, with its provenance, status and biometry."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from .biometry import HeadBiometry
from .ellipse import Ellipse
from .spacing import Spacing


class Status(StrEnum):
    """What became of a frame; the why is in the record's `reasons`.

    OK: measured, nothing doubtful. REVIEW: measured, but the fit or the network looks doubtful
    (the values are kept and a person should look). NO_HEAD: the network found no head to fit.
    NOT_A_HEAD: something was found but the frame is not a fetal head plane (the head-plane
    check); no HC and no GA are reported. ERROR: the file or frame could not be read or processed.
    A StrEnum, so `record.status == "ok"` compares with the plain word.
    """

    OK = "ok"
    REVIEW = "review"
    NO_HEAD = "no head found"
    NOT_A_HEAD = "not a fetal head"
    ERROR = "error"

    @property
    def is_failure(self) -> bool:
        """True when the frame gave no measurement to use."""
        return self in (Status.NO_HEAD, Status.NOT_A_HEAD, Status.ERROR)


def status_text(status: Status, reasons: tuple[str, ...] = ()) -> str:
    """The status as one text cell: "ok", "no head found", "review: <r1>, <r2>",
    "error: <problem>" (the CSV `status` column and every message that shows a status)."""
    return f"{status.value}: {', '.join(reasons)}" if reasons else status.value


def parse_status_text(text: str) -> tuple[Status, tuple[str, ...]]:
    """The inverse of `status_text`. An error's problem is one reason even if it has commas.

    Raises ValueError for a text that starts with no known status.
    """
    text = text.strip()
    for status in Status:
        if text == status.value:
            return status, ()
        prefix = status.value + ": "
        if text.startswith(prefix):
            rest = text[len(prefix) :]
            reasons = (rest,) if status is Status.ERROR else tuple(rest.split(", "))
            return status, reasons
    raise ValueError(f"unknown status {text!r}")


@dataclass(frozen=True)
class MeasurementRecord:
    """What HC Studio reports for one frame.

    `biometry` holds the head's values (HC, BPD and OFD outer-to-outer, area) in mm when the
    spacing is calibrated, else in pixels (`unit == "px"`); None when nothing was measured.
    `ellipse_px` is in frame pixel coordinates.
    A frame with no head keeps its record with `ellipse_px is None`, its `status` and the
    `reasons`. A plain status word ("ok") is accepted and made a `Status`.
    """

    file: str
    frame_index: int
    spacing: Spacing
    status: Status = Status.OK
    reasons: tuple[str, ...] = ()
    ellipse_px: Ellipse | None = None
    biometry: HeadBiometry | None = None
    ga_hadlock_weeks: float | None = None
    ga_hadlock_note: str = ""
    ga_intergrowth_weeks: float | None = None
    ga_intergrowth_note: str = ""
    centile: float | None = None
    z_score: float | None = None
    fit_iou: float | None = None
    confidence: float | None = None
    # |HC of the refining pass - HC of the first| / HC of the first (core.refine); None without
    # a refining model.
    pass_disagreement: float | None = None
    model: str = ""
    origin: str = "auto"  # "auto" or "edited"
    accepted: bool | None = None

    def __post_init__(self) -> None:
        # Status("review: x") raises: reasons go in `reasons`, never into the status word.
        object.__setattr__(self, "status", Status(self.status))
        reasons = (self.reasons,) if isinstance(self.reasons, str) else tuple(self.reasons)
        object.__setattr__(self, "reasons", reasons)

    @property
    def status_text(self) -> str:
        """The status with its reasons as one text (see `status_text`)."""
        return status_text(self.status, self.reasons)

    @property
    def unit(self) -> str:
        return self.spacing.unit

    @property
    def ok(self) -> bool:
        return self.status is Status.OK and self.ellipse_px is not None

    # The head's values read through the record keep the many views that show one value short
    # (`record.hc`); they live only in `biometry`.
    @property
    def hc(self) -> float | None:
        return None if self.biometry is None else self.biometry.hc

    @property
    def bpd(self) -> float | None:
        return None if self.biometry is None else self.biometry.bpd

    @property
    def ofd(self) -> float | None:
        return None if self.biometry is None else self.biometry.ofd

    @property
    def area(self) -> float | None:
        return None if self.biometry is None else self.biometry.area

    def replace(self, **changes) -> MeasurementRecord:
        return dataclasses.replace(self, **changes)
