"""The Measure tab: open, measure off the UI thread, edit, undo, decide, export."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from hc_studio.core.biometry import ramanujan_perimeter

pytestmark = pytest.mark.qt


def write_grey_png(path, pixels):
    cv2.imwrite(str(path), np.clip(pixels * 255 + 0.5, 0, 255).astype(np.uint8))
    return path


def test_opening_a_phantom_measures_it(qtbot, window, open_measured, phantom_png):
    path, phantom = phantom_png
    key = open_measured(path)
    tab = window.measure_tab
    record = tab.current_record()
    assert key == (str(path), 0)
    assert record.ok and record.origin == "auto" and record.model == "tiny-threshold"
    truth = phantom.ellipse_px
    assert record.hc == pytest.approx(ramanujan_perimeter(truth.a, truth.b), rel=0.02)
    assert record.unit == "px"  # a PNG has no pixel size of its own
    assert tab.frame_list.status(key) == "ok"
    assert tab.view.editor.ellipse() == record.ellipse_px
    assert tab.panel.uncalibrated_banner.isVisible()
    assert tab.view.mask_item.image is not None
    assert window.model_label.text() == "Model: tiny-threshold.onnx (CPU)"


def test_dragging_an_axis_end_edits_and_undo_restores(qtbot, window, open_measured, phantom_png):
    path, _ = phantom_png
    key = open_measured(path)
    tab = window.measure_tab
    auto = tab.current_record()
    editor = tab.view.editor
    x, y = editor.handle_position("major+")
    centre = np.array([auto.ellipse_px.cx, auto.ellipse_px.cy])
    outward = (np.array([x, y]) - centre) / np.hypot(*(np.array([x, y]) - centre))
    live_values = []
    editor.ellipseChanged.connect(live_values.append)
    editor.drag_handle("major+", tuple(np.array([x, y]) + 12 * outward))

    edited = tab.current_record()
    assert live_values, "values must update while dragging"
    assert edited.origin == "edited"
    assert edited.hc > auto.hc + 5
    assert edited.ofd == pytest.approx(auto.ofd + 12, abs=0.5)
    assert edited.bpd == pytest.approx(auto.bpd, abs=1e-6)
    assert tab.frame_list.status(key) == "edited"
    assert tab.panel.hc_label.text() == f"HC {edited.hc:.1f} px"
    assert tab.panel.value_labels["origin"].text() == "edited by hand"
    assert tab.panel.value_labels["quality"].text().endswith("(of the automatic ellipse)")

    tab.actions["undo"].trigger()
    assert tab.current_record() == auto
    assert tab.frame_list.status(key) == "ok"
    tab.actions["redo"].trigger()
    assert tab.current_record() == edited
    tab.actions["reset"].trigger()
    assert tab.current_record() == auto


def test_dragging_a_handle_with_the_mouse(qtbot, window, open_measured, phantom_png):
    from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    path, _ = phantom_png
    open_measured(path)
    tab = window.measure_tab
    auto = tab.current_record()
    view = tab.view
    qtbot.wait(50)

    def to_viewport(xy) -> QPoint:
        scene = view.view_box.mapViewToScene(QPointF(*xy))
        return view.graphics.mapFromScene(scene)

    def send(kind, pos: QPoint, buttons) -> None:
        qtbot.wait(15)  # pyqtgraph drops mouse moves closer than 10 ms (mouseRateLimit)
        moving = kind == QEvent.Type.MouseMove
        button = Qt.MouseButton.NoButton if moving else Qt.MouseButton.LeftButton
        viewport = view.graphics.viewport()
        global_pos = QPointF(viewport.mapToGlobal(pos))
        event = QMouseEvent(
            kind, QPointF(pos), global_pos, button, buttons, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(viewport, event)

    start = to_viewport(view.editor.handle_position("minor+"))
    centre = to_viewport((auto.ellipse_px.cx, auto.ellipse_px.cy))
    direction = np.array([start.x() - centre.x(), start.y() - centre.y()], dtype=float)
    direction /= np.hypot(*direction)
    send(QEvent.Type.MouseMove, start, Qt.MouseButton.NoButton)
    send(QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton)
    for step in range(1, 11):
        x, y = np.array([start.x(), start.y()]) + direction * 3 * step
        point = QPoint(round(x), round(y))
        send(QEvent.Type.MouseMove, point, Qt.MouseButton.LeftButton)
    send(QEvent.Type.MouseButtonRelease, point, Qt.MouseButton.NoButton)

    edited = tab.current_record()
    assert edited.origin == "edited"
    assert edited.bpd > auto.bpd + 3  # 30 screen pixels outward, at least 3 frame pixels
    assert edited.ofd == pytest.approx(auto.ofd, abs=1e-6)


def test_calibration_and_pixel_size_turn_pixels_into_mm(qtbot, window, open_measured, phantom_png):
    path, _ = phantom_png
    open_measured(path)
    tab = window.measure_tab
    in_px = tab.current_record()
    spacing = tab.apply_calibration((10.0, 20.0), (110.0, 20.0), 15.0)
    record = tab.current_record()
    assert spacing.source == "calibration" and spacing.col_mm == pytest.approx(0.15)
    assert record.unit == "mm" and record.spacing == spacing
    assert record.hc == pytest.approx(in_px.hc * 0.15, rel=1e-9)
    assert record.ga_hadlock_weeks is not None
    assert not tab.panel.uncalibrated_banner.isVisible()
    assert "two-point calibration" in tab.panel.spacing_label.text()

    tab.set_pixel_size(None)  # back to the file's own spacing: none for a PNG
    assert tab.current_record().unit == "px"
    tab.set_pixel_size(0.2, all_files=True)
    assert tab.current_record().spacing.source == "user"
    assert tab.current_record().hc == pytest.approx(in_px.hc * 0.2, rel=1e-9)


def test_accept_reject_and_export(qtbot, window, open_measured, phantom_png, tmp_path):
    path, _ = phantom_png
    key = open_measured(path)
    tab = window.measure_tab
    tab.set_pixel_size(0.14, all_files=True)
    tab.actions["accept"].trigger()
    assert tab.current_record().accepted is True
    assert tab.frame_list.status(key) == "accepted"

    out = tmp_path / "accepted.csv"
    assert tab.export_accepted_csv(out) == 1
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and rows[0]["file"].endswith("phantom.png")
    assert float(rows[0]["hc"]) == pytest.approx(tab.current_record().hc, abs=0.01)
    submission = tmp_path / "submission.csv"
    assert tab.export_hc18(submission) == 1
    assert submission.read_text().splitlines()[1].startswith("phantom.png,")

    tab.actions["reject"].trigger()
    assert tab.current_record().accepted is False
    assert tab.export_accepted_csv(tmp_path / "none.csv") == 0
    tab.actions["undo"].trigger()
    assert tab.current_record().accepted is True

    assert tab.save_view_png(tmp_path / "view.png")
    from PySide6.QtGui import QImage

    assert not QImage(str(tmp_path / "view.png")).isNull()
    tab.copy_values()
    from PySide6.QtWidgets import QApplication

    assert "HC: " in QApplication.clipboard().text()


def test_cine_frames_are_listed_and_scrubbed(qtbot, window, open_measured, tmp_path, phantom):
    video = tmp_path / "cine.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (400, 270), False)
    for shift in range(3):
        writer.write((np.roll(phantom.image, 5 * shift, axis=1) * 255).astype(np.uint8))
    writer.release()
    key = open_measured(video)
    tab = window.measure_tab
    assert key == (str(video), 0)
    assert tab.frame_list.frame_keys() == [(str(video), i) for i in range(3)]
    assert tab.scrubber.isVisibleTo(tab) and tab.scrubber.maximum() == 2
    with qtbot.waitSignal(tab.frameMeasured, timeout=20000) as blocker:
        tab.scrubber.setValue(2)
    assert blocker.args[0] == (str(video), 2)
    assert tab.frame_label.text() == "Frame 3 / 3"
    first, third = tab.state((str(video), 0)).record, tab.state((str(video), 2)).record
    assert third.ellipse_px.cx == pytest.approx(first.ellipse_px.cx + 10, abs=1.5)


def test_unreadable_file_is_reported_in_the_window(qtbot, window, open_measured, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    messages = []
    window.measure_tab.errorMessage.connect(messages.append)
    with qtbot.waitSignal(window.measure_tab.frameMeasured, timeout=20000):
        window.open_paths([bad])
    assert window.measure_tab.frame_list.status((str(bad), 0)) == "error"
    assert any("broken.png" in m for m in messages)
    assert "broken.png" in window.statusBar().currentMessage()


def test_window_level_drag_and_overlay_toggles(
    qtbot, window, open_measured, phantom_png, app_settings
):
    path, _ = phantom_png
    open_measured(path)
    tab = window.measure_tab
    tab.view._on_window_level_drag(50.0, 0.0)  # the right-drag handler
    low, high = tab.view.levels()
    assert high - low == pytest.approx(1.2)
    tab.view.reset_levels()
    assert tab.view.levels() == (0.0, 1.0)

    tab.actions["toggle_mask"].trigger()
    assert not tab.mask_check.isChecked() and not tab.view.mask_item.isVisible()
    tab.actions["toggle_ellipse"].trigger()
    assert not tab.view.editor.outline.isVisible()
    assert app_settings.overlay_visible("mask") is False
    assert app_settings.overlay_visible("ellipse") is False


def test_keyboard_shortcuts_and_dropped_files(qtbot, window, open_measured, phantom_png):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    path, phantom = phantom_png
    second = write_grey_png(path.parent / "second.png", np.roll(phantom.image, 8, axis=1))
    tab = window.measure_tab
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path.parent))])
    drop = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(tab.frameMeasured, timeout=20000):
        window.dropEvent(drop)
    assert tab.frame_list.frame_keys() == [(str(path), 0), (str(second), 0)]

    tab.set_pixel_size(0.14, all_files=True)  # accepting in pixels would ask first
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    tab.view.setFocus()
    qtbot.keyClick(tab.view, Qt.Key.Key_M)
    assert not tab.mask_check.isChecked()
    with qtbot.waitSignal(tab.frameMeasured, timeout=20000):
        qtbot.keyClick(tab.view, Qt.Key.Key_A)  # accept and go to the next frame
    assert tab.state((str(path), 0)).record.accepted is True
    assert tab.current_key() == (str(second), 0)
    qtbot.keyClick(tab.view, Qt.Key.Key_PageUp)
    assert tab.current_key() == (str(path), 0)
    qtbot.keyClick(tab.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert tab.state((str(path), 0)).record.accepted is None
