"""Records CSV round trip and the HC18 submission format."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.biometry import HeadBiometry
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.export import (
    HC18_COLUMNS,
    RECORD_COLUMNS,
    read_records_csv,
    record_row,
    write_hc18_submission,
    write_records_csv,
)
from hc_studio.core.records import MeasurementRecord
from hc_studio.core.spacing import Spacing

ELLIPSE = Ellipse(cx=401.25, cy=262.5, a=180.4, b=131.7, angle=math.radians(35.0))


def measured(file: str = "001_HC.png", spacing: Spacing | None = None) -> MeasurementRecord:
    return MeasurementRecord(
        file=file,
        frame_index=0,
        spacing=spacing or Spacing(0.15, 0.16, "csv"),
        ellipse_px=ELLIPSE,
        biometry=HeadBiometry(hc=172.345, bpd=41.2, ofd=55.1, area=1780.5, unit="mm"),
        ga_hadlock_weeks=19.51,
        ga_hadlock_note="",
        ga_intergrowth_weeks=19.4,
        ga_intergrowth_note="outside the chart's range",
        centile=None,
        z_score=None,
        fit_iou=0.9812,
        confidence=0.9631,
        model="tiny-threshold",
        accepted=True,
    )


def no_head() -> MeasurementRecord:
    return MeasurementRecord(
        file="frames/black.png",
        frame_index=2,
        spacing=Spacing.uncalibrated(),
        status="no head found",
        model="tiny-threshold",
    )


def test_records_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out" / "measurements.csv"
    assert write_records_csv([measured(), no_head()], path) == 2
    first, second = read_records_csv(path)
    original = measured()
    assert first.file == original.file and first.spacing == original.spacing
    assert first.ellipse_px.cx == pytest.approx(ELLIPSE.cx, abs=1e-3)
    assert first.ellipse_px.a == pytest.approx(ELLIPSE.a, abs=1e-3)
    assert first.ellipse_px.angle == pytest.approx(ELLIPSE.angle, abs=1e-5)
    assert first.hc == pytest.approx(172.345) and first.centile is None
    assert first.ga_intergrowth_note == original.ga_intergrowth_note
    assert first.accepted is True and first.origin == "auto" and first.ok
    assert second == no_head()


def test_header_and_units_are_explicit(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    write_records_csv([measured(), no_head()], path)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == RECORD_COLUMNS
    assert rows[0]["unit"] == "mm" and rows[0]["pixel_col_mm"] == "0.160000"
    assert rows[0]["hc"] == "172.345" and rows[0]["angle_deg"] == "35.0000"
    # An uncalibrated frame has no pixel size in the mm columns, only its unit "px".
    assert rows[1]["unit"] == "px" and rows[1]["pixel_row_mm"] == ""
    assert rows[1]["spacing_source"] == "none" and rows[1]["hc"] == ""


def test_extra_columns_follow_the_record_columns(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    write_records_csv([measured(), no_head()], path, {"reference_hc": [172.3, None]})
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[-1] == "reference_hc"
    assert [row["reference_hc"] for row in rows] == ["172.300", ""]
    assert len(read_records_csv(path)) == 2
    with pytest.raises(ValueError, match="reference_hc"):
        write_records_csv([measured()], path, {"reference_hc": []})


def test_reading_a_foreign_csv_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("filename,pixel size(mm)\n001_HC.png,0.1\n")
    with pytest.raises(ValueError, match="other.csv: not a measurements CSV"):
        read_records_csv(path)
    good = tmp_path / "bad_value.csv"
    write_records_csv([measured()], good)
    good.write_text(good.read_text().replace("172.345", "lots"))
    with pytest.raises(ValueError, match=r"bad_value.csv:2"):
        read_records_csv(good)


def challenge_mask(row: dict[str, str], pixel_mm: float, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a submission row the way the HC18 evaluation does: OpenCV's ellipse drawing
    with centre (x = column, y = row) and semi-axes in pixels, the first along the angle."""
    shift = 4  # sub-pixel precision: coordinates in 1/16 pixel
    scale = (1 << shift) / pixel_mm

    def fixed(key: str) -> int:
        return round(float(row[key]) * scale)

    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(
        mask,
        (fixed("center_x_mm"), fixed("center_y_mm")),
        (fixed("semi_axes_a_mm"), fixed("semi_axes_b_mm")),
        math.degrees(float(row["angle_rad"])),
        0,
        360,
        1,
        -1,
        cv2.LINE_8,
        shift,
    )
    return mask.astype(bool)


def test_hc18_submission_rasterises_back_to_the_ellipse(tmp_path: Path) -> None:
    pixel_mm = 0.137
    path = tmp_path / "submission.csv"
    skipped = write_hc18_submission(
        [measured("set/001_HC.png", Spacing.square(pixel_mm, "csv")), no_head()], path
    )
    assert skipped == [("frames/black.png", "no ellipse to submit (no head found)")]
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == HC18_COLUMNS and len(rows) == 1
    assert rows[0]["filename"] == "001_HC.png"
    assert float(rows[0]["center_x_mm"]) == pytest.approx(ELLIPSE.cx * pixel_mm)
    assert float(rows[0]["angle_rad"]) == pytest.approx(ELLIPSE.angle)

    shape = (540, 800)
    rows_grid, cols_grid = np.mgrid[: shape[0], : shape[1]]
    truth = ELLIPSE.normalised_radius_sq(cols_grid, rows_grid) <= 1.0
    drawn = challenge_mask(rows[0], pixel_mm, shape)
    iou = (truth & drawn).sum() / (truth | drawn).sum()
    assert iou > 0.99
    # The same row read with x and y swapped lands elsewhere: the test can tell conventions apart.
    swapped = dict(rows[0], center_x_mm=rows[0]["center_y_mm"], center_y_mm=rows[0]["center_x_mm"])
    swapped_mask = challenge_mask(swapped, pixel_mm, shape)
    assert (truth & swapped_mask).sum() / (truth | swapped_mask).sum() < 0.8


def test_hc18_submission_skips_uncalibrated_frames(tmp_path: Path) -> None:
    uncalibrated = measured("002_HC.png", Spacing.uncalibrated())
    skipped = write_hc18_submission([uncalibrated], tmp_path / "s.csv")
    assert skipped == [("002_HC.png", "uncalibrated frame, the submission needs millimetres")]
    assert (tmp_path / "s.csv").read_text().strip() == ",".join(HC18_COLUMNS)


def test_biometry_columns_come_from_the_biometry_declaration(tmp_path: Path) -> None:
    names = [column.name for column in HeadBiometry.COLUMNS]
    start = RECORD_COLUMNS.index(names[0])
    assert list(RECORD_COLUMNS[start : start + len(names)]) == names
    row = record_row(measured())
    assert [row[name] for name in names] == ["172.345", "41.200", "55.100", "1780.500"]
    assert [row[name] for name in names] == [
        f"{value:.{column.decimals}f}"
        for column, value in zip(HeadBiometry.COLUMNS, measured().biometry.cells().values())
    ]
    assert record_row(no_head())["hc"] == "" and no_head().hc is None
    path = tmp_path / "m.csv"
    write_records_csv([measured()], path)
    assert read_records_csv(path)[0].biometry == measured().biometry
