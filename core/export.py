"""CSV export of measurement records, and the HC18 challenge submission format.

Records CSV: one row per frame, columns `RECORD_COLUMNS`. The biometry columns are those that
`HeadBiometry.COLUMNS` declares (`hc`, `bpd_outer_outer`, `ofd_outer_outer` in the row's `unit`,
"mm" or "px" for an uncalibrated frame; `area` in unit^2); columns ending in `_px` are always
pixels, `_mm` always millimetres (empty when the frame is uncalibrated), so a pixel value never
sits in a millimetre column.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from .atomic import atomic_write
from .biometry import HeadBiometry, ellipse_in_mm
from .csv_safety import SafeDictWriter, restore_cell
from .ellipse import Ellipse
from .records import MeasurementRecord, parse_status_text
from .spacing import Spacing

_BIOMETRY = HeadBiometry.COLUMNS
RECORD_COLUMNS: tuple[str, ...] = (
    "file",
    "frame_index",
    "status",
    "origin",
    "accepted",
    "unit",
    "pixel_row_mm",
    "pixel_col_mm",
    "spacing_source",
    "center_x_px",
    "center_y_px",
    "semi_major_px",
    "semi_minor_px",
    "angle_deg",
    *(column.name for column in _BIOMETRY),
    "ga_hadlock_weeks",
    "ga_hadlock_note",
    "ga_intergrowth_weeks",
    "ga_intergrowth_note",
    "z_score",
    "centile",
    "fit_iou",
    "confidence",
    "pass_disagreement",
    "model",
)
# Columns a measurements CSV of an earlier version lacks; read back as empty.
OPTIONAL_RECORD_COLUMNS = frozenset({"pass_disagreement"})

HC18_COLUMNS: tuple[str, ...] = (
    "filename",
    "center_x_mm",
    "center_y_mm",
    "semi_axes_a_mm",
    "semi_axes_b_mm",
    "angle_rad",
)

# Decimals per numeric column: micrometres for lengths, readable elsewhere.
_DECIMALS = {
    "pixel_row_mm": 6,
    "pixel_col_mm": 6,
    "center_x_px": 3,
    "center_y_px": 3,
    "semi_major_px": 3,
    "semi_minor_px": 3,
    "angle_deg": 4,
    **{column.name: column.decimals for column in _BIOMETRY},
    "ga_hadlock_weeks": 2,
    "ga_intergrowth_weeks": 2,
    "z_score": 3,
    "centile": 2,
    "fit_iou": 4,
    "confidence": 4,
    "pass_disagreement": 4,
}


def _number(value: float | None, decimals: int) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.{decimals}f}"


def _accepted_text(accepted: bool | None) -> str:
    return "" if accepted is None else ("true" if accepted else "false")


def _biometry_cells(biometry: HeadBiometry | None) -> dict[str, float | None]:
    if biometry is None:
        return {column.name: None for column in _BIOMETRY}
    return dict(biometry.cells())


def record_row(record: MeasurementRecord) -> dict[str, str]:
    """One CSV row (column -> text) for a record."""
    spacing, ellipse = record.spacing, record.ellipse_px
    values: dict[str, object] = {
        "file": record.file,
        "frame_index": str(record.frame_index),
        "status": record.status_text,
        "origin": record.origin,
        "accepted": _accepted_text(record.accepted),
        "unit": record.unit,
        "pixel_row_mm": spacing.row_mm if spacing.calibrated else None,
        "pixel_col_mm": spacing.col_mm if spacing.calibrated else None,
        "spacing_source": spacing.source,
        "center_x_px": ellipse.cx if ellipse else None,
        "center_y_px": ellipse.cy if ellipse else None,
        "semi_major_px": ellipse.a if ellipse else None,
        "semi_minor_px": ellipse.b if ellipse else None,
        "angle_deg": math.degrees(ellipse.angle) if ellipse else None,
        **_biometry_cells(record.biometry),
        "ga_hadlock_weeks": record.ga_hadlock_weeks,
        "ga_hadlock_note": record.ga_hadlock_note,
        "ga_intergrowth_weeks": record.ga_intergrowth_weeks,
        "ga_intergrowth_note": record.ga_intergrowth_note,
        "z_score": record.z_score,
        "centile": record.centile,
        "fit_iou": record.fit_iou,
        "confidence": record.confidence,
        "pass_disagreement": record.pass_disagreement,
        "model": record.model,
    }
    return {
        column: _number(value, _DECIMALS[column]) if column in _DECIMALS else str(value)  # type: ignore[arg-type]
        for column, value in values.items()
    }


def write_records_csv(
    records: Iterable[MeasurementRecord],
    path: str | Path,
    extra_columns: Mapping[str, Sequence[object]] | None = None,
) -> int:
    """Write records to `path` atomically; returns the number of rows.

    `extra_columns`: more columns after `RECORD_COLUMNS`, each a sequence with one value per
    record (e.g. a reference HC); None becomes an empty cell, floats get 3 decimals.
    """
    records = list(records)
    extra = dict(extra_columns or {})
    for name, values in extra.items():
        if len(values) != len(records):
            raise ValueError(
                f"extra column {name!r} has {len(values)} values for {len(records)} rows"
            )
    with atomic_write(path, newline="", encoding="utf-8") as handle:
        writer = SafeDictWriter(handle, fieldnames=[*RECORD_COLUMNS, *extra])
        writer.writeheader()
        for index, record in enumerate(records):
            row = record_row(record)
            row.update({name: _extra_text(values[index]) for name, values in extra.items()})
            writer.writerow(row)
    return len(records)


def _extra_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return _number(value, 3)
    return str(value)


def _optional(text: str, convert: Callable[[str], object]) -> object:
    return convert(text) if text.strip() else None


def _parse_accepted(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in ("", "none"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError(f"accepted must be true, false or empty, got {text!r}")


def _record_from_row(row: Mapping[str, str]) -> MeasurementRecord:
    source = row["spacing_source"].strip() or "none"
    if source == "none":
        spacing = Spacing.uncalibrated()
    else:
        spacing = Spacing(float(row["pixel_row_mm"]), float(row["pixel_col_mm"]), source)
    ellipse = None
    if row["center_x_px"].strip():
        ellipse = Ellipse.normalised(
            float(row["center_x_px"]),
            float(row["center_y_px"]),
            float(row["semi_major_px"]),
            float(row["semi_minor_px"]),
            math.radians(float(row["angle_deg"])),
        )
    status, reasons = parse_status_text(row["status"])
    return MeasurementRecord(
        file=row["file"],
        frame_index=int(row["frame_index"]),
        spacing=spacing,
        status=status,
        reasons=reasons,
        ellipse_px=ellipse,
        biometry=HeadBiometry.from_cells(row, spacing.unit),
        ga_hadlock_weeks=_optional(row["ga_hadlock_weeks"], float),  # type: ignore[arg-type]
        ga_hadlock_note=row["ga_hadlock_note"],
        ga_intergrowth_weeks=_optional(row["ga_intergrowth_weeks"], float),  # type: ignore[arg-type]
        ga_intergrowth_note=row["ga_intergrowth_note"],
        z_score=_optional(row["z_score"], float),  # type: ignore[arg-type]
        centile=_optional(row["centile"], float),  # type: ignore[arg-type]
        fit_iou=_optional(row["fit_iou"], float),  # type: ignore[arg-type]
        confidence=_optional(row["confidence"], float),  # type: ignore[arg-type]
        pass_disagreement=_optional(row.get("pass_disagreement") or "", float),  # type: ignore[arg-type]
        model=row["model"],
        origin=row["origin"] or "auto",
        accepted=_parse_accepted(row["accepted"]),
    )


def read_records_csv(path: str | Path) -> list[MeasurementRecord]:
    """Read a CSV written by `write_records_csv` (extra columns are ignored).

    Raises ValueError naming the file (and line) when a column is missing or a value is bad.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [
            column
            for column in RECORD_COLUMNS
            if column not in (reader.fieldnames or []) and column not in OPTIONAL_RECORD_COLUMNS
        ]
        if missing:
            raise ValueError(f"{path}: not a measurements CSV, missing columns {missing}")
        records = []
        for row in reader:
            try:
                cells = {key: restore_cell(value) for key, value in row.items() if key is not None}
                records.append(_record_from_row(cells))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path}:{reader.line_num}: {error}") from None
    return records


