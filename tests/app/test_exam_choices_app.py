"""The Exam tab's choices in the window: moving a frame to another exam, selecting the
measurement that makes the exam value, and a BPD outer-to-inner caliper moved by hand; each kept
in the session (saved and restored) and used by the report and the correction log."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from hc_studio.core.session import MeasureSession
from hc_studio.core.session.autosave import read_saved_session, save_session

pytestmark = pytest.mark.qt


def write_grey_png(path, pixels):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.clip(pixels * 255 + 0.5, 0, 255).astype(np.uint8))
    return path


def restored(session: MeasureSession, folder) -> MeasureSession:
    save_session(folder, session)
    data, problem = read_saved_session(folder)
    assert problem is None
    again = MeasureSession()
    again.restore(data)
    return again


def pdf_text(path) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return "\n".join(page.extract_text() for page in reader.pages)


def silence_dialogs(monkeypatch, answers: dict) -> list[str]:
    from hc_studio.app import report_actions

    shown: list[str] = []
    for name in ("information", "warning"):
        monkeypatch.setattr(
            report_actions.QMessageBox, name, staticmethod(lambda _p, _t, text: shown.append(text))
        )

    def save_name(_parent, title, *_args, **_kwargs):
        return str(answers["report" if "report" in title.lower() else "log"]), ""

    monkeypatch.setattr(report_actions.QFileDialog, "getSaveFileName", staticmethod(save_name))
    return shown


def date_as_ga(panel, weeks: int) -> None:
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("ga"))
    panel.weeks_box.setValue(weeks)
    panel.apply_button.click()


def pick(panel, key) -> None:
    for row in range(panel.frames_list.count()):
        item = panel.frames_list.item(row)
        if tuple(item.data(0x0100)) == key:  # Qt.ItemDataRole.UserRole
            panel.frames_list.setCurrentItem(item)
            return
    raise AssertionError(f"{key} is not in the exam on show")


@pytest.fixture
def two_patients(window, open_measured, tmp_path, phantom):
    """Patient a (two frames) dated 22 weeks, patient b (one frame) dated 30 weeks."""
    paths = [
        write_grey_png(tmp_path / "patient-a" / "a1.png", phantom.image),
        write_grey_png(tmp_path / "patient-a" / "a2.png", np.roll(phantom.image, 6, axis=1)),
        write_grey_png(tmp_path / "patient-b" / "b.png", np.roll(phantom.image, 4, axis=0)),
    ]
    keys = [open_measured(path) for path in paths]
    window.measure_tab.set_pixel_size(0.6, all_files=True)
    extras = window.measure_extras
    book = extras.exams.refresh()
    assert [exam.label for exam in book] == ["patient-a", "patient-b"]
    for exam, weeks in zip(book, (22, 30), strict=True):
        extras.exam_panel.show_exam(exam.key)
        date_as_ga(extras.exam_panel, weeks)
    return keys


def test_a_frame_moved_in_the_exam_tab_follows_its_new_exams_dating(window, two_patients, tmp_path):
    a1, a2, b = two_patients
    session, extras = window.session, window.measure_extras
    panel = extras.exam_panel
    before, a1_before = session.record(a2), session.record(a1)
    assert before.z_score == pytest.approx(a1_before.z_score, abs=0.5)

    panel.show_exam(extras.exams.book.exam_of(a2).key)
    pick(panel, a2)
    panel.move_box.setCurrentIndex(panel.move_box.findText("patient-b"))
    panel.move_button.click()

    book = extras.exams.book
    assert book.exam_of(a2).label == "patient-b" and len(book.exam_of(a1).records) == 1
    moved = session.record(a2)
    assert moved.z_score == pytest.approx(session.record(b).z_score, abs=0.5)  # at 30 weeks
    assert moved.z_score < before.z_score - 1
    assert session.record(a1).z_score == pytest.approx(a1_before.z_score)  # still 22 weeks
    panel.show_exam(book.exam_of(a2).key)
    assert panel.frames_list.count() == 2

    pick(panel, a2)  # into a new exam: no dating there yet
    panel.move_box.setCurrentIndex(panel.move_box.findData(""))
    panel.move_button.click()
    assert extras.exams.book.exam_of(a2).label == "Exam 1"
    assert session.record(a2).centile is None

    again = restored(session, tmp_path / "saved")
    assert again.choices.moves == session.choices.moves
    assert again.record(a2).centile is None and again.record(b).centile is not None


def test_the_measurement_selected_in_the_exam_tab_is_the_exam_value_and_is_reported(
    window, two_patients, tmp_path, monkeypatch
):
    a1, a2, _b = two_patients
    session, extras = window.session, window.measure_extras
    panel = extras.exam_panel
    ellipse = session.record(a2).ellipse_px
    session.edit(a2, ellipse.__class__(ellipse.cx, ellipse.cy, ellipse.a * 0.9, ellipse.b, 0.0))
    exam = extras.exams.refresh().exam_of(a1)
    panel.show_exam(exam.key)
    hcs = {key: session.record(key).hc for key in (a1, a2)}
    assert hcs[a1] > hcs[a2] + 5

    pick(panel, a2)
    panel.use_button.click()

    assert session.choices.selected_in(exam.frame_keys())["hc"] == a2
    assert panel.values["hc"].value == pytest.approx(hcs[a2])
    rows = {panel.values_table.item(r, 0).text(): r for r in range(panel.values_table.rowCount())}
    assert panel.values_table.item(rows["HC"], 2).text() == "selected measurement (a2.png)"
    assert "[selected: HC" in panel.frames_list.currentItem().text()
    again = restored(session, tmp_path / "saved")
    assert again.choices.selected_in(exam.frame_keys())["hc"] == a2

    answers = {"report": tmp_path / "out" / "report.pdf", "log": tmp_path / "out" / "log.csv"}
    shown = silence_dialogs(monkeypatch, answers)
    (tmp_path / "out").mkdir()
    window.exports.reports.print_report.trigger()
    text = pdf_text(answers["report"])
    assert f"{hcs[a2]:.1f} mm" in text and "selected measurement (a2.png)" in text
    assert "Corrections in this session:" in text
    assert not any("failed" in line for line in shown), shown

    panel.mean_button.click()
    assert session.choices.selected_in(exam.frame_keys()) == {}
    assert panel.values["hc"].how == "mean of 2"


def test_a_caliper_moved_by_hand_is_kept_shown_logged_and_reported(
    qtbot, window, open_measured, phantom_png, tmp_path, monkeypatch
):
    tab, extras, session = window.measure_tab, window.measure_extras, window.session
    path, _ = phantom_png
    key = open_measured(path)
    tab.set_pixel_size(0.6, all_files=True)
    skull = extras.skull
    assert skull is not None and skull.outer_inner is not None
    near, far_outer = np.array(skull.near_outer_xy), np.array(skull.far_outer_xy)

    extras.caliper.move_far_end(tuple(near + 0.85 * (far_outer - near)))

    kept = session.kept_caliper(key)
    assert kept is not None and kept.auto_value == pytest.approx(skull.outer_inner)
    edited = kept.value(session.spacing_for(key))
    assert edited == pytest.approx(extras.caliper.length)
    assert abs(edited - skull.outer_inner) > 1.0
    text = tab.panel.bpd_outer_inner.text()
    assert f"{edited:.1f} mm" in text and "edited" in text

    # shown again as placed after the frame was shown anew (here: the session restored)
    again = restored(session, tmp_path / "saved")
    assert again.kept_caliper(key) == kept
    extras._skull_for = None
    tab.select_frame(key)
    extras._update_caliper(key)
    assert extras.caliper.placed_by == "user"
    assert extras.caliper.length == pytest.approx(edited)

    tab.accept_current()
    answers = {"report": tmp_path / "out" / "report.pdf", "log": tmp_path / "out" / "log.csv"}
    silence_dialogs(monkeypatch, answers)
    (tmp_path / "out").mkdir()
    window.exports.reports.print_report.trigger()
    assert f"{edited:.1f} mm\n(edited)" in pdf_text(answers["report"])
    window.exports.reports.export_log.trigger()
    with open(answers["log"], newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["bpd_outer_inner_origin"] == "edited"
    assert float(row["bpd_outer_inner_final"]) == pytest.approx(edited, abs=1e-3)
    assert float(row["bpd_outer_inner_auto"]) == pytest.approx(skull.outer_inner, abs=1e-3)


def test_gui_tab_exam_opens_the_exam_side_tab(window):
    import argparse

    from hc_studio.app import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert parser.parse_args(["--tab", "exam"]).tab == "exam"
    extras = window.measure_extras
    assert extras.side_tabs.tabText(extras.side_tabs.currentIndex()) == "Frame"
    extras.show_exam_tab()
    assert extras.side_tabs.tabText(extras.side_tabs.currentIndex()) == "Exam"
