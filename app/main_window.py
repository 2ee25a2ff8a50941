"""The main window: Measure, Batch and Train tabs, menus, status bar, remembered settings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
)

from ..core.inference import default_model_path
from ..core.session import MeasureSession
from ..core.session.autosave import default_state_dir
from .about import show_about
from .batch_tab import BatchTab
from .file_exports import FileExports
from .image_view import MOUSE_HELP
from .keys import install_text_field_keys
from .measure_extras import MeasureExtras
from .measure_tab import MeasureTab
from .session_keeper import SessionKeeper
from .settings import AppSettings
from .train_tab import TrainTab
from .workers import EngineHolder

DEFAULT_SIZE = (1280, 800)
MIN_SIZE = (800, 560)  # the window must fit a 1024x700 screen with its task bar
ERROR_SHOWN_MS = 15000
KEYS_HELP = (
    "Keys: PgDown / Right = next frame, PgUp / Left = previous frame, Enter or A = accept and "
    "next, R = reject and next, M = mask on/off, E = ellipse on/off, F = fit to window, W = reset "
    "window/level, C = calibrate with two points, Ctrl+Z / Ctrl+Shift+Z = undo / redo, "
    "Ctrl+R = reset to the automatic ellipse. Keys without Ctrl act only when no text field "
    "(such as the exam's GA by dates) has the focus. In a clip: Space plays/pauses, B jumps to "
    "the best frame."
)


class MainWindow(QMainWindow):
    """HC Studio's window. `model_override` (from --model) wins over the remembered model.

    One `MeasureSession` and one model engine serve every tab; the session is saved in
    `state_dir` (default: the per-user state folder) as it changes.
    """

    def __init__(
        self,
        settings: AppSettings | None = None,
        model_override: str | Path | None = None,
        pixel_size_mm: float | None = None,
        state_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.setWindowTitle("HC Studio")
        self.setAcceptDrops(True)
        self.setMinimumSize(*MIN_SIZE)
        self.session = MeasureSession()
        self.engines = EngineHolder()
        self.keeper = SessionKeeper(self.session, state_dir or default_state_dir(), self)
        self.measure_tab = MeasureTab(self.settings, self.session, self.engines)
        self.measure_extras = MeasureExtras(self.measure_tab)  # cine, caliper, exams
        self.exports = FileExports(
            self,
            self.session,
            self.engines,
            self.settings,
            exams=self.measure_extras.exams.refresh,
            chosen=self.measure_extras.exams.chosen_frames,
        )
        self.batch_tab = BatchTab(self.settings, self.session, self.engines)
        self.train_tab = TrainTab(self.settings)
        self._text_field_keys = install_text_field_keys(self)
        self._discarded = False
        self.tabs = QTabWidget()
        self.tabs.addTab(self.measure_tab, "Measure")
        self.tabs.addTab(self.batch_tab, "Batch")
        self.tabs.addTab(self.train_tab, "Train")
        self.setCentralWidget(self.tabs)
        self.model_label = QLabel()
        # A timer owned by the window: it dies with it (a bare singleShot could outlive it).
        self._error_style_timer = QTimer(self)
        self._error_style_timer.setSingleShot(True)
        self._error_style_timer.timeout.connect(lambda: self.statusBar().setStyleSheet(""))
        self.statusBar().addPermanentWidget(self.model_label)
        self._build_menus()
        self._connect()
        self.keeper.load()  # the remembered calibration; saved frames wait for offer_saved_session
        if pixel_size_mm is not None:
            self.session.set_pixel_size(pixel_size_mm)
        self._model_override = Path(model_override) if model_override else None
        self.apply_model(self._model_override or self.settings.model_path(), remember=False)
        self._restore_geometry()

    # Construction ------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        actions = self.measure_tab.actions
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([actions["open"], actions["open_folder"]])
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([actions["export_csv"], actions["export_hc18"], actions["save_png"]])
        file_menu.addSeparator()
        file_menu.addActions(self.exports.actions())
        file_menu.addAction(self.exports.set_operator)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        edit_menu = bar.addMenu("&Edit")
        edit_menu.addActions([actions["undo"], actions["redo"]])
        edit_menu.addSeparator()
        edit_menu.addActions([actions["reset"], actions["copy"]])

        view_menu = bar.addMenu("&View")
        view_menu.addActions([actions["toggle_mask"], actions["toggle_ellipse"]])
        view_menu.addSeparator()
        view_menu.addActions([actions["fit"], actions["reset_levels"]])

        frame_menu = bar.addMenu("F&rame")
        frame_menu.addActions(
            [actions["accept"], actions["reject"], actions["next"], actions["previous"]]
        )
        frame_menu.addSeparator()
        frame_menu.addActions(
            [
                actions["calibrate"],
                actions["cancel_calibration"],
                actions["pixel_size"],
                actions["pixel_size_all"],
                actions["pixel_csv"],
            ]
        )

        model_menu = bar.addMenu("&Model")
        choose = QAction("&Choose model file…", self)
        choose.triggered.connect(self.choose_model)
        shipped = QAction("Use the &shipped model", self)
        shipped.triggered.connect(lambda: self.apply_model(None, remember=True))
        model_menu.addActions([choose, shipped])
        device_menu = model_menu.addMenu("Inference &device")
        self.device_actions = QActionGroup(self)
        for device, text in (
            ("auto", "&Automatic (CUDA when it works)"),
            ("cpu", "&CPU"),
            ("cuda", "C&UDA (fails if not available)"),
        ):
            action = device_menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(self.settings.device() == device)
            action.setData(device)
            self.device_actions.addAction(action)
        self.device_actions.triggered.connect(self._on_device_chosen)

        help_menu = bar.addMenu("&Help")
        mouse_help = QAction("&Mouse and keys", self)
        mouse_help.triggered.connect(self.show_mouse_help)
        about = QAction("&About HC Studio", self)
        about.triggered.connect(lambda: show_about(self, self.current_model_path()))
        help_menu.addActions([mouse_help, about])
        self._measure_only_actions = [
            # Undo/redo keep the state their undo group gives them.
            a
            for name, a in actions.items()
            if name not in ("open", "open_folder", "undo", "redo")
        ]

    def _connect(self) -> None:
        self.measure_tab.statusMessage.connect(self.show_status)
        self.measure_tab.frameMeasured.connect(self._update_model_label)
        self.measure_tab.errorMessage.connect(self.show_error)
        self.batch_tab.statusMessage.connect(self.show_status)
        self.batch_tab.errorMessage.connect(self.show_error)
        self.batch_tab.openFrame.connect(self.open_in_measure)
        self.train_tab.statusMessage.connect(self.show_status)
        self.train_tab.errorMessage.connect(self.show_error)
        self.train_tab.modelChosen.connect(lambda path: self.apply_model(path, remember=True))
        self.keeper.problem.connect(self.show_error)
        self.tabs.currentChanged.connect(self._on_tab_changed)

    def _restore_geometry(self) -> None:
        geometry = self.settings.window_geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            screen = self.screen().availableGeometry()
            self.resize(min(DEFAULT_SIZE[0], screen.width()), min(DEFAULT_SIZE[1], screen.height()))
        self.tabs.setCurrentIndex(min(self.settings.current_tab(), self.tabs.count() - 1))
        self._on_tab_changed(self.tabs.currentIndex())

    # Model -------------------------------------------------------------------------------------
    def current_model_path(self) -> Path | None:
        return self.engines.model_path

    def apply_model(self, path: str | Path | None, remember: bool) -> None:
        """Measure (and batch) with `path`, or the shipped model for None."""
        if remember:
            self.settings.set_model_path(path)
            self._model_override = None
        if path is None:
            try:
                path = default_model_path()
            except ValueError as error:
                self.show_error(str(error))
                path = None
        self.engines.configure(path, self.settings.device())  # one engine for every tab
        self.measure_tab.model_changed()
        self.train_tab.set_current_model(path)
        self._update_model_label()

    def _update_model_label(self, *_args) -> None:
        path = self.current_model_path()
        if path is None:
            self.model_label.setText("No model: Model > Choose model file…, or train one")
            self.model_label.setStyleSheet("color: #c62828; font-weight: bold;")
            return
        provider = self.engines.provider
        device = {"CUDAExecutionProvider": "CUDA", "CPUExecutionProvider": "CPU"}.get(
            provider or "", provider
        )
        self.model_label.setText(f"Model: {path.name}" + (f" ({device})" if device else ""))
        self.model_label.setStyleSheet("")
        self.model_label.setToolTip(str(path))

    def _on_device_chosen(self, action: QAction) -> None:
        self.settings.set_device(str(action.data()))
        self.apply_model(self.current_model_path(), remember=False)

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose an ONNX model", self.settings.last_folder("model"), "ONNX (*.onnx)"
        )
        if path:
            self.settings.set_last_folder("model", path)
            self.apply_model(path, remember=True)

    # Messages ----------------------------------------------------------------------------------
    def show_status(self, message: str) -> None:
        self.statusBar().setStyleSheet("")
        self.statusBar().showMessage(message, 8000)

    def show_error(self, message: str) -> None:
        """Errors stay in the status bar, in red, long enough to be read."""
        self.statusBar().setStyleSheet("QStatusBar { color: #c62828; font-weight: bold; }")
        self.statusBar().showMessage(message, ERROR_SHOWN_MS)
        self._error_style_timer.start(ERROR_SHOWN_MS)

    def show_mouse_help(self) -> None:
        QMessageBox.information(self, "Mouse and keys", f"{MOUSE_HELP}\n\n{KEYS_HELP}")

    # Opening -----------------------------------------------------------------------------------
    def open_paths(self, paths: list[str | Path]) -> None:
        self.tabs.setCurrentWidget(self.measure_tab)
        self.measure_tab.open_paths(paths)

    def open_in_measure(self, path: str, index: int) -> None:
        """Show a frame from the batch table in the Measure tab (opening its file if needed)."""
        self.tabs.setCurrentWidget(self.measure_tab)
        key = (str(Path(path).expanduser().absolute()), int(index))
        if key in self.measure_tab.frame_list:
            self.measure_tab.select_frame(key)
            return
        self.measure_tab.open_then_select(path, key)

    def _fill_recent_menu(self) -> None:
        menu: QMenu = self.recent_menu
        menu.clear()
        recent = self.settings.recent_files()
        for path in recent:
            action = menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        if not recent:
            menu.addAction("(none)").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear list", self.settings.clear_recent_files)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt naming)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt naming)
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # Tabs and closing --------------------------------------------------------------------------
    def _on_tab_changed(self, index: int) -> None:
        on_measure = self.tabs.widget(index) is self.measure_tab
        for action in self._measure_only_actions:
            action.setEnabled(on_measure)
        if on_measure:
            self.measure_tab.refresh_actions()

    # The saved session -------------------------------------------------------------------------
    def offer_saved_session(self) -> bool:
        """Offer back the frames of the last session (if any were saved); True if restored."""
        if self.keeper.pending is None:
            return False
        files, measured, decided = self.keeper.pending_summary()
        answer = QMessageBox.question(
            self,
            "Restore the last session?",
            f"The last session had {files} file(s), {measured} frame(s) measured and {decided} "
            "accepted or rejected. Open it again with its edits and decisions?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        restore = answer == QMessageBox.StandardButton.Yes
        self.keeper.resolve(restore)
        if restore:
            self.tabs.setCurrentWidget(self.measure_tab)
            self.measure_tab.show_session()
        return restore

    def _confirm_unexported(self) -> bool:
        """Quitting with decisions no export holds yet: Save (export), Discard, or Cancel."""
        count = self.session.unexported_decisions()
        if count == 0:
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self,
            "Decisions not exported",
            f"{count} frame(s) were accepted or rejected since the last export. Export the "
            "accepted frames to a CSV before quitting?",
            buttons.Save | buttons.Discard | buttons.Cancel,
            buttons.Save,
        )
        if answer == buttons.Discard:
            self._discarded = True  # saved without frames on closing: the calibration stays
            return True
        if answer != buttons.Save:
            return False
        if not self.session.accepted_records():
            return True  # only rejections: nothing to write, the saved session keeps them
        return self.measure_tab.export_accepted_csv() > 0

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        self._discarded = False
        if not self._confirm_unexported() or not self.train_tab.confirm_close():
            event.ignore()
            return
        self.batch_tab.cancel()
        self.settings.set_window_geometry(self.saveGeometry())
        self.settings.set_current_tab(self.tabs.currentIndex())
        self.settings.sync()
        self.measure_tab.shutdown()
        self.batch_tab.shutdown()
        self.keeper.save_now(with_frames=not self._discarded)
        event.accept()
