"""The README's cine and exam screenshots, made from the shipped sample frames.

    xvfb-run -a -s "-screen 0 1280x800x24" python packaging/readme_screenshots.py docs/screenshots

A cine DICOM is built from `resources/samples/291_HC.png` (`core.phantom_dicom.probe_sweep`: the
frame shifted, slightly rotated and, at the ends of the sweep, blurred and darkened, 12 frames at
15 fps, with the sample's pixel size and a study date); the window measures the whole clip, plays
it and is grabbed while playing (cine.png); then an LMP is entered for the clip's exam and the
Exam side tab is grabbed at 1024x700, the smallest screen the window must fit, scrolled to the
exam's values, GA, centile and discrepancy (exam.png).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "samples" / "291_HC.png"
SAMPLE_PIXEL_MM = 0.103654762  # resources/samples/pixel_size.csv
STUDY_DATE = dt.date(2026, 3, 2)
LMP = dt.date(2025, 10, 11)  # 20w2d before the study date, as the sample's HC says
N_FRAMES, FPS = 12, 15.0


def wait_until(app, condition, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    from hc_studio.app.image_view import write_png
    from hc_studio.app.main_window import MainWindow
    from hc_studio.app.settings import AppSettings
    from hc_studio.core.phantom_dicom import probe_sweep, write_cine_dicom
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="hc-screens-"))
    clip = write_cine_dicom(
        work / "sweep.dcm",
        probe_sweep(cv2.imread(str(SAMPLE), cv2.IMREAD_GRAYSCALE), N_FRAMES),
        FPS,
        pixel_mm=SAMPLE_PIXEL_MM,
        study_date=STUDY_DATE,
    )
    settings = AppSettings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings=settings, state_dir=work / "state")
    window.resize(1280, 800)
    window.show()
    window.open_paths([clip])
    tab, extras = window.measure_tab, window.measure_extras
    if not wait_until(app, lambda: tab.current_record() is not None, 120):
        print("the first frame was not measured", file=sys.stderr)
        return 1
    extras.measure_clip()
    if not wait_until(app, lambda: extras.cine.best_frame is not None, 300):
        print("the clip was not measured", file=sys.stderr)
        return 1
    extras.cine.go_to_best_frame()
    extras.cine.play()
    start = extras.cine.index
    wait_until(app, lambda: extras.cine.index != start, 5)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_png(window.grab().toImage(), args.out_dir / "cine.png")
    extras.cine.pause()
    extras.cine.go_to_best_frame()

    window.resize(1024, 700)
    extras.side_tabs.setCurrentIndex(1)
    extras.exams.refresh()
    panel = extras.exam_panel
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("lmp"))
    panel.date_edit.setDate(LMP)
    panel.apply_button.click()
    wait_until(app, lambda: False, 0.5)
    # the lower half of the panel: the dating, the exam values, GA, the centile, the discrepancy
    extras.exam_scroll.ensureWidgetVisible(panel.discrepancy_label)
    wait_until(app, lambda: False, 0.3)
    write_png(window.grab().toImage(), args.out_dir / "exam.png")
    window.session.mark_exported()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
