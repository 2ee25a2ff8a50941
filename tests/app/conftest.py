"""Fixtures for the window's tests: isolated settings, phantom frames on disk, the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture(autouse=True, scope="session")
def _isolated_qsettings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Settings written by code that builds its own QSettings go to a temporary folder."""
    from PySide6.QtCore import QSettings

    folder = tmp_path_factory.mktemp("qsettings")
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.NativeFormat, scope, str(folder))
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder))


@pytest.fixture(autouse=True)
def _isolated_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The saved session of a window built without `state_dir` goes to a temporary folder."""
    folder = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(folder))
    return folder


@pytest.fixture(autouse=True)
def _no_unexpected_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A modal question nobody answers would hang the test run: fail instead. Tests that expect
    one replace `QMessageBox.question` themselves."""
    from PySide6.QtWidgets import QMessageBox

    def unexpected(_parent, title, text, *_args, **_kwargs):
        raise AssertionError(f"unexpected question {title!r}: {text}")

    monkeypatch.setattr(QMessageBox, "question", staticmethod(unexpected))


@pytest.fixture
def app_settings(tmp_path: Path):
    """AppSettings in an INI file of this test, with a runs folder of its own."""
    from hc_studio.app.settings import AppSettings
    from PySide6.QtCore import QSettings

    settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    settings.set_runs_folder(tmp_path / "runs")
    return settings


def write_grey_png(path: Path, pixels: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.clip(pixels * 255 + 0.5, 0, 255).astype(np.uint8))
    return path


@pytest.fixture
def phantom_png(tmp_path: Path, phantom):
    """(path of the phantom written as an 8-bit PNG, the phantom)."""
    return write_grey_png(tmp_path / "frames" / "phantom.png", phantom.image), phantom


@pytest.fixture
def window(qtbot, app_settings, tiny_onnx_model, tmp_path):
    """The main window measuring with the tiny ONNX model."""
    from hc_studio.app.main_window import MainWindow

    win = MainWindow(
        settings=app_settings, model_override=tiny_onnx_model, state_dir=tmp_path / "state"
    )

    def before_close(w) -> None:
        # Closing would ask about a training child and about decisions not exported.
        w.train_tab.shutdown()
        w.session.mark_exported()

    qtbot.addWidget(win, before_close_func=before_close)
    win.show()
    yield win
    win.train_tab.shutdown()
    win.measure_tab.shutdown()
    win.batch_tab.shutdown()


@pytest.fixture
def open_measured(qtbot, window):
    """`open_measured(path)`: open it in the Measure tab, wait for the first frame's result,
    return that frame's key."""

    def open_and_wait(path: Path, timeout_ms: int = 20000):
        with qtbot.waitSignal(window.measure_tab.frameMeasured, timeout=timeout_ms) as blocker:
            window.open_paths([path])
        return blocker.args[0]

    return open_and_wait
