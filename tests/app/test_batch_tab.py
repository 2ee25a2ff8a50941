"""The Batch tab: background measuring, bad files as error rows, sorting, export, open."""

from __future__ import annotations

import csv
import shutil

import pytest

pytestmark = pytest.mark.qt


def test_batch_with_a_bad_file_shows_an_error_row_and_completes(
    qtbot, window, phantom_png, tmp_path
):
    good, _ = phantom_png
    bad = good.parent / "broken.png"
    bad.write_bytes(b"this is not a PNG")
    batch = window.batch_tab
    batch.add_inputs([good.parent])
    batch.set_pixel_size(0.14)
    with qtbot.waitSignal(batch.finished, timeout=30000) as done:
        batch.start()
    assert done.args == [2]
    by_name = {r.file.rsplit("/", 1)[-1]: r for r in batch.model.records}
    assert by_name["phantom.png"].ok and by_name["phantom.png"].unit == "mm"
    assert by_name["broken.png"].status.startswith("error")
    assert "1 error" in batch.summary_label.text()

    from PySide6.QtCore import Qt

    error_row = batch.model.records.index(by_name["broken.png"])
    background = batch.model.data(batch.model.index(error_row, 0), Qt.ItemDataRole.BackgroundRole)
    assert background is not None  # flagged rows are highlighted

    batch.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)  # HC, largest first
    top = batch.proxy.index(0, 0)
    assert batch.proxy.data(top) == "phantom.png"

    out = tmp_path / "batch.csv"
    assert batch.export_csv(out) == 2
    assert {row["status"][:5] for row in csv.DictReader(out.open())} == {"ok", "error"}

    with qtbot.waitSignal(window.measure_tab.frameMeasured, timeout=20000):
        batch.table.doubleClicked.emit(top)
    assert window.tabs.currentWidget() is window.measure_tab
    assert window.measure_tab.current_key() == (str(good), 0)


def test_batch_can_be_cancelled(qtbot, window, phantom_png):
    good, _ = phantom_png
    for i in range(40):
        shutil.copy(good, good.parent / f"copy{i:02d}.png")
    batch = window.batch_tab
    batch.add_inputs([good.parent])
    with qtbot.waitSignal(batch.finished, timeout=60000) as done:
        batch.start()
        qtbot.waitUntil(lambda: len(batch.model.records) >= 1, timeout=20000)
        batch.cancel()
    assert done.args[0] < 41
    assert batch.progress_label.text() == "Cancelled"
    assert batch.start_button.isEnabled()


def test_summary_and_highlighting_tell_review_from_failure(qtbot, app_settings):
    from hc_studio.app.batch_tab import FAILURE_BACKGROUND, REVIEW_BACKGROUND, BatchTab
    from hc_studio.core.biometry import HeadBiometry
    from hc_studio.core.ellipse import Ellipse
    from hc_studio.core.records import MeasurementRecord, Status
    from hc_studio.core.spacing import Spacing
    from PySide6.QtCore import Qt

    tab = BatchTab(app_settings)
    qtbot.addWidget(tab)
    ellipse = Ellipse(50, 40, 30, 20, 0.1)
    biometry = HeadBiometry(hc=80.0, bpd=20.0, ofd=30.0, area=470.0, unit="mm")
    base = MeasurementRecord("a.png", 0, Spacing.square(0.1), ellipse_px=ellipse, biometry=biometry)
    for record in (
        base,
        base.replace(status=Status.REVIEW, reasons=("fit IoU 0.70",)),
        MeasurementRecord("c.png", 0, Spacing.square(0.1), status=Status.NO_HEAD),
        MeasurementRecord(
            "d.png", 0, Spacing.uncalibrated(), status=Status.ERROR, reasons=("unreadable",)
        ),
    ):
        tab.model.append(record)
    assert tab.summary() == "4 frame(s): 1 ok, 1 to review, 1 without a head, 1 error(s)"

    def background(row):
        brush = tab.model.data(tab.model.index(row, 0), Qt.ItemDataRole.BackgroundRole)
        return brush.color() if brush is not None else None

    tab.proxy.sort(2, Qt.SortOrder.AscendingOrder)  # status: the worst first
    statuses = [tab.proxy.data(tab.proxy.index(row, 2)) for row in range(4)]
    assert statuses == ["error: unreadable", "no head found", "review: fit IoU 0.70", "ok"]
    assert [background(row) for row in range(4)] == [
        None,
        REVIEW_BACKGROUND,
        FAILURE_BACKGROUND,
        FAILURE_BACKGROUND,
    ]
