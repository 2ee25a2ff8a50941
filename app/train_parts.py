"""Parts of the Train tab: its data box, its live curves, and the work it runs off the UI thread
(checking a data folder with the core importer; asking a child Python whether torch sees a GPU)."""

from __future__ import annotations

import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QObject, QProcess, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.training_session import LiveRun, describe_device_probe, import_summary
from .settings import AppSettings
from .workers import describe_error

LOSS_COLOURS = [(230, 90, 60), (60, 140, 230), (60, 180, 90), (200, 160, 40), (160, 90, 200)]
# Asks the child's Python (torch lives there, never in the window) whether CUDA really works.
CUDA_PROBE = (
    "import json, torch\n"
    "ok = torch.cuda.is_available()\n"
    "print(json.dumps({'cuda': ok, 'name': torch.cuda.get_device_name(0) if ok else ''}))"
)


class ImportSignals(QObject):
    done = Signal(str, object)  # (which: "labelled"/"unlabelled", ImportResult)
    failed = Signal(str, str)  # (which, message)


class ImportJob(QRunnable):
    """Checks a data folder with the core importer (pixels not kept) off the UI thread."""

    def __init__(self, which: str, folder: str, signals: ImportSignals) -> None:
        super().__init__()
        self._which, self._folder, self._signals = which, folder, signals

    def run(self) -> None:
        from ..core import dataset

        importer = (
            dataset.import_labelled_folder
            if self._which == "labelled"
            else dataset.import_unlabelled_folder
        )
        try:
            result = importer(self._folder, load_pixels=False)
        except Exception as error:  # the message goes to the window
            self._signals.failed.emit(self._which, describe_error(error))
            return
        self._signals.done.emit(self._which, result)


class LivePlots(QWidget):
    """Loss curves (one per scalar the method reports), validation Dice and HC error."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = pg.PlotWidget(title="Training loss")
        self.loss_plot.addLegend(offset=(-5, 5), labelTextSize="8pt", brush=(30, 30, 30, 200))
        self.dice_plot = pg.PlotWidget(title="Validation Dice")
        self.hc_plot = pg.PlotWidget(title="Validation HC error (mm)")
        # The loss gets the width (many points); the two validation curves share a row.
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot, 1)
        validation_row = QHBoxLayout()
        validation_row.addWidget(self.dice_plot)
        validation_row.addWidget(self.hc_plot)
        layout.addLayout(validation_row, 1)
        for plot in (self.loss_plot, self.dice_plot, self.hc_plot):
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.setLabel("bottom", "iteration")
            plot.setMinimumHeight(120)
        pen = {"width": 2}
        self.dice_curve = self.dice_plot.plot(
            pen=pg.mkPen((60, 180, 90), **pen), symbol="o", symbolSize=5
        )
        self.hc_curve = self.hc_plot.plot(
            pen=pg.mkPen((230, 90, 60), **pen), symbol="o", symbolSize=5
        )
        self.clear()

    def clear(self) -> None:
        for curve in getattr(self, "_loss_curves", {}).values():
            self.loss_plot.removeItem(curve)
        legend = self.loss_plot.plotItem.legend
        if legend is not None:
            legend.clear()
        self._loss_curves: dict[str, pg.PlotDataItem] = {}
        self.loss_data: dict[str, tuple[list[int], list[float]]] = {}
        self.validation: list[tuple[int, float | None, float | None]] = []
        self.dice_curve.setData([], [])
        self.hc_curve.setData([], [])

    def draw(self, run: LiveRun) -> None:
        """Draw the run's loss and validation curves."""
        for name, (xs, ys) in run.losses.items():
            if name not in self._loss_curves:
                colour = LOSS_COLOURS[len(self._loss_curves) % len(LOSS_COLOURS)]
                self._loss_curves[name] = self.loss_plot.plot(
                    pen=pg.mkPen(colour, width=2), name=name
                )
            self._loss_curves[name].setData(xs, ys)
        self.loss_data = run.losses
        self.validation = run.validation
        dice = [(i, d) for i, d, _ in run.validation if d is not None]
        hc = [(i, h) for i, _, h in run.validation if h is not None]
        self.dice_curve.setData([i for i, _ in dice], [d for _, d in dice])
        self.hc_curve.setData([i for i, _ in hc], [h for _, h in hc])


