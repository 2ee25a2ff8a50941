"""The window over the session model: nothing lost, calibration shared, keys, screen size."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

pytestmark = pytest.mark.qt


def answer_with(monkeypatch, module, button_name: str) -> list[str]:
    """Make `module`'s QMessageBox.question answer `button_name`; returns the titles asked."""
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []

    def question(_parent, title, _text, *_args, **_kwargs):
        asked.append(title)
        return getattr(QMessageBox.StandardButton, button_name)

    monkeypatch.setattr(module.QMessageBox, "question", staticmethod(question))
    return asked


def test_the_tabs_share_one_session_and_one_engine(window):
    assert window.measure_tab.session is window.batch_tab.session is window.session
    assert window.measure_tab.service.engines is window.batch_tab.engines is window.engines


def test_enter_in_the_ga_field_does_not_accept_the_frame(qtbot, window, open_measured, phantom_png):
    from PySide6.QtCore import Qt

    path, _ = phantom_png
    key = open_measured(path)
    tab = window.measure_tab
    tab.set_pixel_size(0.6, all_files=True)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    extras = window.measure_extras
    extras.exams.refresh()
    extras.side_tabs.setCurrentIndex(1)  # the Exam tab
    panel = extras.exam_panel
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("ga"))
    field = panel.weeks_box
    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=5000)
    field.selectAll()
    qtbot.keyClicks(field, "30")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    qtbot.keyClick(field, Qt.Key.Key_A)
    assert tab.current_key() == key
    assert tab.current_record().accepted is None
    assert tab.current_record().centile is not None  # Enter applied the exam's dating
    tab.view.setFocus()  # outside a text field the same keys act
    qtbot.keyClick(tab.view, Qt.Key.Key_Return)
    assert tab.state(key).record.accepted is True


def test_accepting_an_uncalibrated_frame_asks_first(
    qtbot, window, open_measured, phantom_png, monkeypatch
):
    from hc_studio.app import measure_tab as module

    path, _ = phantom_png
    key = open_measured(path)
    tab = window.measure_tab
    asked = answer_with(monkeypatch, module, "No")
    tab.accept_current()
    assert asked and tab.state(key).record.accepted is None
    answer_with(monkeypatch, module, "Yes")
    tab.accept_current()
    assert tab.state(key).record.accepted is True
    assert tab.state(key).record.unit == "px"


def test_editing_an_accepted_frame_needs_a_new_acceptance(
    qtbot, window, open_measured, phantom_png
):
    path, _ = phantom_png
    key = open_measured(path)
    tab = window.measure_tab
    tab.set_pixel_size(0.14, all_files=True)
    tab.accept_current()
    assert tab.state(key).record.accepted is True
    tab.select_frame(key)
    editor = tab.view.editor
    x, y = editor.handle_position("major+")
    editor.drag_handle("major+", (x + 5.0, y))
    record = tab.state(key).record
    assert record.origin == "edited" and record.accepted is None
    assert tab.frame_list.status(key) == "edited"
    assert tab.panel.value_labels["decision"].text() == "not decided"


def test_calibration_points_off_the_image_are_not_taken(qtbot, window, open_measured, phantom_png):
    path, _ = phantom_png
    open_measured(path)
    tab = window.measure_tab
    messages: list[str] = []
    tab.errorMessage.connect(messages.append)
    picked: list = []
    tab.view.pointsPicked.connect(picked.append)
    tab.view.start_picking(2)
    tab.view._on_point_clicked(-40.0, 10.0)  # the ViewBox's click handler, off the frame
    tab.view._on_point_clicked(10.0, 10.0)
    assert not picked and tab.view.is_picking()
    assert any("on the image" in m for m in messages)
    tab.view.cancel_picking()
    assert tab.apply_calibration((10.0, 10.0), (5000.0, 10.0), 10.0) is None
    assert any("outside" in m for m in messages)
    assert tab.current_record().unit == "px"


def test_a_pixel_csv_is_shared_and_calibrates_only_its_folders(
    qtbot, window, open_measured, phantom_png, tmp_path
):
    path, _ = phantom_png  # frames/phantom.png
    other = tmp_path / "elsewhere" / "phantom.png"  # the same name in another folder
    other.parent.mkdir()
    shutil.copy(path, other)
    sizes = path.parent / "sizes.csv"
    sizes.write_text("filename,pixel size(mm)\nphantom.png,0.2\n")
    open_measured(path)
    tab = window.measure_tab
    tab.set_pixel_csv(sizes)
    assert tab.current_record().spacing.source == "csv"
    assert "sizes.csv (1 sizes)" in window.batch_tab.csv_label.text()

    batch = window.batch_tab
    batch.add_inputs([path, other])
    with qtbot.waitSignal(batch.finished, timeout=30000):
        batch.start()
    sources = {r.file: r.spacing.source for r in batch.model.records}
    assert sources == {str(path): "csv", str(other): "none"}


def test_quitting_with_unexported_decisions_asks(
    qtbot, app_settings, tiny_onnx_model, phantom_png, tmp_path, monkeypatch
):
    from hc_studio.app import main_window as module
    from hc_studio.app.main_window import MainWindow
    from PySide6.QtWidgets import QFileDialog

    state = tmp_path / "state"
    win = MainWindow(settings=app_settings, model_override=tiny_onnx_model, state_dir=state)
    qtbot.addWidget(win, before_close_func=lambda w: w.session.mark_exported())
    win.show()
    path, _ = phantom_png
    with qtbot.waitSignal(win.measure_tab.frameMeasured, timeout=20000):
        win.open_paths([path])
    win.session.set_pixel_size(0.14)
    win.measure_tab.accept_current()

    asked = answer_with(monkeypatch, module, "Cancel")
    assert not win.close() and win.isVisible() and asked == ["Decisions not exported"]

    out = tmp_path / "on_quit.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    answer_with(monkeypatch, module, "Save")
    assert win.close()
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and rows[0]["file"] == str(path)
    saved = json.loads((state / "session.json").read_text())
    assert saved["frames"][0]["record"]["accepted"] is True