def hc18_row(record: MeasurementRecord) -> dict[str, str]:
    """The HC18 submission row of a calibrated record with an ellipse.

    HC18 conventions (as read by the challenge's evaluation, which draws the ellipse with
    OpenCV): x is the column, y the row, both times the pixel size, pixel centres at integer
    coordinates; `semi_axes_a_mm` lies along `angle_rad`, measured from +x towards +y (image y
    points down), in [0, pi). This is exactly `Ellipse`'s convention, mapped to mm per axis.
    """
    if record.ellipse_px is None:
        raise ValueError(f"{record.file}: no ellipse to submit ({record.status_text})")
    if not record.spacing.calibrated:
        raise ValueError(f"{record.file}: uncalibrated frame, the submission needs millimetres")
    ellipse_mm = ellipse_in_mm(record.ellipse_px, record.spacing)
    values = (ellipse_mm.cx, ellipse_mm.cy, ellipse_mm.a, ellipse_mm.b, ellipse_mm.angle)
    return {
        "filename": Path(record.file).name,
        **{column: repr(float(value)) for column, value in zip(HC18_COLUMNS[1:], values)},
    }


def write_hc18_submission(
    records: Iterable[MeasurementRecord], path: str | Path
) -> list[tuple[str, str]]:
    """Write an HC18 challenge submission CSV atomically (columns `HC18_COLUMNS`).

    Records without an ellipse or without a pixel size are left out; returns them as
    (file, reason) pairs so the caller can report them.
    """
    skipped: list[tuple[str, str]] = []
    rows: list[dict[str, str]] = []
    for record in records:
        try:
            rows.append(hc18_row(record))
        except ValueError as error:
            skipped.append((record.file, str(error).split(": ", 1)[-1]))
    with atomic_write(path, newline="", encoding="utf-8") as handle:
        writer = SafeDictWriter(handle, fieldnames=list(HC18_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return skipped
