"""The measuring session model, without Qt: decisions, undo, calibration, saving."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.exam import Dating
from hc_studio.core.measure import record_from_ellipse
from hc_studio.core.records import Status
from hc_studio.core.session import (
    CalibrationState,
    Decision,
    ExamDating,
    FrameState,
    ListedFile,
    MeasureSession,
    frame_state,
    status_word,
)
from hc_studio.core.session.autosave import (
    default_state_dir,
    read_saved_session,
    save_session,
    saved_frame_count,
)
from hc_studio.core.session.frames import batch_summary
from hc_studio.core.spacing import Spacing

ELLIPSE = Ellipse(100.0, 80.0, 60.0, 45.0, 0.3)
LMP, EXAM_DAY = dt.date(2026, 1, 5), dt.date(2026, 6, 8)  # 22 weeks apart


def measured_session(*paths: str) -> MeasureSession:
    """A session with one measured frame per path (uncalibrated PNGs)."""
    session = MeasureSession()
    session.add_files([ListedFile(p, 1) for p in paths])
    for path in paths:
        record = record_from_ellipse(path, 0, Spacing.uncalibrated(), ELLIPSE, "m", origin="auto")
        session.measured((path, 0), record, None)
    return session


def test_importing_the_session_loads_no_qt():
    code = (
        "import sys, hc_studio.core.session, hc_studio.core.session.autosave; "
        "assert 'PySide6' not in sys.modules and 'pyqtgraph' not in sys.modules, sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_frame_state_is_read_from_the_status_in_one_place():
    ok = record_from_ellipse("a.png", 0, Spacing.uncalibrated(), ELLIPSE, "m", origin="auto")
    assert frame_state(ok) is FrameState.OK
    assert (
        frame_state(ok.replace(status=Status.REVIEW, reasons=("low confidence",)))
        is FrameState.REVIEW
    )
    assert frame_state(ok.replace(status=Status.NO_HEAD, ellipse_px=None)) is FrameState.NO_HEAD
    assert (
        frame_state(ok.replace(status=Status.NOT_A_HEAD, reasons=("blank frame",), ellipse_px=None))
        is FrameState.NO_HEAD
    )
    assert (
        frame_state(ok.replace(status=Status.ERROR, reasons=("unreadable",), ellipse_px=None))
        is FrameState.ERROR
    )
    summary = batch_summary(
        [
            ok,
            ok.replace(status=Status.REVIEW, reasons=("x",)),
            ok.replace(status=Status.ERROR, reasons=("y",)),
        ]
    )
    assert summary == "3 frame(s): 1 ok, 1 to review, 0 without a head, 1 error(s)"


def test_an_edit_after_acceptance_needs_a_new_acceptance():
    session = measured_session("/a/one.png")
    key = ("/a/one.png", 0)
    session.set_pixel_size(0.1)
    assert session.decide(key, True) is Decision.DONE
    assert session.record(key).accepted is True
    session.edit(key, Ellipse(100.0, 80.0, 70.0, 45.0, 0.3))
    record = session.record(key)
    assert record.origin == "edited" and record.accepted is None
    assert status_word(session.entry(key)) == "edited"
    session.undo.activate(key)
    session.undo.undo()
    assert session.record(key).accepted is True


def test_accepting_values_in_pixels_asks_first_and_no_head_is_refused():
    session = measured_session("/a/one.png")
    key = ("/a/one.png", 0)
    assert session.decide(key, True) is Decision.NEEDS_CONFIRMATION
    assert session.record(key).accepted is None
    assert session.decide(key, True, confirmed=True) is Decision.DONE
    assert session.record(key).accepted is True
    failed = session.record(key).replace(status=Status.NO_HEAD, ellipse_px=None, accepted=None)
    session.measured(key, failed, None)
    assert session.decide(key, True, confirmed=True) is Decision.NOTHING_TO_ACCEPT
    assert session.decide(None, False) is Decision.NO_FRAME


def test_undo_acts_on_the_active_frame_only():
    session = measured_session("/a/one.png", "/a/two.png")
    one, two = ("/a/one.png", 0), ("/a/two.png", 0)
    session.decide(one, False)
    session.decide(two, False)
    session.undo.activate(one)
    assert session.undo.undo_text() == "Reject"
    session.undo.undo()
    assert session.record(one).accepted is None and session.record(two).accepted is False
    assert session.undo.can_redo()
    session.undo.redo()
    assert session.record(one).accepted is False


def test_a_pixel_csv_calibrates_only_the_folders_it_was_given_for(tmp_path):
    folder_a, folder_b = tmp_path / "a", tmp_path / "b"
    folder_a.mkdir()
    csv_path = folder_a / "sizes.csv"
    csv_path.write_text("filename,pixel size(mm)\nframe.png,0.1\n")
    in_a, in_b = str(folder_a / "sub" / "frame.png"), str(folder_b / "frame.png")
    session = measured_session(in_a)
    assert session.load_pixel_csv(csv_path) == 1
    assert session.spacing_for((in_a, 0)) == Spacing.square(0.1, "csv")
    assert session.record((in_a, 0)).unit == "mm"
    session.add_files([ListedFile(in_b, 1)])  # opened later, from another folder
    assert session.spacing_for((in_b, 0)) == Spacing.uncalibrated()
    # Files open when the CSV is loaded are its files too, wherever they are.
    other = str(tmp_path / "c" / "frame.png")
    session.add_files([ListedFile(other, 1)])
    session.load_pixel_csv(csv_path)
    assert session.spacing_for((other, 0)) == Spacing.square(0.1, "csv")
    assert session.spacing_for((in_b, 0)) == Spacing.square(0.1, "csv")


def test_calibration_points_must_lie_inside_the_image():
    session = measured_session("/a/one.png")
    key = ("/a/one.png", 0)
    with pytest.raises(ValueError, match="outside the 200x100 image"):
        session.calibrate(key, (10.0, 10.0), (250.0, 10.0), 10.0, (100, 200))
    assert session.spacing_for(key) == Spacing.uncalibrated()
    spacing = session.calibrate(key, (10.0, 10.0), (110.0, 10.0), 10.0, (100, 200))
    assert spacing == Spacing(0.1, 0.1, "calibration")
    assert session.record(key).hc == pytest.approx(session.entry(key).auto.hc)


def test_a_decision_under_another_calibration_is_dropped():
    session = measured_session("/a/one.png")
    key = ("/a/one.png", 0)
    session.set_pixel_size(0.1)
    session.decide(key, True)
    session.set_exam_dating(["/a/one.png"], ExamDating(Dating.from_ga(30)))  # lengths unchanged

    assert session.record(key).accepted is True
    session.set_pixel_size(0.2)
    assert session.record(key).accepted is None


def test_unexported_decisions_are_counted_until_exported():
    session = measured_session("/a/one.png", "/a/two.png")
    assert session.unexported_decisions() == 0
    session.decide(("/a/one.png", 0), True, confirmed=True)
    session.decide(("/a/two.png", 0), False)
    assert session.unexported_decisions() == 2
    session.mark_exported()
    assert session.unexported_decisions() == 0
    session.decide(("/a/two.png", 0), True, confirmed=True)
    assert session.unexported_decisions() == 1


def test_the_session_is_saved_and_restored_whole(tmp_path):
    session = measured_session("/a/one.png", "/a/two.png")
    saves = []
    session.listeners.append(lambda: saves.append(1))
    session.set_pixel_size(0.15, "/a/one.png")
    session.set_exam_dating(["/a/one.png"], ExamDating(Dating.from_lmp(LMP), EXAM_DAY))
    session.decide(("/a/one.png", 0), True)
    session.edit(("/a/two.png", 0), Ellipse(90.0, 70.0, 50.0, 40.0, 1.0))
    session.mark_exported()
    assert saves, "every change must reach the autosave"
    save_session(tmp_path, session)

    data, problem = read_saved_session(tmp_path)
    assert problem is None and saved_frame_count(data) == (2, 1)
    restored = MeasureSession()
    restored.restore(data)
    for key in session.frame_keys():
        assert restored.record(key) == session.record(key)
        assert restored.entry(key).auto == session.entry(key).auto
    assert restored.frame_keys() == session.frame_keys()
    assert restored.dating_for("/a/one.png") == ExamDating(Dating.from_lmp(LMP), EXAM_DAY)
    assert restored.dating_for("/a/two.png") is None
    assert restored.spacing_for(("/a/one.png", 0)) == Spacing.square(0.15, "user")
    assert restored.unexported_decisions() == 0

    calibration_only = MeasureSession()
    calibration_only.restore(data, with_frames=False)
    assert calibration_only.frame_keys() == []
    assert calibration_only.calibration.override("/a/one.png") == Spacing.square(0.15, "user")


def test_an_unreadable_saved_session_is_kept_aside_and_reported(tmp_path):
    (tmp_path / "session.json").write_text('{"format": "hc-studio-session", "version": 1, "fr')
    data, problem = read_saved_session(tmp_path)
    assert data is None and "cannot be read" in problem
    assert (tmp_path / "session.json.unreadable").exists()
    assert read_saved_session(tmp_path) == (None, None)
    (tmp_path / "session.json").write_text(json.dumps({"format": "something else"}))
    assert read_saved_session(tmp_path)[0] is None


def test_the_state_folder_follows_xdg():
    home = Path("/home/someone")
    assert default_state_dir({"XDG_STATE_HOME": "/s"}, home, "linux") == Path("/s/hc-studio")
    assert default_state_dir({}, home, "linux") == home / ".local/state/hc-studio"
    assert default_state_dir({"XDG_STATE_HOME": "rel"}, home, "linux") == (
        home / ".local/state/hc-studio"
    )


def test_spacing_precedence_file_then_all_then_csv(tmp_path):
    csv_path = tmp_path / "sizes.csv"
    csv_path.write_text("filename,pixel size(mm)\na.png,0.1\nb.png,0.2\n")
    a, b = str(tmp_path / "x" / "a.png"), str(tmp_path / "x" / "b.png")
    choices = CalibrationState()
    assert choices.override(a) is None
    assert choices.load_csv(csv_path) == 2
    assert choices.override(a) == Spacing.square(0.1, "csv")
    choices.set_for_all_files(0.3)
    assert choices.override(a) == Spacing.square(0.3, "user")
    calibration = Spacing(0.05, 0.05, "calibration")
    choices.set_for_file(a, calibration)
    assert choices.override(a) == calibration
    assert choices.override(b) == Spacing.square(0.3, "user")
    choices.set_for_file(a, None)
    choices.set_for_all_files(None)
    assert choices.override(a) == Spacing.square(0.1, "csv")
    with pytest.raises(ValueError, match="positive"):
        choices.set_for_all_files(-1.0)


def test_a_spacing_the_window_gave_is_not_taken_for_the_files_own():
    session = measured_session("/a/one.dcm")
    key = ("/a/one.dcm", 0)
    session.frame_read(key, Spacing.square(0.3, "user"))  # read while a size was typed
    assert session.spacing_for(key) == Spacing.uncalibrated()
    session.frame_read(key, Spacing(0.2, 0.25, "dicom-pixel-spacing"))
    assert session.spacing_for(key) == Spacing(0.2, 0.25, "dicom-pixel-spacing")
    session.set_pixel_size(0.1, "/a/one.dcm")
    assert session.spacing_for(key) == Spacing.square(0.1, "user")


def test_ga_by_dates_applies_to_its_exam_only():
    """One patient's dating never gives another patient's frame a centile (issue 16)."""
    session = measured_session("/a/one.png", "/b/two.png")
    session.set_pixel_size(0.15)
    session.set_exam_dating(["/a/one.png"], ExamDating(Dating.from_ga(22, 3)))
    one, two = session.record(("/a/one.png", 0)), session.record(("/b/two.png", 0))
    assert session.ga_weeks_for("/a/one.png") == pytest.approx(22 + 3 / 7)
    assert one.centile is not None and one.z_score is not None
    assert two.centile is None and two.z_score is None
    session.set_exam_dating(["/a/one.png"], None)
    assert session.record(("/a/one.png", 0)).centile is None


def test_an_lmp_dating_needs_the_exam_date():
    assert ExamDating(Dating.from_lmp(LMP), EXAM_DAY).ga_weeks() == pytest.approx(22.0)
    assert ExamDating(Dating.from_lmp(LMP), None).ga_weeks() is None


def test_exam_datings_come_back_from_the_saved_session(tmp_path):
    session = measured_session("/a/one.png", "/b/two.png")
    session.set_exam_dating(["/a/one.png"], ExamDating(Dating.from_edd(EXAM_DAY), LMP))
    session.set_exam_dating(["/b/two.png"], ExamDating(Dating.from_ga(30, 1)))
    save_session(tmp_path, session)
    data, _ = read_saved_session(tmp_path)
    restored = MeasureSession()
    restored.restore(data, with_frames=False)
    assert restored.datings == session.datings


def test_the_correction_log_holds_each_acceptance_with_its_automatic_values(tmp_path):
    session = measured_session("/a/one.png", "/a/two.png", "/a/three.png")
    session.set_pixel_size(0.15)
    session.edit(("/a/two.png", 0), Ellipse(90.0, 70.0, 50.0, 40.0, 1.0))
    for name in ("one", "two"):
        session.decide((f"/a/{name}.png", 0), True)
    session.decide(("/a/three.png", 0), False)
    entries = session.correction_entries("sonographer")
    assert [(e.file, e.origin, e.accepted_by) for e in entries] == [
        ("/a/one.png", "auto", "sonographer"),
        ("/a/two.png", "edited", "sonographer"),
    ]
    assert entries[0].hc_diff == pytest.approx(0.0) and not entries[0].corrected
    auto_hc = session.entry(("/a/two.png", 0)).auto.hc
    assert entries[1].hc_auto == pytest.approx(auto_hc) and entries[1].hc_diff < -1
    save_session(tmp_path, session)
    restored = MeasureSession()
    restored.restore(read_saved_session(tmp_path)[0])
    assert restored.correction_entries("sonographer") == entries  # the times come back too
