"""What the person decides about exams, kept in the session: frames moved between exams (with
their GA by dates), the selected measurement, a BPD outer-to-inner caliper placed by hand."""

from __future__ import annotations

import pytest
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.exam import Dating, exam_values, group_into_exams
from hc_studio.core.exam.correction_log import read_correction_log, write_correction_log
from hc_studio.core.exam.grouping import regroup
from hc_studio.core.exam.kept_caliper import KeptCaliper
from hc_studio.core.exam.values import choose_frames, chosen_with_selection, usable_selection
from hc_studio.core.measure import record_from_ellipse
from hc_studio.core.session import ExamDating, ListedFile, MeasureSession
from hc_studio.core.session.autosave import read_saved_session, save_session
from hc_studio.core.spacing import Spacing

ELLIPSE = Ellipse(100.0, 80.0, 60.0, 45.0, 0.3)
A1, A2, B1 = ("/a/one.png", 0), ("/a/two.png", 0), ("/b/three.png", 0)


def session_of_two_patients() -> MeasureSession:
    """Folder a (two frames) dated 22 weeks, folder b (one frame) dated 30 weeks; 0.6 mm per
    pixel: HC about 199 mm."""
    session = MeasureSession()
    session.add_files([ListedFile(key[0], 1) for key in (A1, A2, B1)])
    for key in (A1, A2, B1):
        record = record_from_ellipse(key[0], 0, Spacing.uncalibrated(), ELLIPSE, "m", "auto")
        session.measured(key, record, None)
    session.set_pixel_size(0.6)
    session.set_frames_dating([A1, A2], ExamDating(Dating.from_ga(22)))
    session.set_frames_dating([B1], ExamDating(Dating.from_ga(30)))
    return session


def exams_of(session: MeasureSession):
    records = [session.record(key) for key in session.frame_keys()]
    return regroup(group_into_exams(records, lambda _path: None), session.choices.moves)


def restored(session: MeasureSession, tmp_path) -> MeasureSession:
    save_session(tmp_path, session)
    data, problem = read_saved_session(tmp_path)
    assert problem is None
    again = MeasureSession()
    again.restore(data)
    return again


def test_a_moved_frame_takes_its_new_exams_dating_and_keeps_it_after_a_restore(tmp_path):
    session = session_of_two_patients()
    before = session.record(A2)
    assert before.z_score == pytest.approx(session.record(A1).z_score)
    exam_b = exams_of(session).exam_of(B1)

    session.move_frame(A2, exam_b.key, session.dating_for_frame(B1))

    moved = session.record(A2)
    assert moved.z_score == pytest.approx(session.record(B1).z_score)  # read against 30 weeks
    assert moved.z_score < before.z_score - 1 and moved.centile != before.centile
    assert session.record(A1).z_score == pytest.approx(before.z_score)  # its file stays 22 weeks
    book = exams_of(session)
    assert book.exam_of(A2).key == exam_b.key and book.exam_of(A1).frame_keys() == [A1]

    # the exam's dating changed: the moved frame follows, its old file's frames do not
    session.set_frames_dating(book.exam_of(B1).frame_keys(), ExamDating(Dating.from_ga(22)))
    assert session.record(A2).z_score == pytest.approx(before.z_score)
    session.set_frames_dating(book.exam_of(B1).frame_keys(), ExamDating(Dating.from_ga(30)))

    again = restored(session, tmp_path)
    assert exams_of(again).exam_of(A2).key == exam_b.key
    assert again.record(A2).z_score == pytest.approx(moved.z_score)
    assert again.dating_for_frame(A2) == ExamDating(Dating.from_ga(30))


