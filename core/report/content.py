"""What one exam's printed report says, as plain text tables and PNG images (no PDF here).

`build_exam_report` gathers everything the report shows from an `Exam`: the exam values with
their spread, GA by each equation with its reference, GA by dates and the discrepancy, the HC
centile worded for print, every frame's measurement (automatic or edited, BPD both ways, a BPD
outer-to-inner caliper placed by hand marked edited), the calibration source, the model, the
corrections of the exam and of the whole session, and the frames with their overlays. `pdf.py`
only lays this out, so the same content can be tested without reading a PDF.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..ellipse import Ellipse
from ..exam.assessment import CENTILE_REFERENCE, EQUATION_REFERENCES, assess_exam, hc_centile_for
from ..exam.correction_log import CorrectionEntry, summarise
from ..exam.dating import EXTREME_Z, GA_AT_EXAM, format_ga_days
from ..exam.grouping import Exam, FrameKey, frame_key
from ..exam.kept_caliper import EDITED_NOTE, KeptCaliper
from ..exam.values import (
    DEFAULT_LIMIT,
    LABELS,
    chosen_with_selection,
    exam_values,
    unusable_reason,
    usable_selection,
)
from ..io import FrameReadError
from ..records import MeasurementRecord
from ..skull import BPD_CONVENTION_BY_EQUATION, SkullBpd, bpd_outer_inner

PixelReader = Callable[[MeasurementRecord], np.ndarray]
DASH = "-"
_MAX_IMAGES = 6
_IMAGE_MAX_PX = 640
_OVERLAY_BGR = {"ellipse": (80, 220, 80), "outer_outer": (255, 200, 0), "outer_inner": (0, 0, 255)}


@dataclass(frozen=True)
class ReportImage:
    caption: str
    jpeg: bytes | None  # None when the frame could not be read (the caption says why)


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ExamReport:
    """Everything printed for one exam, as text (sections of lines and tables) and images."""

    title: str
    facts: tuple[tuple[str, str], ...]  # (label, value) lines at the top
    values: Table
    gestational_age: Table
    assessment_lines: tuple[str, ...]
    measurements: Table
    provenance_lines: tuple[str, ...]
    images: tuple[ReportImage, ...] = field(default=())

    def text(self) -> str:
        """All the report's words, in reading order (for tests and for a text export)."""
        parts = [self.title, *(f"{label}: {value}" for label, value in self.facts)]
        for table in (self.values, self.gestational_age):
            parts += [" | ".join(table.header), *(" | ".join(row) for row in table.rows)]
        parts += list(self.assessment_lines)
        table = self.measurements
        parts += [" | ".join(table.header), *(" | ".join(row) for row in table.rows)]
        parts += list(self.provenance_lines) + [image.caption for image in self.images]
        return "\n".join(parts)


def read_record_pixels(record: MeasurementRecord) -> np.ndarray:
    """The frame of a record, read again from its file ((H, W) float32 0..1)."""
    from ..io import read_frame

    return read_frame(record.file, record.frame_index).pixels


def frame_name(record: MeasurementRecord) -> str:
    return key_name(frame_key(record))


def key_name(key: FrameKey) -> str:
    name = Path(key[0]).name
    return f"{name} #{key[1]}" if key[1] else name


def value_how(value) -> str:
    """How an exam value was made, naming the selected frame ("selected measurement (f.png)")."""
    if value.selected is None:
        return value.how
    return f"{value.how} ({key_name(value.selected)})"


def _length(value: float | None, unit: str) -> str:
    return DASH if value is None else f"{value:.1f} {unit}"


def _weeks(weeks: float | None) -> str:
    return DASH if weeks is None else f"{weeks:.1f} wk ({format_ga_days(weeks * 7)})"


