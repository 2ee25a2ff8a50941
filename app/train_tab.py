"""The Train tab: import data, choose a method and its settings, run `hc-studio train` as a
child process, follow it live (progress, ETA, loss and validation curves, log), stop or resume
it, and pick a trained model for the Measure and Batch tabs."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QObject, QProcess, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.events import (
    Done,
    Error,
    Event,
    ImportProblemEvent,
    Progress,
    Start,
    Status,
    Validation,
    read_events,
)
from ..core.training.methods import REGISTRY
from .runs import EVENTS_FILE, RunSummary, list_runs
from .settings import AppSettings
from .train_process import TrainProcess, train_arguments, train_command
from .workers import describe_error

CommandBuilder = Callable[[Sequence[str]], tuple[str, list[str]]]
LOSS_COLOURS = [(230, 90, 60), (60, 140, 230), (60, 180, 90), (200, 160, 40), (160, 90, 200)]
INIT_CURRENT, INIT_SCRATCH, INIT_FILE = "current", "scratch", "file"
# Asks the child's Python (torch lives there, never in the window) whether CUDA really works.
CUDA_PROBE = (
    "import json, torch\n"
    "ok = torch.cuda.is_available()\n"
    "print(json.dumps({'cuda': ok, 'name': torch.cuda.get_device_name(0) if ok else ''}))"
)


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def short_path(path: Path, keep: int = 2) -> str:
    """The last `keep` parts of a path, after "…/" when parts are left out."""
    parts = Path(path).parts
    return str(Path(path)) if len(parts) <= keep + 1 else "…/" + "/".join(parts[-keep:])


def _figure(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


class _ImportSignals(QObject):
    done = Signal(str, object)  # (which: "labelled"/"unlabelled", ImportResult)
    failed = Signal(str, str)  # (which, message)


class _ImportJob(QRunnable):
    """Checks a data folder with the core importer (pixels not kept) off the UI thread."""

    def __init__(self, which: str, folder: str, signals: _ImportSignals) -> None:
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

    def add_progress(self, event: Progress) -> None:
        for name, value in event.losses.items():
            if value is None or not math.isfinite(value) or name == "weight":
                continue  # "weight" is a ramp-up factor, not a loss
            xs, ys = self.loss_data.setdefault(name, ([], []))
            xs.append(event.iteration)
            ys.append(value)
            if name not in self._loss_curves:
                colour = LOSS_COLOURS[len(self._loss_curves) % len(LOSS_COLOURS)]
                self._loss_curves[name] = self.loss_plot.plot(
                    pen=pg.mkPen(colour, width=2), name=name
                )
            self._loss_curves[name].setData(xs, ys)

    def add_validation(self, event: Validation) -> None:
        self.validation.append((event.iteration, event.dice, event.hc_mae_mm))
        dice = [(i, d) for i, d, _ in self.validation if d is not None]
        hc = [(i, h) for i, _, h in self.validation if h is not None]
        self.dice_curve.setData([i for i, _ in dice], [d for _, d in dice])
        self.hc_curve.setData([i for i, _ in hc], [h for _, h in hc])


class TrainTab(QWidget):
    """Data, settings, live run, runs list. The run itself is a `TrainProcess`."""

    modelChosen = Signal(object)  # Path of the ONNX model to measure with
    runFinished = Signal(str)  # "done", "stopped", "failed"
    statusMessage = Signal(str)
    errorMessage = Signal(str)

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.process = TrainProcess(self)
        self.command_builder: CommandBuilder = train_command
        self._current_model: Path | None = None
        self._run_dir: Path | None = None
        self._live_run: RunSummary | None = None
        self._run_state = ""
        self._run_started_at = 0.0
        self._device_probe: QProcess | None = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._import_signals = _ImportSignals(self)
        self._import_signals.done.connect(self._on_import_done)
        self._import_signals.failed.connect(self._on_import_failed)
        self._build()
        self._connect()
        self.refresh_runs()

    # Construction ------------------------------------------------------------------------------
    def _build(self) -> None:
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self._build_data_box())
        top.addWidget(self._build_settings_box())
        top.addWidget(self._build_live_box())
        top.setStretchFactor(2, 1)
        top.setSizes([330, 330, 700])
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self._build_runs_box())
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        log_box = QGroupBox("Log")
        QVBoxLayout(log_box).addWidget(self.log)
        bottom.addWidget(log_box)
        bottom.setSizes([760, 600])
        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(top)
        main.addWidget(bottom)
        main.setSizes([470, 280])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(main)

    def _folder_row(self, placeholder: str) -> tuple[QLineEdit, QPushButton, QHBoxLayout]:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        button = QPushButton("Browse…")
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(button)
        return edit, button, row

    def _build_data_box(self) -> QGroupBox:
        box = QGroupBox("Data")
        layout = QVBoxLayout(box)
        self.labelled_edit, self.labelled_browse, row = self._folder_row(
            "HC18 folder, or a folder with images/ and masks/"
        )
        layout.addWidget(QLabel("Labelled frames"))
        layout.addLayout(row)
        self.labelled_summary = QLabel("–")
        self.labelled_summary.setWordWrap(True)
        layout.addWidget(self.labelled_summary)
        self.unlabelled_edit, self.unlabelled_browse, row = self._folder_row(
            "optional: frames without masks"
        )
        layout.addWidget(QLabel("Unlabelled frames"))
        layout.addLayout(row)
        self.unlabelled_summary = QLabel("–")
        self.unlabelled_summary.setWordWrap(True)
        layout.addWidget(self.unlabelled_summary)
        layout.addWidget(QLabel("Import problems (files left out)"))
        self.problems = QListWidget()
        layout.addWidget(self.problems, 1)
        return box

    def _build_settings_box(self) -> QGroupBox:
        box = QGroupBox("Method and settings")
        form = QFormLayout(box)
        self.method_combo = QComboBox()
        for name, entry in REGISTRY.items():
            self.method_combo.addItem(name, name)
            self.method_combo.setItemData(
                self.method_combo.count() - 1, entry.description, Qt.ItemDataRole.ToolTipRole
            )
        self.method_description = QLabel()
        self.method_description.setWordWrap(True)
        self.fraction = QDoubleSpinBox()
        self.fraction.setRange(0.01, 1.0)
        self.fraction.setSingleStep(0.05)
        self.fraction.setValue(1.0)
        self.fraction.setToolTip("Share of the labelled frames used with their masks")
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 1_000_000)
        self.iterations.setValue(2000)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 256)
        self.batch_size.setValue(8)
        self.height_spin, self.width_spin = QSpinBox(), QSpinBox()
        for spin, value in ((self.height_spin, 192), (self.width_spin, 288)):
            spin.setRange(16, 2048)
            spin.setSingleStep(16)
            spin.setValue(value)
        size_row = QHBoxLayout()
        size_row.addWidget(self.height_spin)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.width_spin)
        self.device_combo = QComboBox()
        self.device_combo.addItem("auto", "auto")
        self.device_combo.addItem("CPU", "cpu")
        self.device_label = QLabel("checking for CUDA…")
        self.device_label.setWordWrap(True)
        self.init_combo = QComboBox()
        self.init_combo.addItem("the model in use (fine-tune)", INIT_CURRENT)
        self.init_combo.addItem("from scratch", INIT_SCRATCH)
        self.init_combo.addItem("an ONNX file…", INIT_FILE)
        self.init_file: Path | None = None
        self.run_name = QLineEdit()
        self.run_name.setPlaceholderText("automatic (method and time)")
        self.runs_folder_label = QLabel()
        self.runs_folder_label.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )
        self.runs_folder_button = QPushButton("Change…")
        runs_row = QHBoxLayout()
        runs_row.addWidget(self.runs_folder_label, 1)
        runs_row.addWidget(self.runs_folder_button)
        self.start_button = QPushButton("Start training")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        form.addRow("Method", self.method_combo)
        form.addRow(self.method_description)
        form.addRow("Labelled fraction", self.fraction)
        form.addRow("Iterations", self.iterations)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Input size (H × W)", size_row)
        form.addRow("Device", self.device_combo)
        form.addRow(self.device_label)
        form.addRow("Starting weights", self.init_combo)
        form.addRow("Run name", self.run_name)
        form.addRow("Runs folder", runs_row)
        form.addRow(buttons)
        self._on_method_changed()
        self._show_runs_folder()
        return box

    def _build_live_box(self) -> QGroupBox:
        box = QGroupBox("Run")
        layout = QVBoxLayout(box)
        self.run_label = QLabel("No run going.")
        self.run_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.eta_label = QLabel("")
        self.plots = LivePlots()
        layout.addWidget(self.run_label)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.eta_label)
        layout.addLayout(row)
        layout.addWidget(self.plots, 1)
        return box

    def _build_runs_box(self) -> QGroupBox:
        box = QGroupBox("Trained models (runs)")
        layout = QVBoxLayout(box)
        self.runs_table = QTableWidget(0, 7)
        self.runs_table.setHorizontalHeaderLabels(
            ["Run", "Method", "State", "Iterations", "Dice", "HD95 (mm)", "HC error (mm)"]
        )
        self.runs_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.runs_table.verticalHeader().setVisible(False)
        header = self.runs_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.use_model_button = QPushButton("Use this model")
        self.use_model_button.setToolTip("Measure and Batch use this run's model from now on")
        self.resume_button = QPushButton("Resume")
        self.refresh_button = QPushButton("Refresh")
        buttons = QHBoxLayout()
        for button in (self.use_model_button, self.resume_button, self.refresh_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addWidget(self.runs_table, 1)
        layout.addLayout(buttons)
        self._runs: list[RunSummary] = []
        return box

    def _connect(self) -> None:
        self.labelled_browse.clicked.connect(lambda: self._choose_folder(self.labelled_edit))
        self.unlabelled_browse.clicked.connect(lambda: self._choose_folder(self.unlabelled_edit))
        self.labelled_edit.editingFinished.connect(lambda: self.import_folder("labelled"))
        self.unlabelled_edit.editingFinished.connect(lambda: self.import_folder("unlabelled"))
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        self.init_combo.activated.connect(self._on_init_chosen)
        self.runs_folder_button.clicked.connect(self._choose_runs_folder)
        self.start_button.clicked.connect(self.start_run)
        self.stop_button.clicked.connect(self.stop_run)
        self.use_model_button.clicked.connect(self.use_selected_model)
        self.resume_button.clicked.connect(self.resume_selected)
        self.refresh_button.clicked.connect(self.refresh_runs)
        self.runs_table.itemSelectionChanged.connect(self._on_run_selected)
        self.process.event.connect(self.handle_event)
        self.process.logLine.connect(self.append_log)
        self.process.finished.connect(self._on_process_finished)

    # Devices -----------------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(event)
        if self._device_probe is None:
            self.probe_devices()

    def probe_devices(self) -> None:
        """Ask a child Python whether torch can use CUDA; offer "CUDA" only if it can."""
        probe = QProcess(self)
        probe.finished.connect(lambda *_: self._on_probe_finished(probe))
        probe.errorOccurred.connect(lambda *_: self.device_label.setText("CPU only"))
        self._device_probe = probe
        probe.start(sys.executable, ["-c", CUDA_PROBE])

    def _on_probe_finished(self, probe: QProcess) -> None:
        output = bytes(probe.readAllStandardOutput()).decode(errors="replace").strip()
        try:
            answer = json.loads(output.splitlines()[-1]) if output else {}
        except ValueError:
            answer = {}
        if answer.get("cuda"):
            if self.device_combo.findData("cuda") < 0:
                self.device_combo.addItem(f"CUDA ({answer.get('name', 'GPU')})", "cuda")
            self.device_label.setText(f"CUDA available: {answer.get('name', 'GPU')}")
        elif "cuda" in answer:
            self.device_label.setText("No CUDA GPU found: training runs on the CPU")
        else:
            self.device_label.setText("PyTorch is not installed: training is not available")

    # Data --------------------------------------------------------------------------------------
    def _choose_folder(self, edit: QLineEdit) -> None:
        which = "labelled" if edit is self.labelled_edit else "unlabelled"
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
        self._pool.start(_ImportJob(which, folder, self._import_signals))

    def _on_import_done(self, which: str, result) -> None:
        if which == "labelled":
            patients = len({pair.patient for pair in result.pairs})
            calibrated = sum(pair.spacing.calibrated for pair in result.pairs)
            text = (
                f"{result.layout} layout: {len(result.pairs)} labelled frames of {patients} "
                f"patients, {calibrated} with a pixel size"
            )
            self.labelled_summary.setText(text)
        else:
            files = len({frame.image_path for frame in result.unlabelled})
            text = f"{len(result.unlabelled)} frames in {files} files"
            self.unlabelled_summary.setText(text)
        # Keep the other folder's problems; replace this folder's.
        for row in reversed(range(self.problems.count())):
            if self.problems.item(row).data(Qt.ItemDataRole.UserRole) == which:
                self.problems.takeItem(row)
        for problem in result.problems:
            self._add_problem(str(problem), which)
        if result.problems:
            self.statusMessage.emit(f"{len(result.problems)} file(s) left out: see the list")

    def _on_import_failed(self, which: str, message: str) -> None:
        label = self.labelled_summary if which == "labelled" else self.unlabelled_summary
        label.setText(f"<span style='color:#c62828'>{message}</span>")
        self.errorMessage.emit(message)

    def _add_problem(self, text: str, which: str) -> None:
        self.problems.addItem(text)
        self.problems.item(self.problems.count() - 1).setData(Qt.ItemDataRole.UserRole, which)

    # Settings ----------------------------------------------------------------------------------
    def _on_method_changed(self, *_args) -> None:
        name = self.method_combo.currentData()
        entry = REGISTRY.get(name)
        self.method_description.setText(entry.description if entry else "")

    def _on_init_chosen(self, index: int) -> None:
        if self.init_combo.itemData(index) != INIT_FILE:
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Starting weights", self.settings.last_folder("model"), "ONNX (*.onnx)"
        )
        if path:
            self.init_file = Path(path)
            self.init_combo.setItemText(index, f"ONNX: {self.init_file.name}")
        else:
            self.init_combo.setCurrentIndex(0)

    def set_current_model(self, path: str | Path | None) -> None:
        self._current_model = Path(path) if path else None

    def _init_weights(self) -> Path | None:
        choice = self.init_combo.currentData()
        if choice == INIT_CURRENT:
            return self._current_model
        if choice == INIT_FILE:
            return self.init_file
        return None

    def _show_runs_folder(self) -> None:
        folder = self.settings.runs_folder()
        self.runs_folder_label.setText(short_path(folder))
        self.runs_folder_label.setToolTip(str(folder))

    def _choose_runs_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Runs folder", str(self.settings.runs_folder())
        )
        if folder:
            self.settings.set_runs_folder(folder)
            self._show_runs_folder()
            self.refresh_runs()

    def _new_run_dir(self) -> Path:
        name = self.run_name.text().strip() or (
            f"{time.strftime('%Y%m%d-%H%M%S')}-{self.method_combo.currentData()}"
        )
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        folder = self.settings.runs_folder() / name
        suffix = 2
        while folder.exists():
            folder = self.settings.runs_folder() / f"{name}-{suffix}"
            suffix += 1
        return folder

    # Running -----------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.process.is_running()

    def start_run(self) -> bool:
        """Start a new run with the settings on screen; False (and a message) if it cannot."""
        labelled = self.labelled_edit.text().strip()
        if not labelled or not Path(labelled).is_dir():
            self.errorMessage.emit("Choose the folder of labelled frames first.")
            return False
        unlabelled = self.unlabelled_edit.text().strip() or None
        if unlabelled and not Path(unlabelled).is_dir():
            self.errorMessage.emit(
                f"{Path(unlabelled).name}: the unlabelled folder is not a folder"
            )
            return False
        run_dir = self._new_run_dir()
        arguments = train_arguments(
            labelled=labelled,
            unlabelled=unlabelled,
            run_dir=run_dir,
            method=self.method_combo.currentData(),
            labelled_fraction=self.fraction.value(),
            iterations=self.iterations.value(),
            batch_size=self.batch_size.value(),
            image_size=(self.height_spin.value(), self.width_spin.value()),
            device=self.device_combo.currentData(),
            init_onnx=self._init_weights(),
        )
        self.plots.clear()
        self._launch(run_dir, arguments)
        return True

    def resume_selected(self) -> bool:
        run = self.selected_run()
        if run is None:
            self.errorMessage.emit("Select a stopped run to resume.")
            return False
        return self.resume_run(run.folder)

    def resume_run(self, folder: str | Path) -> bool:
        """Continue a stopped run from its last checkpoint (the trainer keeps its settings)."""
        folder = Path(folder)
        self.replay_run(folder)
        device = self.device_combo.currentData()
        self._launch(folder, ["--out", str(folder), "--resume", "--device", device])
        return True

    def _launch(self, run_dir: Path, arguments: list[str]) -> None:
        if self.is_running():
            self.errorMessage.emit("A run is already going: stop it first.")
            return
        self._run_dir = run_dir
        self._run_state = ""
        self._run_started_at = time.monotonic()
        program, program_arguments = self.command_builder(arguments)
        self.append_log(f"$ hc-studio train {' '.join(arguments)}")
        self.process.start(program, program_arguments)
        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.run_label.setText(f"Starting {run_dir.name}…")
        self.progress.setRange(0, 0)

    def stop_run(self) -> None:
        if self.is_running():
            self.process.stop()
            self.stop_button.setEnabled(False)
            self.run_label.setText("Stopping: saving a checkpoint and the model…")

    # Events ------------------------------------------------------------------------------------
    def handle_event(self, event: Event, live: bool = True) -> None:
        """Show one training event (from the live child, or replayed from events.jsonl)."""
        # The trainer writes its own readable line for each event on stderr (shown in the log).
        if isinstance(event, Start):
            if live:
                self._live_run = RunSummary(
                    folder=self._run_dir or Path(event.run_dir),
                    method=event.method,
                    state="running",
                    iteration=event.start_iteration,
                    total_iterations=event.total_iterations,
                    dice=None,
                    hd95_mm=None,
                    hc_mae_mm=None,
                    model_path=None,
                )
                self.refresh_runs()
            self.progress.setRange(0, max(1, event.total_iterations))
            self.progress.setValue(event.start_iteration)
            counts = ", ".join(f"{v} {k}" for k, v in event.counts.items())
            self.run_label.setText(f"{event.method}: {counts}" if counts else event.method)
        elif isinstance(event, Status):
            self.run_label.setText(event.message)
        elif isinstance(event, Progress):
            self._on_progress(event)
        elif isinstance(event, Validation):
            self.plots.add_validation(event)
        elif isinstance(event, Done):
            self._on_done(event)
        elif isinstance(event, Error):
            self._run_state = "failed"
            self.run_label.setText(f"Failed: {event.message}")
            if live:
                self.errorMessage.emit(f"Training failed: {event.message}")
        elif isinstance(event, ImportProblemEvent) and live:
            self._add_problem(f"{Path(event.path).name}: {event.problem}", "run")

    def _on_progress(self, event: Progress) -> None:
        self._show_live_iteration(event.iteration, event.total_iterations)
        total = max(1, event.total_iterations)
        self.progress.setRange(0, total)
        self.progress.setValue(min(event.iteration, total))
        self.plots.add_progress(event)
        speed = f", {event.images_per_s:.1f} images/s" if event.images_per_s else ""
        self.eta_label.setText(f"ETA {format_duration(event.eta_s)}{speed}")
        stage = " (warm-up)" if event.stage == "warmup" else ""
        self.run_label.setText(f"Iteration {event.iteration} of {total}{stage}")

    def _show_live_iteration(self, iteration: int, total: int) -> None:
        """Keep the running run's row in the runs list up to date."""
        if not self.is_running():
            return
        for row, run in enumerate(self._runs):
            if run.folder == self._run_dir:
                item = self.runs_table.item(row, 3)
                if item is not None:
                    item.setText(f"{iteration} / {total}")

    def _on_done(self, event: Done) -> None:
        self._run_state = "stopped" if event.stopped_early else "done"
        self.progress.setValue(
            self.progress.maximum() if not event.stopped_early else event.iteration
        )
        self.eta_label.setText("")
        dice, hc_error = _figure(event.best_dice, 4), _figure(event.best_hc_mae_mm, 2)
        figures = f"best Dice {dice or '–'}, HC error {hc_error or '–'} mm"
        word = "Stopped" if event.stopped_early else "Done"
        self.run_label.setText(f"{word} at iteration {event.iteration}: {figures}")

    def _on_process_finished(self, exit_code: int, crashed: bool) -> None:
        state = self._run_state
        if not state:
            state = "stopped" if exit_code == 0 else "failed"
            if exit_code != 0:
                self.errorMessage.emit(
                    f"The training process ended with code {exit_code}: see the log"
                )
                self.run_label.setText(f"The training process ended with code {exit_code}.")
        self.append_log(f"process ended (code {exit_code}{', crashed' if crashed else ''})")
        self.start_button.setEnabled(True)
        self.resume_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.refresh_runs()
        self._select_run(self._run_dir)
        self.statusMessage.emit(f"Training {state}: {self._run_dir.name if self._run_dir else ''}")
        self.runFinished.emit(state)

    def append_log(self, line: str) -> None:
        scroll = self.log.verticalScrollBar()
        following = scroll.value() >= scroll.maximum() - 4
        self.log.appendPlainText(line)
        if following:  # keep the newest line in view unless the user scrolled up to read
            scroll.setValue(scroll.maximum())

    # Runs --------------------------------------------------------------------------------------
    def refresh_runs(self) -> None:
        self._runs = list_runs(self.settings.runs_folder())
        live = self._live_run if self.is_running() else None
        if live is not None and all(run.folder != live.folder for run in self._runs):
            # The child writes its events to stdout before its file: list the run anyway.
            self._runs.insert(0, live)
        table = self.runs_table
        table.setRowCount(len(self._runs))
        for row, run in enumerate(self._runs):
            iterations = f"{run.iteration} / {run.total_iterations}" if run.total_iterations else ""
            running = self.is_running() and run.folder == self._run_dir
            cells = [
                run.name,
                run.method,
                "running" if running else run.state,
                iterations,
                _figure(run.dice, 4),
                _figure(run.hd95_mm, 2),
                _figure(run.hc_mae_mm, 2),
            ]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 0:
                    item.setToolTip(str(run.folder) + (f"\n{run.message}" if run.message else ""))
                table.setItem(row, column, item)
        self._on_run_selected()

    def selected_run(self) -> RunSummary | None:
        rows = self.runs_table.selectionModel().selectedRows()
        return self._runs[rows[0].row()] if rows else None

    def _select_run(self, folder: Path | None) -> None:
        for row, run in enumerate(self._runs):
            if folder is not None and run.folder == folder:
                self.runs_table.selectRow(row)
                return

    def _on_run_selected(self) -> None:
        run = self.selected_run()
        self.use_model_button.setEnabled(run is not None and run.model_path is not None)
        self.resume_button.setEnabled(run is not None and run.resumable and not self.is_running())
        if run is not None and not self.is_running():
            self.replay_run(run.folder)

    def replay_run(self, folder: str | Path) -> None:
        """Show a finished or stopped run's curves from its events.jsonl."""
        self.plots.clear()
        path = Path(folder) / EVENTS_FILE
        try:
            events = read_events(path)
        except OSError:
            return
        for event in events:
            self.handle_event(event, live=False)

    def use_selected_model(self) -> None:
        run = self.selected_run()
        if run is None or run.model_path is None:
            self.errorMessage.emit("This run has no exported model (model.onnx).")
            return
        self.modelChosen.emit(run.model_path)
        self.statusMessage.emit(f"Measuring with {run.name}'s model from now on")

    # Closing -----------------------------------------------------------------------------------
    def confirm_close(self, ask: Callable[[], bool] | None = None) -> bool:
        """True when the window may close; with a run going, ask first, then stop it."""
        if not self.is_running():
            self._end_probe()
            return True
        ask = ask or self._ask_stop_on_close
        if not ask():
            return False
        self.process.stop()
        if not self.process.wait(self.process.stop_grace_ms):
            self.process.kill_and_wait()
        self._end_probe()
        return True

    def _ask_stop_on_close(self) -> bool:
        answer = QMessageBox.question(
            self,
            "A training run is going",
            "A training run is going. Stop it (its checkpoint and model are saved) and quit?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _end_probe(self) -> None:
        probe = self._device_probe
        if probe is not None and probe.state() != QProcess.ProcessState.NotRunning:
            probe.kill()
            probe.waitForFinished(2000)

    def shutdown(self) -> None:
        self.process.kill_and_wait()
        self._end_probe()
        self._pool.waitForDone(10000)
