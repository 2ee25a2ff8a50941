"""`hc-studio gui [FILES...] [--pixel-size MM] [--model ONNX] [--screenshot OUT.png]`.

Qt is imported only inside `run`, so `hc-studio --help` and the other commands never load it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "open the HC Studio window (measure, batch, train)"
SCREENSHOT_TIMEOUT_S = 120.0
EXIT_OK, EXIT_FAILED = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="*",
        help="Frames, DICOM files, videos or folders to open in the Measure tab (default: none; "
        "the window opens empty and offers back the last session).",
    )
    parser.add_argument(
        "--pixel-size",
        type=float,
        metavar="MM",
        help="Pixel size in mm for every file, over DICOM and CSV values; it is remembered with "
        "the session (default: each file's own DICOM spacing, else the remembered calibration, "
        "else uncalibrated: values in pixels).",
    )
    parser.add_argument(
        "--model",
        metavar="ONNX",
        help="Measure with this ONNX model for this run only (default: the model chosen in the "
        "Model menu, else the shipped model).",
    )
    parser.add_argument(
        "--screenshot",
        metavar="OUT.png",
        help="Open the first file, wait for its measurement, save a PNG of the whole window and "
        "exit; the saved session is neither offered nor changed (default: none, the window stays "
        "open).",
    )
    parser.add_argument(
        "--tab",
        choices=("measure", "exam", "batch", "train"),
        default=None,
        help="The tab to show first; exam: the Measure tab with its Exam side tab (default: the "
        "tab shown when the window was last closed).",
    )
    parser.add_argument(
        "--timeout", type=float, default=SCREENSHOT_TIMEOUT_S, metavar="S",
        help="With --screenshot: give up after S seconds without a measurement "
        f"(default: {SCREENSHOT_TIMEOUT_S:g}).",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Open the window; returns the exit code when it closes (or after the screenshot)."""
    if args.pixel_size is not None and not args.pixel_size > 0:
        print(
            f"hc-studio gui: --pixel-size must be positive, got {args.pixel_size}", file=sys.stderr
        )
        return 2
    if args.model and not Path(args.model).is_file():
        print(f"hc-studio gui: {args.model}: model file not found", file=sys.stderr)
        return 2
    if args.screenshot and not args.files:
        print("hc-studio gui: --screenshot needs a file to open", file=sys.stderr)
        return 2

    from PySide6.QtWidgets import QApplication

    from .icon import DESKTOP_FILE_NAME, app_icon
    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("HC Studio")
    app.setOrganizationName("HC Studio")
    app.setWindowIcon(app_icon())
    app.setDesktopFileName(DESKTOP_FILE_NAME)
    window = MainWindow(model_override=args.model, pixel_size_mm=args.pixel_size)
    if not args.screenshot:  # a modal dialog would hold the screenshot run
        install_error_dialog(window)
    if args.tab:
        tabs = {"measure": window.measure_tab, "batch": window.batch_tab, "train": window.train_tab}
        window.tabs.setCurrentWidget(tabs.get(args.tab, window.measure_tab))
        if args.tab == "exam":
            window.measure_extras.show_exam_tab()
    window.show()
    if not args.screenshot:  # a screenshot run leaves the saved session alone
        window.offer_saved_session()
    if args.files:
        window.open_paths(args.files)
    if args.screenshot:
        return take_screenshot(window, Path(args.screenshot), args.timeout)
    return app.exec()


def install_error_dialog(window) -> None:
    """Unexpected errors (bugs) are shown in the window too, not only in a terminal."""
    import traceback

    from PySide6.QtWidgets import QMessageBox

    previous_hook = sys.excepthook

    def show_error(kind, error, trace) -> None:
        traceback.print_exception(kind, error, trace)
        text = str(error).strip().splitlines()[0] if str(error).strip() else kind.__name__
        try:
            window.show_error(f"Unexpected error: {text}")
            QMessageBox.critical(window, "Unexpected error", f"{kind.__name__}: {text}")
        except RuntimeError:  # the window is already gone
            previous_hook(kind, error, trace)

    sys.excepthook = show_error


def take_screenshot(window, out: Path, timeout_s: float) -> int:
    """Wait for the first frame's measurement, save the whole window to `out`, close."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    outcome: dict[str, object] = {}

    def on_measured(key) -> None:
        outcome["key"] = key
        # Let the view repaint with the ellipse before grabbing it.
        QTimer.singleShot(300, loop.quit)

    def on_timeout() -> None:
        outcome["timeout"] = True
        loop.quit()

    window.measure_tab.frameMeasured.connect(on_measured)
    QTimer.singleShot(int(timeout_s * 1000), on_timeout)
    loop.exec()
    code = EXIT_OK
    if outcome.get("timeout"):
        print(
            f"hc-studio gui: no measurement within {timeout_s:g} s; the screenshot shows "
            "the window as it was",
            file=sys.stderr,
        )
        code = EXIT_FAILED
    else:
        state = window.measure_tab.state(outcome["key"])
        if state.record is None:
            print(f"hc-studio gui: {state.error or 'not measured'}", file=sys.stderr)
            code = EXIT_FAILED
    from .image_view import write_png

    try:
        write_png(window.grab().toImage(), out)
    except OSError as error:
        print(f"hc-studio gui: {out}: {error}", file=sys.stderr)
        code = EXIT_FAILED
    window.close()
    return code
