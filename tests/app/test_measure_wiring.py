"""The Measure tab's wiring: cine bar, exams with their own GA by dates, File exports, caliper."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np
import pytest
from hc_studio.core.phantom_dicom import write_cine_dicom


def write_grey_png(path, pixels):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.clip(pixels * 255 + 0.5, 0, 255).astype(np.uint8))
    return path


pytestmark = pytest.mark.qt


def _cine(tmp_path, phantom, n_frames=4, fps=12.5):
    frames = np.stack(
        [np.roll(phantom.image, 4 * i, axis=1) * 255 for i in range(n_frames)]
    ).astype(np.uint8)
    return write_cine_dicom(tmp_path / "clip.dcm", frames, fps, pixel_mm=0.6)


def test_the_cine_bar_shows_for_a_clip_and_not_for_a_still(
    qtbot, window, open_measured, tmp_path, phantom, phantom_png
):
    tab, extras = window.measure_tab, window.measure_extras
    still, _ = phantom_png
    open_measured(still)
    assert not extras.cine_row.isVisibleTo(tab) and extras.cine.player is None

    clip = _cine(tmp_path, phantom)
    key = open_measured(clip)
    assert key == (str(clip), 0)
    assert extras.cine_row.isVisibleTo(tab)
    assert extras.cine.player.n_frames == 4 and extras.cine.player.fps == pytest.approx(12.5)
    assert "12.5 fps" in extras.cine.frame_label.text()
    assert not extras.cine.best_button.isEnabled()  # the clip is not measured yet

    with qtbot.waitSignal(tab.frameMeasured, timeout=20000) as blocker:
        extras.cine.forward_button.click()  # a frame without a record is measured on demand
    assert blocker.args[0] == (str(clip), 1) == tab.current_key()

    extras.measure_clip()  # the rest of the clip, in the worker, one frame after another
    assert extras.measure_clip_button.text().startswith("Measuring ")
    qtbot.waitUntil(lambda: len(extras.clip_records(str(clip))) == 4, timeout=20000)
    qtbot.waitUntil(extras.cine.best_button.isEnabled, timeout=5000)
    qtbot.waitUntil(lambda: extras.measure_clip_button.text() == "Measure clip", timeout=5000)
    best = extras.cine.best_frame
    assert best is not None
    # The ranking weighed each frame's image quality, kept from the worker's results.
    records = extras.clip_records(str(clip))
    quality = extras.clip_quality(records)
    with_head = {(r.file, r.frame_index) for r in records if r.ellipse_px is not None}
    assert with_head and quality is not None and set(quality) == with_head
    assert with_head <= set(extras._quality)
    tab.select_frame((str(clip), 3 if best != 3 else 0))
    extras.cine.best_button.click()
    assert tab.current_key() == (str(clip), best)

    tab.select_frame((str(still), 0))
    assert not extras.cine_row.isVisibleTo(tab)


def test_the_cine_bar_plays_the_clip(qtbot, window, open_measured, tmp_path, phantom):
    from PySide6.QtCore import Qt

    tab, extras = window.measure_tab, window.measure_extras
    clip = _cine(tmp_path, phantom, fps=20)
    open_measured(clip)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    tab.view.setFocus()
    qtbot.keyClick(tab.view, Qt.Key.Key_Space)  # Space plays anywhere in the tab
    assert extras.cine.playing
    qtbot.waitUntil(lambda: tab.current_key()[1] >= 2, timeout=5000)
    tab.view.setFocus()
    qtbot.keyClick(tab.view, Qt.Key.Key_Space)
    assert not extras.cine.playing
    extras.cine.set_best_frame(1)
    tab.select_frame((str(clip), 3))
    tab.view.setFocus()
    qtbot.keyClick(tab.view, Qt.Key.Key_B)
    assert tab.current_key() == (str(clip), 1)


def test_ga_by_dates_applies_to_its_own_exam_only(qtbot, window, open_measured, tmp_path, phantom):
    """Issue 16: one patient's dating gave another patient's frame "centile 0th, z -14.73"."""
    tab, extras = window.measure_tab, window.measure_extras
    first = write_grey_png(tmp_path / "patient-a" / "a.png", phantom.image)
    second = write_grey_png(tmp_path / "patient-b" / "b.png", phantom.image)
    open_measured(first)
    open_measured(second)
    tab.set_pixel_size(0.6, all_files=True)
    book = extras.exams.refresh()
    assert [exam.label for exam in book] == ["patient-a", "patient-b"]

    panel = extras.exam_panel
    panel.show_exam(book.exams[0].key)
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("lmp"))
    panel.date_edit.setDate(dt.date(2026, 1, 5))
    panel.exam_date_edit.setDate(dt.date(2026, 6, 8))  # 22 weeks after the LMP
    panel.apply_button.click()

    a, b = tab.state((str(first), 0)).record, tab.state((str(second), 0)).record
    assert a.centile is not None and b.centile is None and b.z_score is None
    assert window.session.ga_weeks_for(str(first)) == pytest.approx(22.0)
    tab.select_frame((str(first), 0))
    assert tab.panel.ga_by_dates.text().startswith("22w 0d")
    tab.select_frame((str(second), 0))
    assert tab.panel.ga_by_dates.text().startswith("not entered")
    panel.show_exam(book.exams[1].key)
    assert panel.kind_box.currentData() == ""  # the other exam has no dating


def test_a_frame_opened_later_takes_its_exams_dating(
    qtbot, window, open_measured, tmp_path, phantom
):
    tab, extras = window.measure_tab, window.measure_extras
    first = write_grey_png(tmp_path / "patient" / "a.png", phantom.image)
    open_measured(first)
    tab.set_pixel_size(0.6, all_files=True)
    book = extras.exams.refresh()
    panel = extras.exam_panel
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("ga"))
    panel.weeks_box.setValue(22)
    panel.apply_button.click()
    assert book.exams[0].dating is not None
    second = write_grey_png(tmp_path / "patient" / "b.png", np.roll(phantom.image, 5, axis=0))
    open_measured(second)
    extras.exams.refresh()
    assert window.session.ga_weeks_for(str(second)) == pytest.approx(22.0)
    assert tab.state((str(second), 0)).record.centile is not None


def test_the_caliper_shows_bpd_outer_to_inner(qtbot, window, open_measured, phantom_png):
    tab, extras = window.measure_tab, window.measure_extras
    path, _ = phantom_png
    open_measured(path)
    tab.set_pixel_size(0.6, all_files=True)
    assert extras.caliper.line.isVisible()
    skull = extras.skull
    assert skull is not None and skull.outer_inner is not None
    assert skull.outer_inner < tab.current_record().bpd  # inner: less one skull thickness
    text = tab.panel.bpd_outer_inner.text()
    assert f"{skull.outer_inner:.1f} mm" in text and "Hadlock" in text
    assert "outer-to-inner" in tab.panel.bpd_outer_inner.toolTip()


def _silence_dialogs(monkeypatch, tmp_path):
    from hc_studio.app import file_exports, report_actions

    shown: list[str] = []
    for module in (report_actions, file_exports):
        monkeypatch.setattr(
            module.QMessageBox, "information", staticmethod(lambda _p, _t, text: shown.append(text))
        )
        monkeypatch.setattr(
            module.QMessageBox, "warning", staticmethod(lambda _p, _t, text: shown.append(text))
        )
    answers = {"report": tmp_path / "out" / "report.pdf", "log": tmp_path / "out" / "log.csv"}

    def save_name(_parent, title, *_args, **_kwargs):
        if "labelled" in title:
            return str(tmp_path / "out" / "labels"), ""
        return str(answers["report" if "report" in title.lower() else "log"]), ""

    for module in (report_actions, file_exports):
        monkeypatch.setattr(module.QFileDialog, "getSaveFileName", staticmethod(save_name))
    monkeypatch.setattr(
        report_actions.QFileDialog,
        "getExistingDirectory",
        staticmethod(lambda *_a, **_k: str(tmp_path / "out" / "sr")),
    )
    return shown


def test_the_file_menu_writes_report_sr_log_and_labels(
    qtbot, window, open_measured, phantom_png, tmp_path, monkeypatch
):
    shown = _silence_dialogs(monkeypatch, tmp_path)
    window.settings.set_operator("Dr Test")
    tab = window.measure_tab
    path, _ = phantom_png
    open_measured(path)
    tab.set_pixel_size(0.6, all_files=True)
    tab.accept_current()
    texts = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    for wanted in ("Print report", "DICOM &SR", "correction log", "labelled folder"):
        assert any(wanted in text for text in texts), wanted
    exports = window.exports
    (tmp_path / "out").mkdir()

    exports.reports.print_report.trigger()
    assert (tmp_path / "out" / "report.pdf").read_bytes().startswith(b"%PDF")
    exports.reports.export_sr.trigger()
    assert list((tmp_path / "out" / "sr").glob("*.dcm"))
    exports.reports.export_log.trigger()
    with open(tmp_path / "out" / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["accepted_by"] for row in rows] == ["Dr Test"]
    assert float(rows[0]["hc_final"]) == pytest.approx(tab.current_record().hc, abs=1e-3)
    exports.export_labelled.trigger()
    labels = tmp_path / "out" / "labels"
    assert (labels / "images" / "phantom.png").is_file()
    assert (labels / "masks" / "phantom.png").is_file()
    assert (labels / "pixel_size.csv").read_text().splitlines()[1] == "phantom.png,0.6"
    assert not any("Not written" in text or "failed" in text for text in shown), shown


def test_the_operator_defaults_to_the_os_user(app_settings, monkeypatch):
    import getpass

    monkeypatch.setattr(getpass, "getuser", lambda: "sonographer1")
    assert app_settings.operator() == "sonographer1"
    app_settings.set_operator("  Dr Who ")
    assert app_settings.operator() == "Dr Who"


def test_a_dating_being_typed_is_not_overwritten_by_new_results(
    qtbot, window, open_measured, tmp_path, phantom
):
    tab, extras = window.measure_tab, window.measure_extras
    path = write_grey_png(tmp_path / "patient" / "a.png", phantom.image)
    key = open_measured(path)
    extras.exams.refresh()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    extras.side_tabs.setCurrentIndex(1)
    panel = extras.exam_panel
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("ga"))
    panel.weeks_box.setValue(25)
    panel.weeks_box.setFocus()
    qtbot.waitUntil(panel.weeks_box.hasFocus, timeout=5000)
    tab.set_pixel_size(0.6, all_files=True)  # every record changes: the exams regroup
    qtbot.wait(400)
    assert panel.kind_box.currentData() == "ga" and panel.weeks_box.value() == 25
    assert window.session.dating_for(str(path)) is None  # not applied yet
    tab.view.setFocus()  # leaving the panel: the exams are shown again, without the draft
    qtbot.waitUntil(lambda: panel.kind_box.currentData() == "", timeout=5000)
    assert tab.state(key).record.unit == "mm"
