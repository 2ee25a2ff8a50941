"""File menu actions for what leaves the app: the printed report, DICOM SR, the correction log.

Each action is a plain function over plain inputs (exams, records, correction entries, model
details), so it works with whatever holds the session; `ReportActions` wraps them as QActions
whose inputs come from callables given at construction. The work is done by `core.report`,
`core.dicom_sr` and `core.exam.correction_log`; here we only ask for a path, refuse when there is
nothing right to write, and say what was written and what failed (naming the file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ..core.dicom_sr import SRExport, accepted_records, write_exam_srs
from ..core.exam import Exam
from ..core.exam.correction_log import CorrectionEntry, summarise, write_correction_log
from ..core.exam.grouping import FrameKey
from ..core.exam.kept_caliper import KeptCaliper
from ..core.records import MeasurementRecord
from ..core.report import build_exam_report, report_paths, write_exam_pdf
from ..core.report.content import PixelReader, read_record_pixels

PRINT_TITLE = "Print report"
SR_TITLE = "Export DICOM SR"
LOG_TITLE = "Export correction log"


def _inform(parent: QWidget | None, title: str, text: str) -> None:
    QMessageBox.information(parent, title, text)


def _warn(parent: QWidget | None, title: str, text: str) -> None:
    QMessageBox.warning(parent, title, text)


def _ask_save(parent: QWidget | None, title: str, name: str, pattern: str, suffix: str):
    path, _ = QFileDialog.getSaveFileName(parent, title, name, pattern)
    if not path:
        return None
    path = Path(path)
    return path if path.suffix.lower() == suffix else path.with_name(path.name + suffix)


def _entries_of(exam: Exam, entries: Sequence[CorrectionEntry]) -> list[CorrectionEntry]:
    frames = set(exam.frame_keys())
    return [entry for entry in entries if (entry.file, entry.frame_index) in frames]


def print_reports(
    parent: QWidget | None,
    exams: Iterable[Exam],
    model_details: Mapping[str, str] | None = None,
    corrections: Sequence[CorrectionEntry] = (),
    chosen: Mapping[str, Sequence[FrameKey]] | None = None,
    read_pixels: PixelReader = read_record_pixels,
    path: str | Path | None = None,
    selected: Mapping[str, Mapping[str, FrameKey]] | None = None,
    calipers: Mapping[FrameKey, KeptCaliper] | None = None,
) -> list[Path] | None:
    """One PDF per exam: OUT.pdf, OUT-2.pdf... (asks for OUT when `path` is None). `chosen`
    maps an exam key to the frames the user picked for its values, `selected` to the frame
    selected per parameter; `calipers` are BPD outer-to-inner calipers placed by hand;
    `corrections` is the session's correction log (each report summarises its exam's part and
    the whole). Returns the files written, or None when cancelled or refused; an exam that
    fails is named and the others go on."""
    exams = [exam for exam in exams if exam.records]
    if not exams:
        _warn(parent, PRINT_TITLE, "No exam to report: open and measure frames first.")
        return None
    out = (
        Path(path) if path else _ask_save(parent, PRINT_TITLE, "report.pdf", "PDF (*.pdf)", ".pdf")
    )
    if out is None:
        return None
    written: list[Path] = []
    lines: list[str] = []
    failed: list[str] = []
    for exam, target in zip(exams, report_paths(out, len(exams)), strict=True):
        try:
            report = build_exam_report(
                exam,
                read_pixels,
                chosen=(chosen or {}).get(exam.key),
                selected=(selected or {}).get(exam.key),
                model_details=model_details,
                corrections=_entries_of(exam, corrections),
                calipers=calipers,
                session_corrections=list(corrections),
            )
            written.append(write_exam_pdf(report, target))
            lines.append(f"{exam.label}: {target}")
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or error
            failed.append(f"{target}: not written ({exam.label}: {reason})")
    if failed:
        done = ["Written:", *lines] if written else []
        _warn(parent, PRINT_TITLE, "\n".join(["Some reports failed:", *failed, *done]))
    else:
        _inform(parent, PRINT_TITLE, "\n".join([f"{len(written)} report(s) written:", *lines]))
    return written


def export_dicom_sr(
    parent: QWidget | None,
    records: Iterable[MeasurementRecord],
    folder: str | Path | None = None,
) -> SRExport | None:
    """One SR per exam of the ACCEPTED records only (asks for a folder when `folder` is None);
    refuses, saying why, when no measurement was accepted."""
    records = list(records)
    accepted = accepted_records(records)
    if not accepted:
        _warn(
            parent,
            SR_TITLE,
            "No accepted measurement to export: a structured report holds only measurements "
            "a person accepted (calibrated, in mm). Accept frames first.",
        )
        return None
    if folder is None:
        folder = QFileDialog.getExistingDirectory(parent, f"{SR_TITLE}: choose a folder")
        if not folder:
            return None
    result = write_exam_srs(accepted, folder)
    left_out = sum(1 for r in records if r.accepted is True) - len(accepted)
    lines = [f"{len(result.written)} SR file(s) written:", *map(str, result.written)]
    lines += [f"Note: {note}" for note in result.notes]
    if left_out:
        lines.append(f"{left_out} accepted frame(s) left out: not calibrated or no head found.")
    if result.failed:
        _warn(parent, SR_TITLE, "\n".join(["Not written:", *result.failed, "", *lines]))
    else:
        _inform(parent, SR_TITLE, "\n".join(lines))
    return result


def export_correction_log(
    parent: QWidget | None,
    entries: Sequence[CorrectionEntry],
    path: str | Path | None = None,
) -> Path | None:
    """Write the correction log CSV (asks for a path when `path` is None) and show its
    summary; refuses when nothing was accepted yet."""
    if not entries:
        _warn(parent, LOG_TITLE, "The correction log is empty: no measurement was accepted yet.")
        return None
    target = (
        Path(path)
        if path
        else _ask_save(parent, LOG_TITLE, "corrections.csv", "CSV (*.csv)", ".csv")
    )
    if target is None:
        return None
    try:
        count = write_correction_log(entries, target)
    except OSError as error:
        _warn(parent, LOG_TITLE, f"{target}: not written ({error.strerror or error})")
        return None
    written = f"{count} entr{'y' if count == 1 else 'ies'} written to {target}"
    _inform(parent, LOG_TITLE, f"{written}\n{summarise(entries).text()}")
    return target


class ReportActions(QObject):
    """The three File menu actions, reading their inputs from callables when triggered.

    `exams()` -> the exams to report; `records()` -> all records of the session (SR export keeps
    the accepted ones); `corrections()` -> correction log entries; `model_details()` -> what the
    report says about the model; `chosen()` -> {exam key: chosen frames}, `selected()` ->
    {exam key: {parameter: selected frame}}, `calipers()` -> {frame: caliper placed by hand}
    (all three optional).
    """

    def __init__(
        self,
        parent: QWidget,
        exams: Callable[[], Iterable[Exam]],
        records: Callable[[], Iterable[MeasurementRecord]],
        corrections: Callable[[], Sequence[CorrectionEntry]],
        model_details: Callable[[], Mapping[str, str] | None] = lambda: None,
        chosen: Callable[[], Mapping[str, Sequence[FrameKey]]] = dict,
        selected: Callable[[], Mapping[str, Mapping[str, FrameKey]]] = dict,
        calipers: Callable[[], Mapping[FrameKey, KeptCaliper]] = dict,
    ) -> None:
        super().__init__(parent)
        self._parent = parent
        self.print_report = QAction("&Print report…", parent)
        self.print_report.setStatusTip("Write one PDF report per exam")
        self.export_sr = QAction("Export DICOM &SR…", parent)
        self.export_sr.setStatusTip("Write one DICOM structured report per exam (accepted only)")
        self.export_log = QAction("Export &correction log…", parent)
        self.export_log.setStatusTip("Write the automatic and final value of each acceptance")
        self.print_report.triggered.connect(
            lambda: print_reports(
                self._parent,
                exams(),
                model_details(),
                corrections(),
                chosen(),
                selected=selected(),
                calipers=calipers(),
            )
        )
        self.export_sr.triggered.connect(lambda: export_dicom_sr(self._parent, records()))
        self.export_log.triggered.connect(
            lambda: export_correction_log(self._parent, corrections())
        )

    def actions(self) -> list[QAction]:
        return [self.print_report, self.export_sr, self.export_log]
