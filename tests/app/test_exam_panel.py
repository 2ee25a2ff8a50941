"""The exam panel: GA by dates per exam, exam values from ticked frames, centile wording."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hc_studio.app.exam_panel import ExamPanel
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.exam import group_into_exams
from hc_studio.core.measure import record_from_ellipse
from hc_studio.core.spacing import Spacing
from PySide6.QtCore import QDate, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

SPACING = Spacing.square(0.14, "csv")


def record(path: Path, semi_major_px: float, **changes):
    ellipse = Ellipse.normalised(300, 250, semi_major_px, semi_major_px * 0.8, 0.2)
    made = record_from_ellipse(str(path), 0, SPACING, ellipse, "tiny", origin="auto")
    return made.replace(**changes) if changes else made


@pytest.fixture
def book(tmp_path: Path):
    """Patient A (three frames, HC about 175-183 mm, ~20 weeks) and patient B (HC ~302 mm)."""
    a = [record(tmp_path / "patient-a" / f"f{i}.png", 220 + 5 * i) for i in range(3)]
    b = [record(tmp_path / "patient-b" / "g0.png", 380)]
    return group_into_exams(a + b, read_study=lambda _: None)


@pytest.fixture
def panel(qtbot, book):
    widget = ExamPanel()
    qtbot.addWidget(widget)
    widget.set_exams(book)
    return widget


def date_as_ga(panel: ExamPanel, weeks: int, days: int = 0) -> None:
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("ga"))
    panel.weeks_box.setValue(weeks)
    panel.days_box.setValue(days)


def test_dating_one_exam_does_not_date_the_other(panel, book, qtbot) -> None:
    exam_a, exam_b = book.exams
    panel.show_exam(exam_a.key)
    date_as_ga(panel, 20)
    with qtbot.waitSignal(panel.dating_changed) as signal:
        panel.apply_button.click()
    assert signal.args == [exam_a.key]
    assert exam_a.dating.ga_days == 140
    assert "z " in panel.centile_label.text()
    assert "EXTREME" not in panel.centile_label.text()

    panel.show_exam(exam_b.key)
    assert exam_b.dating is None
    assert panel.kind_box.currentData() == ""  # the fields show B's (empty) dating
    assert panel.centile_label.text() == "HC centile: none (no GA by dates)"
    assert panel.assessment.centile.z_score is None
    assert "needs GA by dates" in panel.discrepancy_label.text()

    panel.show_exam(exam_a.key)  # A keeps its own dating
    assert panel.weeks_box.value() == 20
    assert panel.assessment.ga_dates_days == 140


def test_an_extreme_z_is_flagged_not_shown_as_a_centile(panel, book) -> None:
    exam_b = book.exams[1]
    panel.show_exam(exam_b.key)
    date_as_ga(panel, 20)  # a 33-week head read against 20 weeks
    panel.apply_dating()
    text = panel.centile_label.text()
    assert text.startswith("HC centile for GA by dates: EXTREME")
    assert "z " not in text and "0th" not in text
    assert "c62828" in panel.centile_label.styleSheet()
    assert panel.discrepancy_label.text().startswith("FLAG: ")


def test_lmp_with_exam_date_gives_ga_and_missing_exam_date_is_said(panel, book) -> None:
    exam_a = book.exams[0]
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("lmp"))
    panel.date_edit.setDate(QDate(2025, 1, 1))
    panel.apply_dating()
    assert exam_a.dating is not None
    assert "needs the exam date" in panel.dates_label.text()
    panel.exam_date_edit.setDate(QDate(2025, 5, 21))  # 140 days after the LMP
    panel.apply_dating()
    assert exam_a.exam_date == dt.date(2025, 5, 21)
    assert panel.dates_label.text().startswith("GA by dates: 20w0d")
    assert "within the margin" in panel.discrepancy_label.text()


def test_an_incomplete_dating_is_refused_with_the_reason(panel, book) -> None:
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("edd"))
    panel.apply_dating()
    assert panel.dating_error.text() == "Not applied: enter the EDD date."
    assert book.exams[0].dating is None


def test_exam_value_is_the_mean_of_the_ticked_frames_with_spread(panel, book, qtbot) -> None:
    exam_a = book.exams[0]
    hcs = [r.hc for r in exam_a.records]
    assert panel.values["hc"].value == pytest.approx(sum(hcs) / 3)
    assert panel.values_table.item(0, 2).text() == "mean of 3"
    assert panel.values_table.item(0, 3).text().startswith("SD ")

    with qtbot.waitSignal(panel.chosen_changed) as signal:
        panel.frames_list.item(2).setCheckState(Qt.CheckState.Unchecked)
    assert signal.args[0] == exam_a.key and len(signal.args[1]) == 2
    assert panel.values["hc"].value == pytest.approx((hcs[0] + hcs[1]) / 2)
    assert panel.values_table.item(0, 1).text() == f"{(hcs[0] + hcs[1]) / 2:.1f} mm"


def test_unusable_frames_cannot_be_ticked(qtbot, tmp_path: Path) -> None:
    frames = [
        record(tmp_path / "p" / "a.png", 220),
        record(tmp_path / "p" / "b.png", 225, accepted=False),
    ]
    panel = ExamPanel()
    qtbot.addWidget(panel)
    panel.set_exams(group_into_exams(frames, read_study=lambda _: None))
    rejected = panel.frames_list.item(1)
    assert not rejected.flags() & Qt.ItemFlag.ItemIsUserCheckable
    assert rejected.toolTip() == "Not usable: rejected"
    assert panel.values["hc"].how == "single measurement"


def test_enter_in_a_field_applies_the_dating_and_not_a_window_shortcut(qtbot, book) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    accepted: list[bool] = []
    accept = QAction("Accept and next", window)
    accept.setShortcuts([QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)])
    accept.triggered.connect(lambda: accepted.append(True))
    window.addAction(accept)
    panel = ExamPanel()
    panel.set_exams(book)
    window.setCentralWidget(panel)
    window.show()
    qtbot.waitExposed(window)

    date_as_ga(panel, 21, 3)
    field = panel.weeks_box
    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=2000)
    qtbot.keyClick(field.lineEdit(), Qt.Key.Key_Return)
    assert book.exams[0].dating.ga_days == 150
    assert accepted == []

    panel.apply_button.setFocus()  # the same key elsewhere still reaches the shortcut
    qtbot.waitUntil(panel.apply_button.hasFocus, timeout=2000)
    qtbot.keyClick(panel.apply_button, Qt.Key.Key_Return)
    assert accepted == [True]


def test_no_more_than_the_limit_of_frames_can_be_ticked(qtbot, tmp_path: Path) -> None:
    frames = [record(tmp_path / "p" / f"{i}.png", 220 + i) for i in range(3)]
    panel = ExamPanel(limit=2)
    qtbot.addWidget(panel)
    panel.set_exams(group_into_exams(frames, read_study=lambda _: None))
    third = panel.frames_list.item(2)
    assert third.checkState() == Qt.CheckState.Unchecked  # the default picks two
    third.setCheckState(Qt.CheckState.Checked)
    assert third.checkState() == Qt.CheckState.Unchecked
    assert panel.values["hc"].count == 2


def test_row_heights_follow_the_column_widths_when_the_panel_is_resized(panel, qtbot) -> None:
    # The spread column stretches with the panel: a narrower panel wraps its text onto more
    # lines, and a row left at its old height cuts the text off ("47.2-47.2 mr").
    table = panel.values_table
    panel.resize(900, 900)
    panel.show()
    qtbot.waitExposed(panel)
    panel.resize(330, 900)
    qtbot.wait(50)
    header = table.horizontalHeader()
    assert (
        sum(header.sectionSize(c) for c in range(table.columnCount())) <= table.viewport().width()
    )
    needed = [table.sizeHintForRow(row) for row in range(table.rowCount())]
    assert [table.rowHeight(row) for row in range(table.rowCount())] == needed
    assert table.height() >= table.horizontalHeader().height() + sum(needed)
    # Every word of the wrapped columns fits its column: nothing is elided ("174.6-17...").
    # Lines break at spaces and after a hyphen between letters ("outer-|to-|outer"), never
    # inside a number range.
    metrics = table.fontMetrics()
    for column in (0, table.columnCount() - 1):
        texts = [table.item(r, column).text() for r in range(table.rowCount())]
        words = [w for text in texts for w in re.split(r"\s+|(?<=[A-Za-z]-)", text) if w]
        widest = max(metrics.horizontalAdvance(word) for word in words)
        assert widest <= table.columnWidth(column) - 8, (column, table.columnWidth(column))
