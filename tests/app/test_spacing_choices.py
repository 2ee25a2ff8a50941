"""The window's pixel-size choices (one `CalibrationState` over the spacing policy): a CSV
applies only to the files it was loaded for, implausible sizes are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hc_studio.core.session.calibration import CalibrationState
from hc_studio.core.spacing import Spacing


def test_a_csv_loaded_for_open_files_does_not_calibrate_other_folders(tmp_path: Path) -> None:
    csv_path = tmp_path / "exam1" / "sizes.csv"
    csv_path.parent.mkdir()
    csv_path.write_text("filename,pixel size(mm)\nframe.png,0.1\n")
    choices = CalibrationState()
    assert choices.load_csv(csv_path, for_files=[tmp_path / "exam1" / "frames" / "frame.png"]) == 1
    assert choices.override(tmp_path / "exam1" / "frames" / "frame.png") == Spacing.square(
        0.1, "csv"
    )
    assert choices.override(tmp_path / "exam1" / "frame.png") == Spacing.square(0.1, "csv")
    # Opened later from another exam, same file name: not calibrated by exam 1's CSV.
    assert choices.override(tmp_path / "exam2" / "frame.png") is None


def test_an_implausible_typed_size_is_refused(tmp_path: Path) -> None:
    choices = CalibrationState()
    with pytest.raises(ValueError, match="outside the plausible range"):
        choices.set_for_all_files(5.0)
    with pytest.raises(ValueError, match="outside the plausible range"):
        choices.set_for_file(tmp_path / "a.png", Spacing.square(1e308, "user"))
    assert choices.override(tmp_path / "a.png") is None


@pytest.mark.qt
def test_measure_tab_says_why_a_typed_size_is_refused(qtbot, window, open_measured, phantom_png):
    path, _ = phantom_png
    open_measured(path)
    tab = window.measure_tab
    with qtbot.waitSignal(tab.errorMessage) as said:
        tab.set_pixel_size(5.0, all_files=True)
    assert "plausible" in said.args[0]
    assert tab.current_record().spacing.source != "user"


@pytest.mark.qt
def test_measure_tab_csv_spares_frames_opened_later_elsewhere(
    qtbot, window, open_measured, phantom_png, tmp_path
) -> None:
    path, _ = phantom_png
    open_measured(path)
    tab = window.measure_tab
    csv_path = tmp_path / "csvs" / "sizes.csv"
    csv_path.parent.mkdir()
    csv_path.write_text(f"filename,pixel size(mm)\n{path.name},0.14\n")
    tab.set_pixel_csv(csv_path)
    spacing = tab.current_record().spacing
    assert spacing == Spacing.square(0.14, "csv") and spacing.detail == "sizes.csv row 2"
    elsewhere = tmp_path / "other_exam" / path.name
    elsewhere.parent.mkdir()
    shutil.copy(path, elsewhere)
    key = open_measured(elsewhere)
    assert tab.spacing_for(key) == Spacing.uncalibrated()
