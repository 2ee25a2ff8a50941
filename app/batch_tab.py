"""The Batch tab: measure many files in the background, review the table, export it."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    QThread,
    Signal,
)
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..core.export import write_hc18_submission, write_records_csv
from ..core.measure import expand_paths, measure_paths
from ..core.records import MeasurementRecord
from ..core.session import CalibrationState, FrameState, MeasureSession, frame_state
from ..core.session.frames import batch_summary, is_flagged, status_text
from .formatting import format_weeks
from .settings import AppSettings
from .workers import EngineHolder, describe_error

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
REVIEW_BACKGROUND = QColor(255, 236, 200)
FAILURE_BACKGROUND = QColor(255, 215, 215)


def _number(value: float | None, digits: int = 1) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


# (header, text of a record, sort key of a record)
COLUMNS = [
    ("File", lambda r: Path(r.file).name, lambda r: Path(r.file).name.lower()),
    ("Frame", lambda r: str(r.frame_index + 1), lambda r: r.frame_index),
    ("Status", status_text, lambda r: f"{frame_state(r).value} {status_text(r)}"),
    ("HC", lambda r: _number(r.hc), lambda r: r.hc if r.hc is not None else -1.0),
    ("BPD", lambda r: _number(r.bpd), lambda r: r.bpd if r.bpd is not None else -1.0),
    ("OFD", lambda r: _number(r.ofd), lambda r: r.ofd if r.ofd is not None else -1.0),
    ("Unit", lambda r: r.unit, lambda r: r.unit),
    (
        "GA Hadlock",
        lambda r: format_weeks(r.ga_hadlock_weeks) if r.ga_hadlock_weeks else "",
        lambda r: r.ga_hadlock_weeks or -1.0,
    ),
    (
        "GA IG-21st",
        lambda r: format_weeks(r.ga_intergrowth_weeks) if r.ga_intergrowth_weeks else "",
        lambda r: r.ga_intergrowth_weeks or -1.0,
    ),
    ("Fit", lambda r: _number(r.fit_iou, 3), lambda r: r.fit_iou if r.fit_iou is not None else -1),
    (
        "Confidence",
        lambda r: _number(r.confidence, 3),
        lambda r: r.confidence if r.confidence is not None else -1,
    ),
    ("Spacing", lambda r: r.spacing.source, lambda r: r.spacing.source),
]


class RecordTableModel(QAbstractTableModel):
    """Batch records as table rows; flagged rows get a coloured background."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.records: list[MeasurementRecord] = []

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section][0]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        record = self.records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[index.column()][1](record)
        if role == SORT_ROLE:
            return COLUMNS[index.column()][2](record)
        if role == Qt.ItemDataRole.BackgroundRole and is_flagged(record):
            failed = frame_state(record) in (FrameState.NO_HEAD, FrameState.ERROR)
            return QBrush(FAILURE_BACKGROUND if failed else REVIEW_BACKGROUND)
        if role == Qt.ItemDataRole.ForegroundRole and is_flagged(record):
            return QBrush(QColor(20, 20, 20))  # readable on the light background in dark themes
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{record.file}\n{status_text(record)}"
        return None

    def append(self, record: MeasurementRecord) -> None:
        row = len(self.records)
        self.beginInsertRows(QModelIndex(), row, row)
        self.records.append(record)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.records = []
        self.endResetModel()


class BatchWorker(QThread):
    """Runs `core.measure.measure_paths` file by file over the inputs; one signal per record.

    Each file gets the spacing the shared calibration gives it (a copy taken at the start, so a
    change during the run does not mix two calibrations in one table)."""

    recordReady = Signal(object)  # MeasurementRecord
    progressed = Signal(int, int)  # (file position, number of files)
    failedToStart = Signal(str)

    def __init__(
        self,
        paths: list[str],
        engines: EngineHolder,
        calibration: CalibrationState,
    ) -> None:
        super().__init__()
        self._paths = paths
        self._engines = engines
        self._calibration = CalibrationState()
        self._calibration.restore(calibration.to_json())
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def run(self) -> None:
        try:
            engine = self._engines.engine()
            if engine is None:
                self.failedToStart.emit("No model: choose one in the Model menu.")
                return
            files = expand_paths(self._paths)
            self.progressed.emit(0, len(files))
            for position, path in enumerate(files, start=1):
                if self._cancelled:
                    break
                records = measure_paths(
                    [path],
                    engine,
                    spacing_override=self._calibration.override(path),
                    cancel=lambda: self._cancelled,
                )
                for record in records:
                    self.recordReady.emit(record)
                self.progressed.emit(position, len(files))
        except Exception as error:  # reported in the window; the thread must end cleanly
            self.failedToStart.emit(f"Batch stopped: {describe_error(error)}")


