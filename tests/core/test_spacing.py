"""Pixel spacing: CSV, two-point calibration, DICOM header spacing and the precedence rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hc_studio.core.spacing import (
    Spacing,
    calibrate_two_points,
    lookup_csv_size,
    read_pixel_csv,
    spacing_for_file,
    spacing_from_dicom,
)
from pydicom.dataset import Dataset
from test_io_dicom import us_region, write_dicom


def header(rows: int = 100, cols: int = 200, regions=None, pixel_spacing=None) -> Dataset:
    dataset = Dataset()
    dataset.Rows, dataset.Columns = rows, cols
    if regions is not None:
        dataset.SequenceOfUltrasoundRegions = regions
    if pixel_spacing is not None:
        dataset.PixelSpacing = list(pixel_spacing)
    return dataset


def test_read_pixel_csv_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "sizes.csv"
    good.write_text("filename,pixel size(mm),head circumference (mm)\n001_HC.png,0.07,44.3\n\n")
    assert read_pixel_csv(good) == {"001_HC.png": 0.07}
    bad = tmp_path / "bad.csv"
    bad.write_text("filename,pixel size(mm)\n001_HC.png,abc\n")
    with pytest.raises(ValueError, match=r"bad\.csv:2"):
        read_pixel_csv(bad)


def test_calibrate_two_points() -> None:
    spacing = calibrate_two_points((0, 0), (30, 40), 10.0)
    assert spacing == Spacing(0.2, 0.2, "calibration")
    with pytest.raises(ValueError):
        calibrate_two_points((1, 1), (1, 1), 10.0)


def test_lookup_csv_size_by_name_then_ignoring_case() -> None:
    sizes = {"001_HC.png": 0.1}
    assert lookup_csv_size(sizes, "/x/y/001_HC.png") == 0.1
    assert lookup_csv_size(sizes, "001_hc.PNG") == 0.1
    assert lookup_csv_size(sizes, "002_HC.png") is None
    assert lookup_csv_size(None, "001_HC.png") is None


def test_dicom_cm_region_converted_to_mm_anisotropic() -> None:
    spacing = spacing_from_dicom(header(regions=[us_region(0, 0, 199, 99, 0.01, 0.02)]))
    assert (spacing.row_mm, spacing.col_mm, spacing.source) == pytest.approx(
        (0.2, 0.1, "dicom-us-region")
    )


def test_dicom_largest_bmode_region_when_none_holds_the_centre() -> None:
    regions = [us_region(0, 0, 20, 20, 0.01, 0.01), us_region(150, 0, 199, 99, 0.03, 0.03)]
    assert spacing_from_dicom(header(regions=regions)).col_mm == pytest.approx(0.3)


def test_dicom_regions_in_other_units_are_ignored() -> None:
    not_cm = [us_region(0, 0, 199, 99, 0.01, 0.01, units=4)]  # 4 = seconds
    spacing = spacing_from_dicom(header(regions=not_cm, pixel_spacing=(0.5, 0.4)))
    assert spacing == Spacing(0.5, 0.4, "dicom-pixel-spacing")
    assert spacing_from_dicom(header(regions=not_cm)) == Spacing.uncalibrated()


def test_precedence_user_over_csv_over_dicom(tmp_path: Path) -> None:
    path = write_dicom(
        tmp_path / "scan.dcm", np.zeros((1, 8, 8), np.uint8), pixel_spacing=(0.3, 0.3)
    )
    sizes = {"scan.dcm": 0.15}
    assert spacing_for_file(path, sizes, 0.05) == Spacing(0.05, 0.05, "user")
    assert spacing_for_file(path, sizes, None) == Spacing(0.15, 0.15, "csv")
    assert spacing_for_file(path, {"other.dcm": 0.2}, None) == Spacing(
        0.3, 0.3, "dicom-pixel-spacing"
    )
    assert spacing_for_file(path) == Spacing(0.3, 0.3, "dicom-pixel-spacing")


def test_plain_image_without_csv_is_uncalibrated(tmp_path: Path) -> None:
    png = tmp_path / "scan.png"
    png.write_bytes(b"not really a png")
    spacing = spacing_for_file(png, {"else.png": 0.1}, None)
    assert spacing == Spacing.uncalibrated() and not spacing.calibrated and spacing.unit == "px"


def test_spacing_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Spacing(0.0, 0.1, "user")
    with pytest.raises(ValueError):
        Spacing(math.nan, 0.1, "user")
    with pytest.raises(ValueError):
        Spacing(0.1, 0.1, "guess")