def overlay_jpeg(pixels: np.ndarray, record: MeasurementRecord, skull: SkullBpd | None) -> bytes:
    """The frame with the fitted ellipse and the BPD calipers drawn on it, as JPEG bytes (at most
    `_IMAGE_MAX_PX` wide: enough for print at the report's image size; JPEG because speckle
    makes PNG ten times larger)."""
    grey = np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
    image = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    scale = min(1.0, _IMAGE_MAX_PX / image.shape[1])
    if scale < 1.0:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    record = record.replace(ellipse_px=_scaled(record.ellipse_px, scale))
    skull = _scaled_skull(skull, scale)
    thickness = max(1, round(max(image.shape[:2]) / 300))
    if record.ellipse_px is not None:
        points = np.round(record.ellipse_px.points(720) * 16).astype(np.int32)
        cv2.polylines(image, [points], True, _OVERLAY_BGR["ellipse"], thickness, cv2.LINE_AA, 4)
    if skull is not None:

        def point(xy: tuple[float, float]) -> tuple[int, int]:
            return round(xy[0] * 16), round(xy[1] * 16)

        near = point(skull.near_outer_xy)
        cv2.line(image, near, point(skull.far_outer_xy), _OVERLAY_BGR["outer_outer"], thickness,
                 cv2.LINE_AA, 4)  # fmt: skip
        if skull.far_inner_xy is not None:
            far_inner = point(skull.far_inner_xy)
            cv2.circle(image, far_inner, 3 * thickness * 16, _OVERLAY_BGR["outer_inner"],
                       thickness, cv2.LINE_AA, 4)  # fmt: skip
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError(f"{record.file}: could not encode the report image")
    return encoded.tobytes()


def _scaled(ellipse, scale: float):
    if ellipse is None or scale == 1.0:
        return ellipse
    # pixel centres at integer coordinates: x' = (x + 0.5) * scale - 0.5
    return Ellipse(
        (ellipse.cx + 0.5) * scale - 0.5,
        (ellipse.cy + 0.5) * scale - 0.5,
        ellipse.a * scale,
        ellipse.b * scale,
        ellipse.angle,
    )


def _scaled_skull(skull: SkullBpd | None, scale: float) -> SkullBpd | None:
    if skull is None or scale == 1.0:
        return skull

    def point(xy):
        return None if xy is None else ((xy[0] + 0.5) * scale - 0.5, (xy[1] + 0.5) * scale - 0.5)

    return dataclasses.replace(
        skull,
        near_outer_xy=point(skull.near_outer_xy),
        far_outer_xy=point(skull.far_outer_xy),
        far_inner_xy=point(skull.far_inner_xy),
    )


def _skull(record: MeasurementRecord, pixels: np.ndarray | None) -> SkullBpd | None:
    if pixels is None or record.ellipse_px is None:
        return None
    return bpd_outer_inner(pixels, record.ellipse_px, record.spacing)


def _read(record: MeasurementRecord, reader: PixelReader) -> tuple[np.ndarray | None, str]:
    if record.ellipse_px is None:
        return None, ""
    try:
        return reader(record), ""
    except (FrameReadError, OSError, ValueError, cv2.error) as error:
        return None, str(error)


