"""The Train tab: import data, choose a method and its settings, run `hc-studio train` as a
child process, follow it live (progress, ETA, loss and validation curves, log), stop or resume
it, and pick a trained model for the Measure and Batch tabs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
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

from ..core import cli
from ..core.events import Error, Event, ImportProblemEvent, Progress, Start, read_events
from ..core.run_folder import RunFolder, RunSummary, list_runs
from ..core.training.methods import REGISTRY
from ..core.training_session import (
    RUN_COLUMNS,
    LiveRun,
    TrainForm,
    finished_state,
    new_run_dir,
    resume_arguments,
    run_row,
    short_path,
)
from .promotion import PromotionController
from .settings import AppSettings
from .train_parts import DataBox, DeviceProbe, LivePlots
from .train_process import TrainProcess, train_command

__all__ = ["LivePlots", "TrainTab", "short_path"]

CommandBuilder = Callable[[Sequence[str]], tuple[str, list[str]]]
INIT_CURRENT, INIT_SCRATCH, INIT_FILE = "current", "scratch", "file"


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
        self.live = LiveRun()
        # Why training cannot run here (a build without it, no torch), or None.
        self.unavailable = cli.training_unavailable()
        self._run_started_at = 0.0
        self._device_probe: DeviceProbe | None = None
        self.promotion = PromotionController(self, self.settings.runs_folder)
        self._build()
        self._connect()
        self.refresh_runs()

    # Construction ------------------------------------------------------------------------------
    def _build(self) -> None:
        top = QSplitter(Qt.Orientation.Horizontal)
        self.data_box = DataBox(self.settings)
        self._expose_data_box()
        top.addWidget(self.data_box)
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
        defaults = TrainForm()
        self.fraction.setValue(defaults.labelled_fraction)
        self.fraction.setToolTip("Share of the labelled frames used with their masks")
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 1_000_000)
        self.iterations.setValue(defaults.iterations)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 256)
        self.batch_size.setValue(defaults.batch_size)
        self.height_spin, self.width_spin = QSpinBox(), QSpinBox()
        for spin, value in zip((self.height_spin, self.width_spin), defaults.image_size):
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
        if self.unavailable:  # say so where the settings are, and offer no start
            self.device_label.setText(self.unavailable)
            self.start_button.setEnabled(False)
            self.start_button.setToolTip(self.unavailable)
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
        self.runs_table = QTableWidget(0, len(RUN_COLUMNS))
        self.runs_table.setHorizontalHeaderLabels(list(RUN_COLUMNS))
        self.runs_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.runs_table.verticalHeader().setVisible(False)
        header = self.runs_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.use_model_button = QPushButton("Use this model")
        self.use_model_button.setToolTip(
            "Compare this run's model with the model in use on the run's held-out frames, "
            "then measure with it (Measure and Batch)"
        )
        self.previous_model_button = QPushButton("Use previous model")
        self.resume_button = QPushButton("Resume")
        self.refresh_button = QPushButton("Refresh")
        buttons = QHBoxLayout()
        for button in (
            self.use_model_button,
            self.previous_model_button,
            self.resume_button,
            self.refresh_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addWidget(self.runs_table, 1)
        layout.addLayout(buttons)
        self._runs: list[RunSummary] = []
        return box

    def _connect(self) -> None:
        self.data_box.statusMessage.connect(self.statusMessage)
        self.data_box.errorMessage.connect(self.errorMessage)
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        self.init_combo.activated.connect(self._on_init_chosen)
        self.runs_folder_button.clicked.connect(self._choose_runs_folder)
        self.start_button.clicked.connect(self.start_run)
        self.stop_button.clicked.connect(self.stop_run)
        self.use_model_button.clicked.connect(self.use_selected_model)
        self.previous_model_button.clicked.connect(self.promotion.use_previous)
        self.promotion.modelChosen.connect(self.modelChosen)
        self.promotion.statusMessage.connect(self.statusMessage)
        self.promotion.errorMessage.connect(self.errorMessage)
        self.promotion.historyChanged.connect(
            lambda: self.previous_model_button.setEnabled(
                self.promotion.previous_model() is not None
            )
        )
        self.resume_button.clicked.connect(self.resume_selected)
        self.refresh_button.clicked.connect(self.refresh_runs)
        self.runs_table.itemSelectionChanged.connect(self._on_run_selected)
        self.process.event.connect(self.handle_event)
        self.process.logLine.connect(self.append_log)
        self.process.finished.connect(self._on_process_finished)

    # Devices -----------------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(event)
        if self._device_probe is None and self.unavailable is None:
            self.probe_devices()

    def probe_devices(self) -> None:
        """Ask a child Python whether torch can use CUDA; offer "CUDA" only if it can."""
        self._device_probe = DeviceProbe(self)
        self._device_probe.answered.connect(self._on_probe_answered)
        self._device_probe.start()

    def _on_probe_answered(self, text: str, cuda_name: str | None) -> None:
        if cuda_name is not None and self.device_combo.findData("cuda") < 0:
            self.device_combo.addItem(f"CUDA ({cuda_name})", "cuda")
        self.device_label.setText(text)

    # Data --------------------------------------------------------------------------------------
    def _expose_data_box(self) -> None:
        """The data box's fields under the tab's names (what the tab and its tests use)."""
        box = self.data_box
        self.labelled_edit, self.unlabelled_edit = box.labelled_edit, box.unlabelled_edit
        self.labelled_summary, self.unlabelled_summary = (
            box.labelled_summary,
            box.unlabelled_summary,
        )
        self.problems, self._import_signals = box.problems, box.import_signals
        self.import_folder = box.import_folder

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

    def form(self) -> TrainForm:
        """The settings form's values."""
        return TrainForm(
            labelled=self.labelled_edit.text(),
            unlabelled=self.unlabelled_edit.text(),
            method=self.method_combo.currentData(),
            labelled_fraction=self.fraction.value(),
            iterations=self.iterations.value(),
            batch_size=self.batch_size.value(),
            image_size=(self.height_spin.value(), self.width_spin.value()),
            device=self.device_combo.currentData(),
            init_weights=self._init_weights(),
            adapt=self.init_combo.currentData() == INIT_CURRENT,
        )

    # Running -----------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.process.is_running()

    def start_run(self) -> bool:
        """Start a new run with the settings on screen; False (and a message) if it cannot."""
        form = self.form()
        problem = self.unavailable or form.problem()
        if problem:
            self.errorMessage.emit(problem)
            return False
        run_dir = new_run_dir(self.settings.runs_folder(), self.run_name.text(), form.method)
        self.plots.clear()
        self._launch(run_dir, form.arguments(run_dir))
        return True

    def resume_selected(self) -> bool:
        run = self.selected_run()
        if run is None:
            self.errorMessage.emit("Select a stopped run to resume.")
            return False
        return self.resume_run(run.folder)

    def resume_run(self, folder: str | Path) -> bool:
        """Continue a stopped run from its last checkpoint (the trainer keeps its settings)."""
        if self.unavailable:
            self.errorMessage.emit(self.unavailable)
            return False
        folder = Path(folder)
        self.replay_run(folder)
        self._launch(folder, resume_arguments(folder, self.device_combo.currentData()))
        return True

    def _launch(self, run_dir: Path, arguments: list[str]) -> None:
        if self.is_running():
            self.errorMessage.emit("A run is already going: stop it first.")
            return
        self._run_dir = run_dir
        self.live = LiveRun(folder=run_dir, headline=f"Starting {run_dir.name}…")
        self._run_started_at = time.monotonic()
        program, program_arguments = self.command_builder(arguments)
        self.append_log(f"$ hc-studio train {' '.join(arguments)}")
        self.process.start(program, program_arguments)
        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.run_label.setText(self.live.headline)
        self.progress.setRange(0, 0)

    def stop_run(self) -> None:
        if self.is_running():
            self.process.stop()
            self.stop_button.setEnabled(False)
            self.run_label.setText("Stopping: saving a checkpoint and the model…")

    # Events ------------------------------------------------------------------------------------
    def handle_event(self, event: Event, live: bool = True) -> None:
        """Show one training event (from the live child, or replayed from the run's events)."""
        # The trainer writes its own readable line for each event on stderr (shown in the log).
        self.live.apply(event)
        if isinstance(event, Start):
            if live:
                self.refresh_runs()
            self.progress.setRange(0, max(1, event.total_iterations))
            self.progress.setValue(event.start_iteration)
        elif isinstance(event, Progress):
            self.progress.setRange(0, self.live.total_iterations)
            self.progress.setValue(self.live.iteration)
            self._show_live_iteration()
        elif isinstance(event, Error) and live:
            self.errorMessage.emit(f"Training failed: {event.message}")
        elif isinstance(event, ImportProblemEvent) and live:
            self.data_box.add_problem(self.live.import_problems[-1], "run")
        if self.live.state and self.progress.maximum() > 0:
            self.progress.setValue(self.live.iteration)
        self.run_label.setText(self.live.headline)
        self.eta_label.setText(self.live.eta_text)
        self.plots.draw(self.live)

    def _show_live_iteration(self) -> None:
        """Keep the running run's row in the runs list up to date."""
        if not self.is_running():
            return
        for row, run in enumerate(self._runs):
            if run.folder == self._run_dir:
                item = self.runs_table.item(row, 3)
                if item is not None:
                    item.setText(f"{self.live.iteration} / {self.live.total_iterations}")

    def _on_process_finished(self, exit_code: int, crashed: bool) -> None:
        state, message = finished_state(self.live.state, exit_code)
        if message:
            self.errorMessage.emit(message)
            self.run_label.setText(f"The training process ended with code {exit_code}.")
        self.append_log(f"process ended (code {exit_code}{', crashed' if crashed else ''})")
        self.start_button.setEnabled(self.unavailable is None)
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
        live = self.live.summary() if self.is_running() else None
        if live is not None and all(run.folder != live.folder for run in self._runs):
            # The child writes its events to stdout before its file: list the run anyway.
            self._runs.insert(0, live)
        table = self.runs_table
        table.setRowCount(len(self._runs))
        for row, run in enumerate(self._runs):
            running = self.is_running() and run.folder == self._run_dir
            for column, text in enumerate(run_row(run, running)):
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
        self.previous_model_button.setEnabled(self.promotion.previous_model() is not None)
        self.resume_button.setEnabled(
            run is not None and run.resumable and not self.is_running() and not self.unavailable
        )
        if run is not None and not self.is_running():
            self.replay_run(run.folder)

    def replay_run(self, folder: str | Path) -> None:
        """Show a finished or stopped run's curves from its events file."""
        self.plots.clear()
        try:
            events = read_events(RunFolder(folder).events_file)
        except (OSError, UnicodeDecodeError):
            return
        self.live = LiveRun(folder=Path(folder))
        try:
            for event in events:
                self.handle_event(event, live=False)
        except (TypeError, ValueError):  # events of the wrong types: the list says unreadable
            self.plots.clear()

    def use_selected_model(self) -> None:
        """Propose the selected run's model (a finished, validated run's): it is compared with
        the model in use on the run's held-out frames before it may be used (`promotion`)."""
        run = self.selected_run()
        refusal = "Select a run first." if run is None else run.refusal_to_use()
        if refusal:
            QMessageBox.warning(self, "This model is not used", refusal)
            self.errorMessage.emit(refusal)
            return
        self.promotion.propose(run, self._current_model, self.device_combo.currentData())

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
        if self._device_probe is not None:
            self._device_probe.end()

    def shutdown(self) -> None:
        self.process.kill_and_wait()
        self.promotion.pool.waitForDone(30000)
        self._end_probe()
        self.data_box.shutdown()
