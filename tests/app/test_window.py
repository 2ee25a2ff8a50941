"""The window as a whole: the gui command's screenshot, remembered settings, About box."""

from __future__ import annotations

import argparse

import pytest

pytestmark = pytest.mark.qt


def test_screenshot_option_writes_a_png_of_the_measured_window(
    qtbot, phantom_png, tiny_onnx_model, tmp_path
):
    from hc_studio.app import cli
    from PySide6.QtGui import QImage

    path, _ = phantom_png
    out = tmp_path / "shots" / "window.png"
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            str(path),
            "--pixel-size",
            "0.14",
            "--model",
            str(tiny_onnx_model),
            "--screenshot",
            str(out),
            "--timeout",
            "60",
        ]
    )
    assert cli.run(args) == 0
    image = QImage(str(out))
    assert image.width() >= 800 and image.height() >= 500


def test_screenshot_without_a_measurement_fails_clearly(qtbot, tmp_path, tiny_onnx_model, capsys):
    from hc_studio.app import cli

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"nothing")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [str(bad), "--model", str(tiny_onnx_model), "--screenshot", str(tmp_path / "s.png")]
    )
    assert cli.run(args) == 1
    assert "broken.png" in capsys.readouterr().err


def test_settings_are_remembered(qtbot, app_settings, tiny_onnx_model, phantom_png):
    from hc_studio.app.main_window import MainWindow

    first = MainWindow(settings=app_settings)
    qtbot.addWidget(first)
    first.apply_model(tiny_onnx_model, remember=True)
    first.measure_tab.axes_check.setChecked(False)
    first.measure_tab.mask_opacity.setValue(70)
    first.resize(1300, 820)
    path, _ = phantom_png
    first.open_paths([path])  # shows the Measure tab
    first.tabs.setCurrentIndex(1)
    first.close()

    second = MainWindow(settings=app_settings)
    qtbot.addWidget(second)
    assert second.current_model_path() == tiny_onnx_model
    assert not second.measure_tab.axes_check.isChecked()
    assert second.measure_tab.mask_opacity.value() == 70
    assert app_settings.window_geometry() is not None  # restored (the screen may clamp it)
    assert second.tabs.currentIndex() == 1
    assert app_settings.recent_files()[0] == str(path)
    second.close()


def test_about_names_the_data_and_its_licence(qtbot, window):
    from hc_studio.app.about import show_about
    from PySide6.QtWidgets import QTextBrowser

    dialog = show_about(window, window.current_model_path())
    qtbot.addWidget(dialog)
    text = dialog.findChild(QTextBrowser).toPlainText()
    assert "van den Heuvel" in text and "CC BY 4.0" in text and "1327317" in text
    dialog.close()


def test_inference_device_choice_is_remembered_and_applied(qtbot, window, app_settings):
    cpu = next(a for a in window.device_actions.actions() if a.data() == "cpu")
    cpu.trigger()
    assert app_settings.device() == "cpu"
    assert window.measure_tab.service.engines._device == "cpu"
