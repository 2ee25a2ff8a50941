"""The window's File menu exports of the session: report, DICOM SR, correction log, and the
accepted frames as a labelled folder for training (learning from the person's corrections).

The report actions are `app.report_actions.ReportActions` fed from the session: the exams of the
Measure tab (with their GA by dates), the records, the correction log built from each accepted
frame's automatic and final record (who: the operator, a setting of the window), the
measurements selected as exam values and the calipers placed by hand (kept in the session), and
the model details of the engine in use. The labelled folder is written by `core.correction_export`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from ..core.correction_export import export_accepted
from ..core.report import model_details
from ..core.session import MeasureSession
from .report_actions import ReportActions
from .settings import AppSettings
from .workers import EngineHolder

LABELLED_TITLE = "Export accepted frames as a labelled folder"


class FileExports(QObject):
    """The File menu's export actions (`actions()`), reading the session when triggered."""

    def __init__(
        self,
        parent: QWidget,
        session: MeasureSession,
        engines: EngineHolder,
        settings: AppSettings,
        exams: Callable,
        chosen: Callable = dict,
    ) -> None:
        super().__init__(parent)
        self._parent, self.session, self.engines, self.settings = parent, session, engines, settings
        self._exams = exams
        self.reports = ReportActions(
            parent,
            exams=self.exams,
            records=self.records,
            corrections=self.corrections,
            model_details=self.model_details,
            chosen=chosen,
            selected=self.selected,
            calipers=session.kept_calipers,
        )
        self.export_labelled = QAction("Export accepted frames as a &labelled folder…", parent)
        self.export_labelled.setStatusTip(
            "images/ + masks/ + pixel_size.csv of the accepted frames, for hc-studio train"
        )
        self.export_labelled.triggered.connect(lambda: self.export_labelled_folder())
        self.set_operator = QAction("&Operator name…", parent)
        self.set_operator.setStatusTip("Who accepts: named in the correction log and the report")
        self.set_operator.triggered.connect(self.ask_operator)

    def actions(self) -> list[QAction]:
        return [*self.reports.actions(), self.export_labelled]

    # Inputs ------------------------------------------------------------------------------------
    def exams(self) -> list:
        """The exams as grouped now, each with the operator (the report names who examined)."""
        exams = list(self._exams())
        for exam in exams:
            exam.operator = exam.operator or self.settings.operator()
        return exams

    def selected(self) -> dict:
        """{exam key: {parameter: frame}}: the measurements selected as exam values."""
        choices = self.session.choices
        return {exam.key: choices.selected_in(exam.frame_keys()) for exam in self._exams()}

    def records(self) -> list:
        session = self.session
        return [r for r in (session.record(key) for key in session.frame_keys()) if r]

    def corrections(self) -> list:
        return self.session.correction_entries(self.settings.operator())

    def model_details(self) -> dict[str, str] | None:
        try:
            engine = self.engines.engine()
        except ValueError:
            return None  # the report says no more than the records' model name
        return model_details(engine) if engine is not None else None

    # Actions -----------------------------------------------------------------------------------
    def ask_operator(self) -> None:
        name, ok = QInputDialog.getText(
            self._parent,
            "Operator",
            "Operator name (in the correction log and the report):",
            text=self.settings.operator(),
        )
        if ok:
            self.settings.set_operator(name)

    def export_labelled_folder(self, folder: str | Path | None = None) -> Path | None:
        """Write the accepted frames as a labelled folder (asks for a NEW folder when `folder`
        is None); says what was written and what was left out, and why."""
        if not self.session.accepted_records():
            QMessageBox.warning(
                self._parent, LABELLED_TITLE, "No accepted frame: accept frames first."
            )
            return None
        if folder is None:
            folder, _ = QFileDialog.getSaveFileName(
                self._parent,
                f"{LABELLED_TITLE}: name a new folder",
                str(Path(self.settings.last_folder("labelled")) / "accepted-labels"),
            )
            if not folder:
                return None
            self.settings.set_last_folder("labelled", Path(folder).parent)
        try:
            result = export_accepted(self.session.accepted_records(), folder)
        except (OSError, ValueError) as error:
            QMessageBox.warning(self._parent, LABELLED_TITLE, f"Not written: {error}")
            return None
        lines = [f"{len(result.names)} frame(s) written to {result.folder}"]
        if result.skipped:
            lines += ["Left out:", *(f"{what}: {why}" for what, why in result.skipped)]
        lines.append(f"Train on them: hc-studio train --labeled {result.folder} ...")
        QMessageBox.information(self._parent, LABELLED_TITLE, "\n".join(lines))
        return result.folder