class BatchTab(QWidget):
    """Inputs and options | results table; measuring runs on a `BatchWorker` thread."""

    openFrame = Signal(str, int)  # (path, frame index): show it in the Measure tab
    finished = Signal(int)  # number of records
    statusMessage = Signal(str)
    errorMessage = Signal(str)

    def __init__(
        self,
        settings: AppSettings,
        session: MeasureSession | None = None,
        engines: EngineHolder | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.session = session if session is not None else MeasureSession()
        self.engines = engines if engines is not None else EngineHolder()
        self.worker: BatchWorker | None = None
        self.model = RecordTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self._build()

    def _build(self) -> None:
        self.inputs = QListWidget()
        self.inputs.setToolTip("Files and folders to measure (folders are searched recursively)")
        self.add_files_button = QPushButton("Add files…")
        self.add_folder_button = QPushButton("Add folder…")
        self.clear_inputs_button = QPushButton("Clear")
        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setRange(0.0, 10.0)
        self.pixel_size.setDecimals(4)
        self.pixel_size.setSingleStep(0.01)
        self.pixel_size.setSpecialValueText("from each file")
        self.pixel_size.setSuffix(" mm/px")
        self.pixel_size.setToolTip(
            "One pixel size for every file (shared with the Measure tab); 'from each file' uses "
            "the CSV below, else DICOM, else the frame stays uncalibrated (values in pixels)."
        )
        self.csv_button = QPushButton("Pixel-size CSV…")
        self.csv_button.setToolTip(
            "An HC18-style CSV (filename, pixel size(mm)), shared with the Measure tab; it applies "
            "to the files of its own folder and of the inputs listed when it is loaded."
        )
        self.csv_label = QLabel("none")
        self.start_button = QPushButton("Measure all")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress_label = QLabel("")
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.export_button = QPushButton("Export CSV…")
        self.export_hc18_button = QPushButton("Export HC18 submission…")

        self.table = QTableView()
        self.table.setModel(self.proxy)
        # Rows stay in measuring order until the user clicks a header.
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        for column, width in enumerate((110, 50, 170, 60, 60, 60, 45, 85, 85, 55, 80)):
            self.table.setColumnWidth(column, width)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip("Double-click a row to open the frame in the Measure tab")
        self.table.doubleClicked.connect(self._on_double_click)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("Inputs"))
        left_layout.addWidget(self.inputs, 1)
        buttons = QHBoxLayout()
        for button in (self.add_files_button, self.add_folder_button, self.clear_inputs_button):
            buttons.addWidget(button)
        left_layout.addLayout(buttons)
        form = QFormLayout()
        form.addRow("Pixel size", self.pixel_size)
        csv_row = QHBoxLayout()
        csv_row.addWidget(self.csv_button)
        csv_row.addWidget(self.csv_label, 1)
        form.addRow("Pixel sizes", csv_row)
        left_layout.addLayout(form)
        run_row = QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.cancel_button)
        left_layout.addLayout(run_row)
        left_layout.addWidget(self.progress)
        left_layout.addWidget(self.progress_label)
        left_layout.addWidget(self.summary_label)
        export_row = QHBoxLayout()
        export_row.addWidget(self.export_button)
        export_row.addWidget(self.export_hc18_button)
        left_layout.addLayout(export_row)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.table)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.add_files_button.clicked.connect(self._choose_files)
        self.add_folder_button.clicked.connect(self._choose_folder)
        self.clear_inputs_button.clicked.connect(self.inputs.clear)
        self.csv_button.clicked.connect(self._choose_csv)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(lambda: self.export_csv())
        self.export_hc18_button.clicked.connect(lambda: self.export_hc18())
        self.pixel_size.valueChanged.connect(self._on_pixel_size_edited)
        self.session.calibration.listeners.append(self._show_calibration)
        self._show_calibration(None)

    # Options -----------------------------------------------------------------------------------
    def set_pixel_size(self, mm: float | None) -> None:
        """One pixel size for every file (the shared calibration), None to forget it."""
        self.session.set_pixel_size(mm)

    def _on_pixel_size_edited(self, mm: float) -> None:
        self.session.set_pixel_size(mm if mm > 0 else None)

    def set_pixel_csv(self, path: str | Path) -> bool:
        try:
            self.session.load_pixel_csv(path, for_files=self.input_paths())
        except (OSError, ValueError) as error:
            self.errorMessage.emit(str(error))
            return False
        return True

    def _show_calibration(self, _paths) -> None:
        """The shared calibration as it is now (it may have been changed in another tab)."""
        calibration = self.session.calibration
        self.pixel_size.blockSignals(True)
        self.pixel_size.setValue(calibration.all_files_mm or 0.0)
        self.pixel_size.blockSignals(False)
        csv = calibration.pixel_csv
        self.csv_label.setText(
            "none" if csv is None else f"{Path(csv.path).name} ({len(csv.sizes)} sizes)"
        )
        if csv is not None:
            self.csv_label.setToolTip("For the files in:\n" + "\n".join(csv.folders))

    def add_inputs(self, paths: list[str | Path]) -> None:
        present = {self.inputs.item(i).text() for i in range(self.inputs.count())}
        for path in map(str, paths):
            if path not in present:
                self.inputs.addItem(path)

    def input_paths(self) -> list[str]:
        return [self.inputs.item(i).text() for i in range(self.inputs.count())]

    def _choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Add files", self.settings.last_folder("batch")
        )
        if paths:
            self.settings.set_last_folder("batch", paths[0])
            self.add_inputs(paths)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Add a folder", self.settings.last_folder("batch")
        )
        if folder:
            self.settings.set_last_folder("batch", folder)
            self.add_inputs([folder])

    def _choose_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Pixel-size CSV", self.settings.last_folder("batch"), "CSV (*.csv)"
        )
        if path:
            self.set_pixel_csv(path)

    # Running -----------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def start(self) -> None:
        paths = self.input_paths()
        if not paths:
            self.errorMessage.emit("Add files or a folder to measure first.")
            return
        if self.is_running():
            return
        self.model.clear()
        self.worker = BatchWorker(paths, self.engines, self.session.calibration)
        self.worker.recordReady.connect(self.model.append)
        self.worker.progressed.connect(self._on_progress)
        self.worker.failedToStart.connect(self.errorMessage.emit)
        self.worker.finished.connect(self._on_finished)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)  # busy until the files are counted
        self.progress_label.setText("Looking for frames…")
        self.summary_label.setText("")
        self.worker.start()

    def cancel(self) -> None:
        if self.is_running():
            self.worker.cancel()
            self.progress_label.setText("Cancelling…")

    def _on_progress(self, position: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(position)
        self.progress_label.setText(f"File {position} of {total}")

    def _on_finished(self) -> None:
        cancelled = self.worker.cancelled if self.worker else False
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress_label.setText("Cancelled" if cancelled else "Done")
        self.summary_label.setText(self.summary())
        self.statusMessage.emit(
            ("Batch cancelled: " if cancelled else "Batch done: ") + self.summary()
        )
        self.finished.emit(len(self.model.records))

    def summary(self) -> str:
        return batch_summary(self.model.records)

    def _on_double_click(self, index: QModelIndex) -> None:
        record = self.model.records[self.proxy.mapToSource(index).row()]
        self.openFrame.emit(record.file, record.frame_index)

    # Export ------------------------------------------------------------------------------------
    def _ask_path(self, title: str, name: str) -> str | None:
        folder = Path(self.settings.last_folder("export"))
        path, _ = QFileDialog.getSaveFileName(self, title, str(folder / name), "CSV (*.csv)")
        if path:
            self.settings.set_last_folder("export", path)
        return path or None

    def export_csv(self, path: str | Path | None = None) -> int:
        if not self.model.records:
            self.errorMessage.emit("Nothing to export: run a batch first.")
            return 0
        path = path or self._ask_path("Export batch results", "hc_batch.csv")
        if not path:
            return 0
        try:
            count = write_records_csv(self.model.records, path)
        except OSError as error:
            self.errorMessage.emit(f"Could not write {Path(path).name}: {error.strerror or error}")
            return 0
        self.statusMessage.emit(f"{count} row(s) written to {Path(path).name}")
        return count

    def export_hc18(self, path: str | Path | None = None) -> int:
        if not self.model.records:
            self.errorMessage.emit("Nothing to export: run a batch first.")
            return 0
        path = path or self._ask_path("HC18 submission", "submission.csv")
        if not path:
            return 0
        try:
            skipped = write_hc18_submission(self.model.records, path)
        except OSError as error:
            self.errorMessage.emit(f"Could not write {Path(path).name}: {error.strerror or error}")
            return 0
        written = len(self.model.records) - len(skipped)
        message = f"{written} frame(s) written to {Path(path).name}"
        if skipped:
            message += f"; {len(skipped)} left out (no ellipse or no pixel size)"
        self.statusMessage.emit(message)
        return written

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(15000)