class DeviceProbe(QObject):
    """Runs CUDA_PROBE in a child Python (torch never loads in the window) and answers once."""

    answered = Signal(str, object)  # (words for the device label, CUDA device name or None)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._process = QProcess(self)
        self._process.finished.connect(self._on_finished)
        self._process.errorOccurred.connect(lambda *_: self.answered.emit("CPU only", None))

    def start(self) -> None:
        self._process.start(sys.executable, ["-c", CUDA_PROBE])

    def _on_finished(self, *_args) -> None:
        output = bytes(self._process.readAllStandardOutput()).decode(errors="replace")
        self.answered.emit(*describe_device_probe(output))

    def end(self) -> None:
        """Stop the probe if it still runs (the window is closing)."""
        if self._process.state() != QProcess.ProcessState.NotRunning:
            self._process.kill()
            self._process.waitForFinished(2000)


class DataBox(QGroupBox):
    """The labelled and unlabelled folders, their summaries, and the files the import left out."""

    statusMessage = Signal(str)
    errorMessage = Signal(str)

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__("Data", parent)
        self.settings = settings
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self.import_signals = ImportSignals(self)
        self.import_signals.done.connect(self._on_import_done)
        self.import_signals.failed.connect(self._on_import_failed)
        layout = QVBoxLayout(self)
        self.labelled_edit, self.labelled_summary = self._folder(
            layout,
            "labelled",
            "Labelled frames",
            "HC18 folder, or a folder with images/ and masks/",
        )
        self.unlabelled_edit, self.unlabelled_summary = self._folder(
            layout, "unlabelled", "Unlabelled frames", "optional: frames without masks"
        )
        layout.addWidget(QLabel("Import problems (files left out)"))
        self.problems = QListWidget()
        layout.addWidget(self.problems, 1)

    def _folder(self, layout, which: str, title: str, placeholder: str):
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        button = QPushButton("Browse…")
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(button)
        summary = QLabel("–")
        summary.setWordWrap(True)
        layout.addWidget(QLabel(title))
        layout.addLayout(row)
        layout.addWidget(summary)
        button.clicked.connect(lambda: self._choose_folder(which, edit))
        edit.editingFinished.connect(lambda: self.import_folder(which))
        return edit, summary

    def _choose_folder(self, which: str, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, f"{which.capitalize()} frames", edit.text() or self.settings.last_folder(which)
        )
        if folder:
            edit.setText(folder)
            self.settings.set_last_folder(which, folder)
            self.import_folder(which)

    def import_folder(self, which: str) -> None:
        """Check the labelled or unlabelled folder in the background; fills the summary."""
        edit = self.labelled_edit if which == "labelled" else self.unlabelled_edit
        label = self.labelled_summary if which == "labelled" else self.unlabelled_summary
        folder = edit.text().strip()
        if not folder:
            label.setText("–")
            return
        if not Path(folder).is_dir():
            label.setText(f"<span style='color:#c62828'>{Path(folder).name}: not a folder</span>")
            return
        label.setText("Reading…")
        self._pool.start(ImportJob(which, folder, self.import_signals))

    def _on_import_done(self, which: str, result) -> None:
        label = self.labelled_summary if which == "labelled" else self.unlabelled_summary
        label.setText(import_summary(which, result))
        # Keep the other folder's problems; replace this folder's.
        for row in reversed(range(self.problems.count())):
            if self.problems.item(row).data(Qt.ItemDataRole.UserRole) == which:
                self.problems.takeItem(row)
        for problem in result.problems:
            self.add_problem(str(problem), which)
        if result.problems:
            self.statusMessage.emit(f"{len(result.problems)} file(s) left out: see the list")

    def _on_import_failed(self, which: str, message: str) -> None:
        label = self.labelled_summary if which == "labelled" else self.unlabelled_summary
        label.setText(f"<span style='color:#c62828'>{message}</span>")
        self.errorMessage.emit(message)

    def add_problem(self, text: str, which: str) -> None:
        self.problems.addItem(text)
        self.problems.item(self.problems.count() - 1).setData(Qt.ItemDataRole.UserRole, which)

    def shutdown(self) -> None:
        self._pool.waitForDone(10000)
