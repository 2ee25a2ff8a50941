"""How records and spacings read on screen and on the clipboard (text only, no Qt)."""

from __future__ import annotations

import math
from pathlib import Path

from ..core.records import MeasurementRecord
from ..core.spacing import Spacing

DASH = "–"

SPACING_SOURCES = {
    "dicom-us-region": "DICOM ultrasound region",
    "dicom-pixel-spacing": "DICOM pixel spacing",
    "csv": "pixel-size CSV",
    "user": "typed by the user",
    "calibration": "two-point calibration",
    "none": "none",
}


def format_length(value: float | None, unit: str, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:.{digits}f} {unit}"


def format_weeks(weeks: float | None) -> str:
    """24.43 -> '24w 3d' (completed weeks and days, as written in reports)."""
    if weeks is None or not math.isfinite(weeks):
        return DASH
    days = int(round(weeks * 7))
    return f"{days // 7}w {days % 7}d"


def format_centile(centile: float | None, z_score: float | None) -> str:
    if centile is None or not math.isfinite(centile):
        return DASH
    text = f"{centile:.0f}th" if 3 < centile % 100 < 21 else f"{centile:.0f}{_suffix(centile)}"
    if z_score is not None and math.isfinite(z_score):
        text += f" (z {z_score:+.2f})"
    return text


def _suffix(centile: float) -> str:
    last = int(round(centile)) % 10
    return {1: "st", 2: "nd", 3: "rd"}.get(last, "th")


def format_spacing(spacing: Spacing) -> str:
    """'0.1500 mm/px (typed by the user)' or 'UNCALIBRATED (values in pixels)'."""
    if not spacing.calibrated:
        return "UNCALIBRATED (values in pixels)"
    source = SPACING_SOURCES.get(spacing.source, spacing.source)
    if spacing.isotropic:
        return f"{spacing.col_mm:.4f} mm/px ({source})"
    return f"{spacing.col_mm:.4f} x {spacing.row_mm:.4f} mm/px (x by y; {source})"


def format_quality(record: MeasurementRecord) -> str:
    parts = []
    if record.fit_iou is not None:
        parts.append(f"fit {record.fit_iou:.2f}")
    if record.confidence is not None:
        parts.append(f"confidence {record.confidence:.2f}")
    return ", ".join(parts) if parts else DASH


def values_text(record: MeasurementRecord) -> str:
    """Values of one record as lines for the clipboard (pasted into a report)."""
    unit = record.unit
    lines = [
        f"File: {Path(record.file).name} (frame {record.frame_index + 1})",
        f"HC: {format_length(record.hc, unit)}",
        f"BPD: {format_length(record.bpd, unit)}",
        f"OFD: {format_length(record.ofd, unit)}",
        f"GA (Hadlock 1984): {format_weeks(record.ga_hadlock_weeks)}",
        f"GA (INTERGROWTH-21st): {format_weeks(record.ga_intergrowth_weeks)}",
        f"HC centile (INTERGROWTH-21st): {format_centile(record.centile, record.z_score)}",
        f"Pixel spacing: {format_spacing(record.spacing)}",
        f"Quality: {format_quality(record)}",
        f"Measurement: {record.origin}" + (f", model {record.model}" if record.model else ""),
    ]
    if not record.spacing.calibrated:
        lines.insert(0, "UNCALIBRATED FRAME: lengths are in pixels, not millimetres")
    return "\n".join(lines)