def test_a_frame_moved_into_a_new_exam_has_no_dating_until_one_is_entered(tmp_path):
    session = session_of_two_patients()
    key = session.choices.new_exam_key(exam.key for exam in exams_of(session))
    assert key == "exam-1"
    session.move_frame(A1, key, None)
    assert session.record(A1).centile is None and session.record(A2).centile is not None
    book = exams_of(session)
    assert [(e.key, e.label, e.frame_keys()) for e in book if e.key == key] == [
        ("exam-1", "Exam 1", [A1])
    ]
    assert session.choices.new_exam_key() == "exam-2"
    assert exams_of(restored(session, tmp_path)).exam_of(A1).label == "Exam 1"


def test_the_selected_measurement_is_the_exam_value_and_is_kept(tmp_path):
    session = session_of_two_patients()
    session.edit(A2, Ellipse(100.0, 80.0, 63.0, 47.0, 0.3))  # a slightly larger head
    for key in (A1, A2):
        session.decide(key, True)
    exam = exams_of(session).exam_of(A1)
    session.select_measurement("hc", A2, exam.frame_keys())

    selected = session.choices.selected_in(exam.frame_keys())
    values = exam_values(exam.records, selected=selected)
    assert values["hc"].value == pytest.approx(session.record(A2).hc)
    assert values["hc"].how == "selected measurement" and values["bpd"].how == "mean of 2"
    assert session.choices.selected_in([B1]) == {}  # another exam's selection is its own

    again = restored(session, tmp_path)
    assert again.choices.selected_in(exam.frame_keys()) == {"hc": A2}
    # a selected frame no longer among the measurements (moved away) does not count
    assert usable_selection(exam_values([session.record(A1)]), selected) == {}
    session.select_measurement("hc", None, exam.frame_keys())
    assert session.choices.selected_in(exam.frame_keys()) == {}


def test_a_caliper_placed_by_hand_is_kept_logged_and_forgotten_with_its_ellipse(tmp_path):
    session = session_of_two_patients()
    record = session.record(A1)
    kept = KeptCaliper((100.0, 35.0), (100.0, 112.0), (100.0, 125.0), record.ellipse_px, 48.0)
    session.keep_caliper(A1, kept)
    session.decide(A1, True)

    assert session.kept_caliper(A1) == kept and kept.value(record.spacing) == pytest.approx(46.2)
    (entry,) = session.correction_entries("ana")
    assert entry.bpd_outer_inner_auto == 48.0
    assert entry.bpd_outer_inner_final == pytest.approx(46.2)
    assert entry.bpd_outer_inner_origin == "edited" and entry.corrected
    write_correction_log([entry], tmp_path / "log.csv")
    (read,) = read_correction_log(tmp_path / "log.csv")
    assert read.bpd_outer_inner_auto == 48.0 and read.bpd_outer_inner_origin == "edited"
    assert read.bpd_outer_inner_final == pytest.approx(46.2, abs=1e-3)

    again = restored(session, tmp_path)
    assert again.kept_caliper(A1) == kept and again.kept_calipers() == {A1: kept}
    session.edit(A1, Ellipse(100.0, 80.0, 62.0, 47.0, 0.3))  # a new axis: the placement is void
    assert session.kept_caliper(A1) is None


def test_a_kept_selection_outside_the_default_choice_still_makes_the_exam_value():
    spacing = Spacing.square(0.6, "user")
    records = [
        record_from_ellipse(f"/a/f{i}.png", 0, spacing, Ellipse(100, 80, 60 + i, 45, 0.3), "m")
        for i in range(4)
    ]
    last = ("/a/f3.png", 0)
    assert last not in [(r.file, r.frame_index) for r in choose_frames(records, 3)]
    chosen = chosen_with_selection(records, 3, None, {"hc": last})
    assert chosen == [last, ("/a/f0.png", 0), ("/a/f1.png", 0)]
    values = exam_values(records, 3, chosen, {"hc": last})
    assert values["hc"].value == pytest.approx(records[3].hc)
    assert chosen_with_selection(records, 3, [("/a/f0.png", 0)], {"hc": last}) == [
        ("/a/f0.png", 0)
    ]  # frames the person ticked stay as ticked
    assert chosen_with_selection(records, 3, None, {"hc": ("/a/f1.png", 0)}) is None
