"""Pixel spacing: the policy's order, pixel-size CSVs, two-point calibration, plausibility."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hc_studio.core.spacing import (
    PixelSizeTable,
    Spacing,
    SpacingPolicy,
    calibrate_two_points,
    lookup_csv_size,
    read_pixel_csv,
    read_pixel_table,
    spacing_for_file,
    user_spacing,
)
from test_io_dicom import us_region, write_dicom


def write_csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_read_pixel_csv_and_errors(tmp_path: Path) -> None:
    good = write_csv(
        tmp_path / "sizes.csv",
        "filename,pixel size(mm),head circumference (mm)\n001_HC.png,0.07,44.3\n\n",
    )
    assert read_pixel_csv(good) == {"001_HC.png": 0.07}
    bad = write_csv(tmp_path / "bad.csv", "filename,pixel size(mm)\n001_HC.png,abc\n")
    with pytest.raises(ValueError, match=r"bad\.csv:2"):
        read_pixel_csv(bad)


def test_csv_columns_found_by_name_in_any_order_and_case(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "sizes.csv",
        "\ufeffHead circumference (mm),Pixel_Size_MM,File\n"
        "44.3,0.07,001_HC.png\n50.1,0.09,002.png\n",
    )
    table = read_pixel_table(path)
    assert dict(table) == {"001_HC.png": 0.07, "002.png": 0.09}
    row = table.row_for("/anywhere/002.png")
    assert (row.name, row.mm, row.row) == ("002.png", 0.09, 3)


def test_csv_without_a_pixel_size_column_names_the_columns_found(tmp_path: Path) -> None:
    # A CSV of HC values used to be read as pixel sizes (the second column, whatever its name).
    path = write_csv(tmp_path / "hc.csv", "filename,head circumference (mm)\n001_HC.png,0.5\n")
    with pytest.raises(ValueError, match=r"hc\.csv: no pixel size column.*'head circumference"):
        read_pixel_table(path)
    no_name = write_csv(tmp_path / "noname.csv", "path,pixel size\n001_HC.png,0.1\n")
    with pytest.raises(ValueError, match=r"no file name column.*columns found: 'path'"):
        read_pixel_table(no_name)


def test_csv_duplicates_that_disagree_name_both_rows(tmp_path: Path) -> None:
    conflict = write_csv(
        tmp_path / "dup.csv", "filename,pixel size(mm)\na.png,0.1\nb.png,0.2\nA.PNG,0.3\n"
    )
    with pytest.raises(ValueError, match=r"dup\.csv: rows 2 and 4 give A\.PNG different"):
        read_pixel_table(conflict)
    same = write_csv(tmp_path / "same.csv", "filename,pixel size(mm)\na.png,0.1\na.png,0.1\n")
    assert dict(read_pixel_table(same)) == {"a.png": 0.1}


@pytest.mark.parametrize("value", ["1e308", "0", "-0.1", "5", "0.001", "nan", "inf"])
def test_csv_implausible_size_is_an_error_naming_file_row_and_value(
    tmp_path: Path, value: str
) -> None:
    path = write_csv(
        tmp_path / "sizes.csv", f"filename,pixel size(mm)\nok.png,0.1\nx.png,{value}\n"
    )
    with pytest.raises(ValueError, match=r"sizes\.csv:3: x\.png: pixel size"):
        read_pixel_table(path)


def test_user_value_outside_plausible_range_is_refused() -> None:
    assert user_spacing(0.14, "--pixel-size") == Spacing.square(0.14, "user")
    assert user_spacing(0.14, "--pixel-size").detail == "--pixel-size: 0.14 mm"
    for value in (1e308, 2.5, 0.005, 0.0):
        with pytest.raises(ValueError, match=r"--pixel-size: pixel size .* mm"):
            user_spacing(value, "--pixel-size")
    with pytest.raises(ValueError, match="outside the plausible range 0.01-2 mm"):
        SpacingPolicy(given=1e308)
    with pytest.raises(ValueError, match="outside"):
        SpacingPolicy(given=Spacing.square(1e308, "user"))


def test_calibrate_two_points() -> None:
    spacing = calibrate_two_points((0, 0), (30, 40), 10.0)
    assert spacing == Spacing(0.2, 0.2, "calibration")
    assert spacing.detail == "two points 50.0 px apart = 10 mm"
    with pytest.raises(ValueError):
        calibrate_two_points((1, 1), (1, 1), 10.0)
    with pytest.raises(ValueError, match="outside the plausible range"):
        calibrate_two_points((0, 0), (3, 4), 100.0)  # 20 mm per pixel: a misplaced point


def test_lookup_csv_size_by_name_then_ignoring_case() -> None:
    sizes = {"001_HC.png": 0.1}
    assert lookup_csv_size(sizes, "/x/y/001_HC.png") == 0.1
    assert lookup_csv_size(sizes, "001_hc.PNG") == 0.1
    assert lookup_csv_size(sizes, "002_HC.png") is None
    assert lookup_csv_size(None, "001_HC.png") is None


def test_csv_spacing_names_the_file_and_row(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "sizes.csv", "filename,pixel size(mm)\na.png,0.1\nb.png,0.2\n")
    policy = SpacingPolicy()
    policy.add_table(read_pixel_table(csv_path))
    spacing = policy.spacing_for(tmp_path / "b.png")
    assert spacing == Spacing.square(0.2, "csv")
    assert spacing.detail == "sizes.csv row 3" and spacing.provenance == "sizes.csv row 3"


def test_csv_applies_only_to_its_folder_and_the_paths_given_with_it(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "hc18" / "sizes.csv", "filename,pixel size(mm)\na.png,0.1\n")
    table = read_pixel_table(csv_path)
    policy = SpacingPolicy()
    policy.add_table(table, applies_to=[tmp_path / "hc18" / "training_set"])
    assert policy.override_for(tmp_path / "hc18" / "a.png") == Spacing.square(0.1, "csv")
    nested = tmp_path / "hc18" / "training_set" / "day1" / "a.png"
    assert policy.override_for(nested) == Spacing.square(0.1, "csv")
    # Same name elsewhere (another patient, HC18's test set): not this CSV's file.
    assert policy.override_for(tmp_path / "hc18" / "test_set" / "a.png") is None
    assert policy.override_for(tmp_path / "other" / "a.png") is None
    assert policy.spacing_for(tmp_path / "other" / "a.png") == Spacing.uncalibrated()
    alone = SpacingPolicy()
    alone.add_table(table, applies_to=[tmp_path / "x" / "a.png"])  # one file given with it
    assert alone.override_for(tmp_path / "x" / "a.png") == Spacing.square(0.1, "csv")
    assert alone.override_for(tmp_path / "y" / "a.png") is None


def test_unused_tables_are_reported(tmp_path: Path) -> None:
    used = write_csv(tmp_path / "used.csv", "filename,pixel size(mm)\na.png,0.1\n")
    unused = write_csv(tmp_path / "unused.csv", "filename,pixel size(mm)\nzzz.png,0.1\n")
    policy = SpacingPolicy()
    policy.add_table(read_pixel_table(used))
    policy.add_table(read_pixel_table(unused))
    files = [tmp_path / "a.png", tmp_path / "b.png"]
    assert [t.name for t in policy.unused_tables(files)] == ["unused.csv"]
    matched = {table.name: hits for table, hits in policy.matched_files(files)}
    assert matched == {"used.csv": [tmp_path / "a.png"], "unused.csv": []}


def test_policy_order_file_then_given_then_csv_then_header(tmp_path: Path) -> None:
    path = write_dicom(
        tmp_path / "scan.dcm", np.zeros((1, 8, 8), np.uint8), pixel_spacing=(0.3, 0.3)
    )
    csv_path = write_csv(tmp_path / "sizes.csv", "filename,pixel size(mm)\nscan.dcm,0.15\n")
    policy = SpacingPolicy()
    assert policy.spacing_for(path) == Spacing(0.3, 0.3, "dicom-pixel-spacing")
    assert policy.spacing_for(path).detail == "DICOM PixelSpacing (0028,0030)"
    assert policy.spacing_for(path, own=Spacing.uncalibrated()) == Spacing.uncalibrated()
    policy.add_table(read_pixel_table(csv_path))
    assert policy.spacing_for(path) == Spacing(0.15, 0.15, "csv")
    policy.set_given(0.05)
    assert policy.spacing_for(path) == Spacing(0.05, 0.05, "user")
    calibration = Spacing(0.07, 0.07, "calibration")
    policy.set_for_file(path, calibration)
    assert policy.spacing_for(path) == calibration
    assert policy.spacing_for(tmp_path / "other.dcm") == Spacing(0.05, 0.05, "user")
    policy.set_for_file(path, None)
    policy.set_given(None)
    policy.clear_tables()
    assert policy.spacing_for(path) == Spacing(0.3, 0.3, "dicom-pixel-spacing")


def test_spacing_for_file_keeps_its_order(tmp_path: Path) -> None:
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
    with pytest.raises(ValueError, match="outside"):
        spacing_for_file(path, None, 1e308)


def test_dicom_region_outside_the_image_falls_through_with_a_note(tmp_path: Path) -> None:
    region = us_region(0, 0, 699, 499, 0.01, 0.01)  # bounds of a 700x500 image; this one is 8x8
    path = write_dicom(
        tmp_path / "scan.dcm",
        np.zeros((1, 8, 8), np.uint8),
        regions=[region],
        pixel_spacing=(0.3, 0.3),
    )
    spacing = SpacingPolicy().spacing_for(path)
    assert spacing == Spacing(0.3, 0.3, "dicom-pixel-spacing")
    assert "region 1 not used: its bounds x 0-699, y 0-499 lie outside the 8x8 image" in (
        spacing.provenance
    )


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


def test_provenance_is_not_part_of_equality_and_survives_json() -> None:
    import dataclasses

    spacing = Spacing(0.1, 0.2, "csv", "sizes.csv row 3", ("a note",))
    assert spacing == Spacing(0.1, 0.2, "csv")
    again = Spacing(**{**dataclasses.asdict(spacing), "notes": ["a note"]})
    assert again.notes == ("a note",) and hash(again) == hash(spacing)


def test_table_from_mapping_keeps_names() -> None:
    table = PixelSizeTable.from_mapping({"a.png": 0.1})
    assert table.row_for("A.PNG").mm == 0.1 and table.spacing(table.row_for("a.png")).detail


def test_csv_that_is_not_text_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sizes.csv"
    path.write_bytes(bytes(range(256)) * 4)  # a binary file given as the pixel CSV
    with pytest.raises(ValueError, match=r"sizes\.csv: not a text CSV"):
        read_pixel_table(path)


def test_a_batch_of_many_named_files_finds_its_table_in_linear_time(tmp_path) -> None:
    """Each file is looked up among the batch's roots by set, not compared with every root:
    5,000 named files took minutes when every lookup went through every root."""
    import time

    from hc_studio.core.spacing import PixelSizeTable, SpacingPolicy

    files = [tmp_path / f"scan{i // 100}" / f"{i:05d}_HC.png" for i in range(5000)]
    table = PixelSizeTable.from_mapping({f.name: 0.1 for f in files})
    policy = SpacingPolicy()
    policy.add_table(table, applies_to=files)
    started = time.perf_counter()
    assert policy.unused_tables(files) == []
    assert policy.override_for(files[4321]).row_mm == pytest.approx(0.1)
    assert policy.override_for(tmp_path / "elsewhere" / "00001_HC.png") is None
    assert time.perf_counter() - started < 5.0
