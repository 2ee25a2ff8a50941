"""File menu actions: reports per exam, DICOM SR of accepted records, the correction log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hc_studio.app import report_actions
from hc_studio.app.report_actions import (
    ReportActions,
    export_correction_log,
    export_dicom_sr,
    print_reports,
)
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.exam import group_into_exams
from hc_studio.core.exam.correction_log import CorrectionEntry, read_correction_log
from hc_studio.core.measure import record_from_ellipse
from hc_studio.core.spacing import Spacing
from PySide6.QtWidgets import QWidget

SPACING = Spacing.square(0.14, "csv")


def record(path: Path, semi_major_px: float, **changes):
    ellipse = Ellipse.normalised(300, 250, semi_major_px, semi_major_px * 0.8, 0.2)
    made = record_from_ellipse(str(path), 0, SPACING, ellipse, "tiny", origin="auto")
    return made.replace(**changes)


@pytest.fixture
def messages(monkeypatch):
    """Every message box shown, as (kind, title, text)."""
    shown: list[tuple[str, str, str]] = []
    box = report_actions.QMessageBox
    monkeypatch.setattr(box, "information", lambda p, t, x: shown.append(("info", t, x)))
    monkeypatch.setattr(box, "warning", lambda p, t, x: shown.append(("warning", t, x)))
    return shown


@pytest.fixture
def two_patients(tmp_path: Path):
    a = [record(tmp_path / "patient-a" / f"f{i}.png", 220 + 5 * i, accepted=True) for i in range(2)]
    b = [record(tmp_path / "patient-b" / "g0.png", 380, accepted=None)]
    return a + b


def grey(_record) -> np.ndarray:
    return np.full((500, 600), 0.3, dtype=np.float32)


def test_print_writes_one_pdf_per_exam_at_the_chosen_path(
    tmp_path, two_patients, messages, monkeypatch
) -> None:
    chosen_path = tmp_path / "out" / "visit"  # no suffix: .pdf is added
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(
        report_actions.QFileDialog, "getSaveFileName", lambda *a: (str(chosen_path), "PDF")
    )
    book = group_into_exams(two_patients, read_study=lambda _: None)
    written = print_reports(None, book, model_details={"file": "m.onnx"}, read_pixels=grey)
    assert written == [tmp_path / "out" / "visit.pdf", tmp_path / "out" / "visit-2.pdf"]
    assert all(path.read_bytes().startswith(b"%PDF") for path in written)
    kind, title, text = messages[-1]
    assert kind == "info" and "2 report(s) written" in text and "visit-2.pdf" in text


def test_a_report_that_cannot_be_written_is_named_and_the_others_go_on(
    tmp_path, two_patients, messages
) -> None:
    book = group_into_exams(two_patients, read_study=lambda _: None)
    (tmp_path / "r-2.pdf").mkdir()  # a folder where the second PDF should go
    written = print_reports(None, book, read_pixels=grey, path=tmp_path / "r.pdf")
    assert written == [tmp_path / "r.pdf"]
    kind, _, text = messages[-1]
    assert kind == "warning"
    assert f"{tmp_path / 'r-2.pdf'}: not written (patient-b" in text


def test_print_cancelled_or_without_exams_writes_nothing(tmp_path, messages, monkeypatch) -> None:
    assert print_reports(None, []) is None
    assert messages[-1][0] == "warning" and "No exam to report" in messages[-1][2]
    monkeypatch.setattr(report_actions.QFileDialog, "getSaveFileName", lambda *a: ("", ""))
    exams = group_into_exams([record(tmp_path / "p" / "a.png", 220)], read_study=lambda _: None)
    assert print_reports(None, exams, read_pixels=grey) is None
    assert list(tmp_path.iterdir()) == []


def test_sr_export_writes_accepted_records_only(
    tmp_path, two_patients, messages, monkeypatch
) -> None:
    folder = tmp_path / "sr"
    folder.mkdir()
    monkeypatch.setattr(report_actions.QFileDialog, "getExistingDirectory", lambda *a: str(folder))
    result = export_dicom_sr(None, two_patients)
    assert len(result.written) == 1  # patient B has no accepted frame: no SR for it
    assert result.written[0].parent == folder and "patient-a" in result.written[0].name
    from hc_studio.core.dicom_sr import read_sr_values

    hcs = {round(v, 1) for v in read_sr_values(result.written[0])["Head Circumference"]}
    assert {round(r.hc, 1) for r in two_patients[:2]} <= hcs  # each HC (and their mean)
    assert round(two_patients[2].hc, 1) not in hcs
    assert messages[-1][0] == "info" and "1 SR file(s) written" in messages[-1][2]


def test_sr_export_refuses_without_an_accepted_measurement(tmp_path, messages) -> None:
    records = [record(tmp_path / "p" / "a.png", 220, accepted=None)]
    assert export_dicom_sr(None, records, folder=tmp_path) is None
    assert messages[-1][0] == "warning" and "No accepted measurement" in messages[-1][2]
    assert list(tmp_path.iterdir()) == []


def test_correction_log_is_written_and_summarised(tmp_path, two_patients, messages) -> None:
    automatic = two_patients[0]
    final = record(Path(automatic.file), 230, accepted=True, origin="edited")
    at = dt.datetime(2025, 6, 1, 10, tzinfo=dt.UTC)
    entries = [CorrectionEntry.from_records(automatic, final, "ana", at)]
    path = export_correction_log(None, entries, path=tmp_path / "log.csv")
    assert read_correction_log(path)[0].hc_final == pytest.approx(final.hc, abs=1e-3)
    assert messages[-1][0] == "info" and "1 of 1 accepted measurements corrected" in messages[-1][2]

    assert export_correction_log(None, []) is None
    assert "correction log is empty" in messages[-1][2]


def test_actions_read_their_inputs_when_triggered(
    qtbot, tmp_path, two_patients, messages, monkeypatch
) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    monkeypatch.setattr(
        report_actions.QFileDialog, "getExistingDirectory", lambda *a: str(tmp_path)
    )
    session = {"records": []}
    actions = ReportActions(
        window,
        exams=lambda: group_into_exams(session["records"], read_study=lambda _: None),
        records=lambda: session["records"],
        corrections=lambda: [],
    )
    assert [a.text() for a in actions.actions()] == [
        "&Print report…",
        "Export DICOM &SR…",
        "Export &correction log…",
    ]
    actions.export_sr.trigger()
    assert "No accepted measurement" in messages[-1][2]
    session["records"] = two_patients
    actions.export_sr.trigger()
    assert "1 SR file(s) written" in messages[-1][2]