def build_exam_report(
    exam: Exam,
    read_pixels: PixelReader = read_record_pixels,
    limit: int = DEFAULT_LIMIT,
    chosen: Sequence[FrameKey] | None = None,
    selected: Mapping[str, FrameKey] | None = None,
    model_details: Mapping[str, str] | None = None,
    corrections: Sequence[CorrectionEntry] = (),
    printed_at: dt.datetime | None = None,
    notes: Sequence[str] = (),
    calipers: Mapping[FrameKey, KeptCaliper] | None = None,
    session_corrections: Sequence[CorrectionEntry] | None = None,
) -> ExamReport:
    """The report of one exam. Frames are read with `read_pixels` for BPD outer-to-inner and
    again for the few shown with their overlays (a long cine never sits in memory as a whole); a
    frame that cannot be read keeps its row and says so. `notes` are printed with the
    provenance. `selected` maps a parameter to the frame chosen as its exam value (ignored when
    that frame is not among the measurements); `calipers` are BPD outer-to-inner calipers placed
    by hand, used instead of the image's; `session_corrections` is the whole session's
    correction log, summarised beside the exam's."""
    records = exam.records
    skulls: dict[FrameKey, SkullBpd | None] = {}
    for record in records:
        skull = _skull(record, _read(record, read_pixels)[0])
        kept = (calipers or {}).get(frame_key(record))
        if kept is not None and kept.applies_to(record):
            skull = kept.skull(skull, record)
        skulls[frame_key(record)] = skull
    outer_inner = {
        key: (skull.outer_inner if skull is not None and skull.unit == "mm" else None)
        for key, skull in skulls.items()
    }
    extra = {"bpd_outer_inner": outer_inner}
    chosen = chosen_with_selection(records, limit, chosen, selected)
    selected = usable_selection(exam_values(records, limit, chosen, None, extra), selected)
    values = exam_values(records, limit, chosen, selected, extra)
    assessment = assess_exam(exam, values)
    used = {key for value in values.values() for key, _ in value.measurements}
    printed_at = printed_at or dt.datetime.now().astimezone()

    facts = (
        ("Exam", exam.label),
        ("Exam date", exam.exam_date.isoformat() if exam.exam_date else "not recorded"),
        ("Operator", exam.operator or "not recorded"),
        ("GA by dates", _dates_text(exam, assessment.ga_dates_days, assessment.dates_note)),
        ("Printed", printed_at.isoformat(timespec="minutes")),
    )
    value_rows = tuple(
        (
            LABELS.get(name, name),
            _length(value.value, value.unit),
            value_how(value),
            value.spread_text() or DASH,
        )
        for name, value in values.items()
    )
    ga_rows = tuple(
        (
            ga.method,
            _weeks(ga.weeks),
            EQUATION_REFERENCES.get(ga.method, "") if ga.weeks else ga.note,
        )
        for ga in assessment.ga_by_equation
    ) or (("no usable HC in this exam", DASH, ", ".join(EQUATION_REFERENCES.values())),)
    return ExamReport(
        title="HC Studio - fetal head biometry report",
        facts=facts,
        values=Table(("Parameter", "Exam value", "From", "Spread"), value_rows),
        gestational_age=Table(("Equation (GA from the exam HC)", "GA", "Reference"), ga_rows),
        assessment_lines=_assessment_lines(assessment, values),
        measurements=_measurement_table(records, skulls, used, assessment.ga_dates_days, selected),
        provenance_lines=_provenance_lines(records, model_details, corrections, session_corrections)
        + tuple(notes),
        images=_images(records, read_pixels, skulls, used),
    )


def _dates_text(exam: Exam, ga_days: int | None, note: str) -> str:
    if exam.dating is None:
        return note
    if ga_days is None:
        return f"{exam.dating.describe()}: {note}"
    if exam.dating.kind == GA_AT_EXAM:
        return exam.dating.describe()
    return f"{exam.dating.describe()} -> {format_ga_days(ga_days)} at the exam date"


def _assessment_lines(assessment, values) -> tuple[str, ...]:
    lines = []
    if assessment.discrepancy is not None:
        flag = "FLAG: " if assessment.discrepancy.flagged else ""
        lines.append(
            f"{flag}GA by biometry ({assessment.biometry_method}) minus GA by dates: "
            f"{assessment.discrepancy.text()}"
        )
    centile = assessment.centile
    if centile.text:
        z = "" if centile.extreme else f" (z {centile.z_score:+.2f})"
        lines.append(f"HC centile for GA by dates: {centile.text}{z}; {CENTILE_REFERENCE}")
    elif values["hc"].value is not None:
        lines.append(f"HC centile: none ({centile.note})")
    lines.append(
        "Which BPD each equation expects: "
        + "; ".join(f"{name}: {kind}" for name, kind in BPD_CONVENTION_BY_EQUATION.items())
        + ". GA above is from HC only."
    )
    return tuple(lines)