def test_discarding_on_quit_keeps_only_the_calibration(
    qtbot, app_settings, tiny_onnx_model, phantom_png, tmp_path, monkeypatch
):
    from hc_studio.app import main_window as module
    from hc_studio.app.main_window import MainWindow

    state = tmp_path / "state"
    win = MainWindow(settings=app_settings, model_override=tiny_onnx_model, state_dir=state)
    qtbot.addWidget(win)
    path, _ = phantom_png
    with qtbot.waitSignal(win.measure_tab.frameMeasured, timeout=20000):
        win.open_paths([path])
    win.session.set_pixel_size(0.14)
    win.measure_tab.reject_current()
    answer_with(monkeypatch, module, "Discard")
    assert win.close()
    saved = json.loads((state / "session.json").read_text())
    assert saved["frames"] == [] and saved["calibration"]["all_files_mm"] == 0.14


def test_the_session_is_saved_while_working_and_offered_back(
    qtbot, app_settings, tiny_onnx_model, phantom_png, tmp_path, monkeypatch
):
    from hc_studio.app import main_window as module
    from hc_studio.app.main_window import MainWindow
    from hc_studio.core.spacing import Spacing

    state = tmp_path / "state"
    first = MainWindow(settings=app_settings, model_override=tiny_onnx_model, state_dir=state)
    qtbot.addWidget(first, before_close_func=lambda w: w.session.mark_exported())
    path, _ = phantom_png
    with qtbot.waitSignal(first.measure_tab.frameMeasured, timeout=20000):
        first.open_paths([path])
    first.session.calibration.set_for_file(str(path), Spacing(0.1, 0.1, "calibration"))
    first.measure_tab.accept_current()
    key = (str(path), 0)
    accepted = first.session.record(key)
    assert accepted.accepted is True
    # Saved as it goes, without closing (a crash now would lose nothing).
    qtbot.waitUntil(lambda: (state / "session.json").exists(), timeout=5000)
    qtbot.waitUntil(
        lambda: json.loads((state / "session.json").read_text())["frames"][0]["record"]["accepted"],
        timeout=5000,
    )

    second = MainWindow(settings=app_settings, model_override=tiny_onnx_model, state_dir=state)
    qtbot.addWidget(second, before_close_func=lambda w: w.session.mark_exported())
    # The calibration is remembered before anything is asked ...
    assert second.session.spacing_for(key) == Spacing(0.1, 0.1, "calibration")
    assert second.batch_tab.session.calibration.override(str(path)) is not None
    # ... and the frames with their decisions are offered back.
    asked = answer_with(monkeypatch, module, "Yes")
    assert second.offer_saved_session()
    assert asked == ["Restore the last session?"]
    assert second.measure_tab.frame_list.frame_keys() == [key]
    assert second.session.record(key) == accepted
    assert second.measure_tab.frame_list.status(key) == "accepted"


def test_the_window_fits_a_1024x700_screen(qtbot, window):
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import QApplication

    hint = window.minimumSizeHint()
    assert window.minimumWidth() <= 1024 and window.minimumHeight() <= 700
    assert hint.width() <= 1024 and hint.height() <= 700
    window.resize(1024, 700)
    QApplication.processEvents()
    assert window.width() <= 1024 and window.height() <= 700
    button = window.measure_tab.panel.accept_button
    assert button.isVisible()
    top_left = button.mapTo(window, button.rect().topLeft())
    inside = QRect(0, 0, window.width(), window.height())
    assert inside.contains(QRect(top_left, button.size()))


def test_a_text_field_keeps_its_keys(qtbot):
    from hc_studio.app.keys import is_text_field
    from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QLineEdit

    spin = QDoubleSpinBox()
    combo = QComboBox()
    inner = spin.findChild(QLineEdit)
    assert is_text_field(QLineEdit()) and is_text_field(spin) and is_text_field(inner)
    assert not is_text_field(QLabel()) and not is_text_field(combo) and not is_text_field(None)
    combo.setEditable(True)
    assert is_text_field(combo.lineEdit())


def test_a_calibration_given_at_start_wins_over_the_restored_one(
    qtbot, app_settings, tiny_onnx_model, phantom_png, tmp_path, monkeypatch
):
    from hc_studio.app import main_window as module
    from hc_studio.app.main_window import MainWindow
    from hc_studio.core.spacing import Spacing

    state = tmp_path / "state"
    first = MainWindow(settings=app_settings, model_override=tiny_onnx_model, state_dir=state)
    qtbot.addWidget(first, before_close_func=lambda w: w.session.mark_exported())
    path, _ = phantom_png
    with qtbot.waitSignal(first.measure_tab.frameMeasured, timeout=20000):
        first.open_paths([path])
    first.session.set_pixel_size(0.1)
    first.measure_tab.accept_current()
    first.session.mark_exported()  # quitting would ask about it
    first.close()

    second = MainWindow(
        settings=app_settings, model_override=tiny_onnx_model, state_dir=state, pixel_size_mm=0.2
    )
    qtbot.addWidget(second, before_close_func=lambda w: w.session.mark_exported())
    answer_with(monkeypatch, module, "Yes")
    assert second.offer_saved_session()
    record = second.session.record((str(path), 0))
    assert record.spacing == Spacing.square(0.2, "user")
    assert record.accepted is None  # accepted at 0.1 mm/px: its numbers changed since