def _measurement_table(records, skulls, used, ga_days, selected) -> Table:
    rows = []
    for record in records:
        key, unit = frame_key(record), record.unit
        skull = skulls.get(key)
        centile = hc_centile_for(record.hc, ga_days) if unit == "mm" else None
        reason = unusable_reason(record)
        outer_inner = _length(skull.outer_inner if skull else None, unit)
        if skull is not None and skull.note == EDITED_NOTE:
            outer_inner += " (edited)"
        chosen_for = [LABELS.get(name, name) for name, frame in selected.items() if frame == key]
        in_value = "yes" + (f", selected for {', '.join(chosen_for)}" if chosen_for else "")
        rows.append(
            (
                frame_name(record),
                str(record.status),
                "edited" if record.origin == "edited" else "automatic",
                _length(record.hc, unit),
                _length(record.bpd, unit),
                outer_inner,
                _length(record.ofd, unit),
                _weeks(record.ga_hadlock_weeks),
                _short_centile(centile),
                in_value if key in used else (reason or "not chosen"),
            )
        )
    header = (
        "Frame",
        "Status",
        "Origin",
        "HC",
        "BPD o-o",
        "BPD o-i",
        "OFD",
        "GA Hadlock",
        "Centile",
        "In exam value",
    )
    return Table(header, tuple(rows))


def _short_centile(centile) -> str:
    """The centile for a table cell: an extreme z-score stays a flag, in fewer words."""
    if centile is None or not centile.text:
        return DASH
    if centile.extreme:
        return f"EXTREME ({'<' if centile.z_score < 0 else '>'} {EXTREME_Z:g} SD)"
    return centile.text


def _provenance_lines(records, model_details, corrections, session_corrections) -> tuple[str, ...]:
    lines = []
    calibrations = {}
    for record in records:
        spacing = record.spacing
        if spacing.calibrated:
            size = f"{spacing.row_mm:.4f} x {spacing.col_mm:.4f} mm per pixel (row x column)"
        else:
            size = "uncalibrated: lengths in pixels, no GA"
        calibrations.setdefault(f"{size}, source {spacing.source}", []).append(record)
    for text, group in calibrations.items():
        lines.append(f"Calibration: {text} ({len(group)} frame(s))")
    models = sorted({record.model for record in records if record.model})
    details = ", ".join(f"{k} {v}" for k, v in (model_details or {}).items() if v)
    lines.append(
        f"Model: {', '.join(models) or 'none recorded'}" + (f" ({details})" if details else "")
    )
    edited = sum(record.origin == "edited" for record in records)
    lines.append(f"Origin: {len(records) - edited} automatic, {edited} edited by a person")
    keys = {frame_key(record) for record in records}
    mine = [entry for entry in corrections if (entry.file, entry.frame_index) in keys]
    if mine:
        lines.append(f"Corrections in this exam: {summarise(mine).text()}")
    if session_corrections is not None:  # how often and how much the machine was corrected
        lines.append(f"Corrections in this session: {summarise(session_corrections).text()}")
    return tuple(lines)


def _images(records, read_pixels, skulls, used) -> tuple[ReportImage, ...]:
    shown = [r for r in records if frame_key(r) in used] or [
        r for r in records if r.ellipse_px is not None
    ]
    images = []
    for record in shown[:_MAX_IMAGES]:
        key = frame_key(record)
        caption = f"{frame_name(record)}: HC {_length(record.hc, record.unit)}"
        pixels, problem = _read(record, read_pixels)
        if pixels is None:
            images.append(ReportImage(f"{caption} (image not readable: {problem})", None))
            continue
        images.append(ReportImage(caption, overlay_jpeg(pixels, record, skulls[key])))
    return tuple(images)
