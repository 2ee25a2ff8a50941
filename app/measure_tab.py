"""The Measure tab: open frames, see the automatic ellipse, edit it, decide, export.

A view over the Qt-free `core.session.MeasureSession` (frames, records, decisions, undo,
calibration); measuring runs on a worker thread (`workers.InferenceService`). This module only
shows the session and forwards what the person does to it.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core.ellipse import Ellipse
from ..core.io import Frame
from ..core.records import MeasurementRecord
from ..core.session import Decision, FrameEntry, MeasureSession, status_word
from ..core.session.frames import FrameState, frame_state, status_text
from ..core.spacing import Spacing
from .formatting import format_length
from .frame_list import FrameList
from .image_view import FrameView
from .measure_calibration import CalibrationCommands
from .measure_output import MeasureOutputs
from .results_panel import ResultsPanel
from .settings import AppSettings
from .workers import EngineHolder, FileLister, FrameKey, InferenceService, ListedFile

FRAME_CACHE_SIZE = 32
UNCALIBRATED_QUESTION = (
    "This frame has no pixel size: its values are in pixels, not millimetres, and it has no "
    "gestational age.\n\nAccept it in pixels anyway?"
)


class MeasureTab(CalibrationCommands, MeasureOutputs, QWidget):
    """Frame list | frame view with overlays and cine scrubber | values and decisions."""

    frameMeasured = Signal(object)  # key, once a frame has a result (or failed)
    frameDisplayed = Signal(object)  # key, whenever the frame on screen or its values change
    filesOpened = Signal(int)  # number of frames added
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
        self.service = InferenceService(engines, self)
        self.lister = FileLister(self)
        self._frames: OrderedDict[FrameKey, Frame] = OrderedDict()  # pixels on screen, a cache
        self._current: FrameKey | None = None
        self._pending_select = False
        self._selecting = False
        self._select_after_listing: FrameKey | None = None

        self.frame_list = FrameList()
        self.view = FrameView()
        self.panel = ResultsPanel()
        self._build_controls()
        self._build_layout()
        self._build_actions()
        self._connect()
        self._restore_overlays()

    # Construction ------------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setToolTip("Cine: drag to move through the frames (PgUp/PgDown, arrows)")
        self.frame_label = QLabel("")
        self.open_button = QPushButton("Open files…")
        self.open_folder_button = QPushButton("Open folder…")
        self.mask_check = QCheckBox("Mask (M)")
        self.ellipse_check = QCheckBox("Ellipse (E)")
        self.axes_check = QCheckBox("BPD/OFD axes")
        self.mask_opacity = _opacity_slider("Mask opacity")
        self.lines_opacity = _opacity_slider("Ellipse and axes opacity")
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Fit the frame to the window (or double-click the image)")
        self.levels_button = QPushButton("Reset W/L")
        self.levels_button.setToolTip("Reset window/level (right-drag on the image changes it)")
        self.cursor_label = QLabel("")
        # Never wider than the window: the window must fit a 1024x700 screen.
        self.cursor_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.file_label = QLabel("Open frames: File > Open, or drop files here")
        self.file_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def _build_layout(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.frame_list)
        open_row = QHBoxLayout()
        open_row.addWidget(self.open_button)
        open_row.addWidget(self.open_folder_button)
        left_layout.addLayout(open_row)

        # Two short rows rather than one long one: the window must fit a 1024-pixel screen.
        overlay_row = QHBoxLayout()
        for widget in (self.mask_check, self.mask_opacity, self.ellipse_check, self.axes_check):
            overlay_row.addWidget(widget)
        overlay_row.addWidget(self.lines_opacity)
        overlay_row.addStretch(1)
        view_row = QHBoxLayout()
        view_row.addWidget(self.fit_button)
        view_row.addWidget(self.levels_button)
        view_row.addWidget(self.cursor_label, 1)
        cine_row = QHBoxLayout()
        cine_row.addWidget(self.frame_label)
        cine_row.addWidget(self.scrubber, 1)
        centre = QWidget()
        self.centre_layout = centre_layout = QVBoxLayout(centre)  # more rows go in here
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.file_label)
        centre_layout.addWidget(self.view, 1)
        centre_layout.addLayout(cine_row)
        centre_layout.addLayout(overlay_row)
        centre_layout.addLayout(view_row)

        self.splitter = splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(centre)
        splitter.addWidget(self.panel)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([290, 680, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self._set_scrubber(None)

    def _action(self, text: str, slot, shortcuts=(), tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.actions = {
            "open": a("&Open files…", self.choose_files, [QKeySequence.StandardKey.Open]),
            "open_folder": a("Open &folder…", self.choose_folder, ["Ctrl+Shift+O"]),
            "export_csv": a("&Export accepted to CSV…", self.export_accepted_csv, ["Ctrl+E"]),
            "export_hc18": a("Export accepted as HC18 &submission…", self.export_hc18),
            "save_png": a("Save view as &PNG…", self.save_view_png, ["Ctrl+Shift+S"]),
            "copy": a("&Copy values", self.copy_values, ["Ctrl+Shift+C"]),
            "reset": a("&Reset to automatic", self.reset_current, ["Ctrl+R"]),
            "accept": a("&Accept and next", self.accept_current, ["Return", "Enter", "A"]),
            "reject": a("Re&ject and next", self.reject_current, ["R"]),
            "next": a("&Next frame", lambda: self.step(1), ["PgDown", "Right"]),
            "previous": a("&Previous frame", lambda: self.step(-1), ["PgUp", "Left"]),
            "toggle_mask": a("Show &mask", self.mask_check.toggle, ["M"]),
            "toggle_ellipse": a("Show &ellipse", self.ellipse_check.toggle, ["E"]),
            "fit": a("&Fit to window", self.view.fit_to_window, ["F"]),
            "reset_levels": a("Reset &window/level", self.view.reset_levels, ["W"]),
            "calibrate": a("&Calibrate with two points…", self.start_calibration, ["C"]),
            "pixel_size": a("Pixel size for this &file…", self.ask_pixel_size),
            "pixel_size_all": a("Pixel size for &all files…", self.ask_pixel_size_all),
            "pixel_csv": a("Load pixel-size &CSV…", self.choose_pixel_csv),
            "cancel_calibration": a("Cancel calibration", self.cancel_calibration, ["Esc"]),
        }
        undo = a("&Undo", lambda: self.session.undo.undo(), [QKeySequence("Ctrl+Z")])
        redo = a("&Redo", lambda: self.session.undo.redo(), ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.actions["undo"], self.actions["redo"] = undo, redo
        self.session.undo.listeners.append(self._update_undo_actions)
        self._update_undo_actions()
        for name in ("toggle_mask", "toggle_ellipse"):
            self.actions[name].setCheckable(True)

    def _connect(self) -> None:
        self.frame_list.frameSelected.connect(self.select_frame)
        self.scrubber.valueChanged.connect(self._on_scrubbed)
        self.open_button.clicked.connect(self.choose_files)
        self.open_folder_button.clicked.connect(self.choose_folder)
        for check in (self.mask_check, self.ellipse_check, self.axes_check):
            check.toggled.connect(self._on_overlays_changed)
        self.mask_opacity.valueChanged.connect(self._on_overlays_changed)
        self.lines_opacity.valueChanged.connect(self._on_overlays_changed)
        self.mask_check.toggled.connect(self.actions["toggle_mask"].setChecked)
        self.ellipse_check.toggled.connect(self.actions["toggle_ellipse"].setChecked)
        self.fit_button.clicked.connect(self.view.fit_to_window)
        self.levels_button.clicked.connect(self.view.reset_levels)
        self.view.cursorMoved.connect(self._on_cursor)
        self.view.pointsPicked.connect(self._on_calibration_points)
        self.view.editor.ellipseChanged.connect(self._on_ellipse_dragged)
        self.view.editor.editFinished.connect(self._on_edit_finished)
        panel = self.panel
        panel.accept_button.clicked.connect(self.accept_current)
        panel.reject_button.clicked.connect(self.reject_current)
        panel.reset_button.clicked.connect(self.reset_current)
        panel.copy_button.clicked.connect(self.copy_values)
        panel.pixel_size_button.clicked.connect(self.ask_pixel_size)
        panel.calibrate_button.clicked.connect(self.start_calibration)
        signals = self.service.signals
        signals.frameLoaded.connect(self._on_frame_loaded)
        signals.measured.connect(self._on_measured)
        signals.failed.connect(self._on_read_failed)
        signals.measureFailed.connect(self._on_measure_failed)
        signals.skipped.connect(self._on_skipped)
        self.lister.signals.listed.connect(self._on_files_listed)
        self.lister.signals.failed.connect(self.errorMessage.emit)
        self.view.pickedOutside.connect(
            lambda: self.errorMessage.emit("Calibration points must lie on the image.")
        )
        self.session.frame_listeners.append(self._on_frame_changed)
        self.session.calibration.listeners.append(self._on_calibration_changed)

    def _restore_overlays(self) -> None:
        s = self.settings
        # Read everything first: each widget change below saves all of them.
        visible = {name: s.overlay_visible(name) for name in ("mask", "ellipse", "axes")}
        opacity = {name: s.overlay_opacity(name) for name in ("mask", "lines")}
        self.mask_check.setChecked(visible["mask"])
        self.ellipse_check.setChecked(visible["ellipse"])
        self.axes_check.setChecked(visible["axes"])
        self.mask_opacity.setValue(round(opacity["mask"] * 100))
        self.lines_opacity.setValue(round(opacity["lines"] * 100))
        self._on_overlays_changed()

    # Model -------------------------------------------------------------------------------------
    def model_changed(self) -> None:
        """The shared engine now loads another model: frames not edited or decided are measured
        again."""
        self.service.generation += 1  # results of the old model still on their way are dropped
        self.session.model_changed()
        if self._current is not None:
            self._show_current()

    # Opening -----------------------------------------------------------------------------------
    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self,
            "Open frames",
            self.settings.last_folder("open"),
            "Ultrasound frames (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.dcm *.dicom *.mp4 *.avi "
            "*.mov *.mkv);;All files (*)",
        )
        if paths:
            self.open_paths(paths)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open a folder of frames", self.settings.last_folder("open")
        )
        if folder:
            self.open_paths([folder])

    def open_paths(self, paths: list[str | Path]) -> None:
        """Add files and folders (expanded in the background) and show the first new frame."""
        # Absolute: the saved session must find them again from any working folder.
        paths = [str(Path(p).expanduser().absolute()) for p in paths]
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            self.errorMessage.emit("Not found: " + ", ".join(Path(p).name for p in missing))
        existing = [p for p in paths if Path(p).exists()]
        if not existing:
            return
        for path in existing:
            self.settings.add_recent_file(path)
        self.settings.set_last_folder("open", existing[0])
        self._pending_select = True
        self.statusMessage.emit("Reading " + ", ".join(Path(p).name for p in existing) + "…")
        self.lister.list_paths(existing)

    def open_then_select(self, path: str | Path, key: FrameKey) -> None:
        """Open `path` and show frame `key` of it once listed (e.g. from the Batch tab)."""
        self._select_after_listing = (str(Path(key[0]).expanduser().absolute()), int(key[1]))
        self.open_paths([path])

    def _on_files_listed(self, files: list[ListedFile]) -> None:
        if not files:
            self.errorMessage.emit("No ultrasound frames (images, DICOM, video) found there.")
            return
        self.session.add_files(files)
        keys = self.frame_list.add_files(files)
        for listed in files:
            if listed.error:
                for index in range(listed.n_frames):
                    self._refresh_list_item((listed.path, index))
                self.errorMessage.emit(listed.error)
        self.filesOpened.emit(len(keys))
        self.statusMessage.emit(f"{len(keys)} frame(s) added")
        wanted, self._select_after_listing = self._select_after_listing, None
        if wanted is not None and wanted in self.frame_list:
            self._pending_select = False
            self.select_frame(wanted)
        elif self._pending_select:  # the first new frame, or the first file if already open
            self._pending_select = False
            self.select_frame(keys[0] if keys else (files[0].path, 0))

    def show_session(self) -> None:
        """List the session's frames (after it was restored) and show the first one."""
        files = list(self.session.files.values())
        self.frame_list.clear_frames()
        self.frame_list.add_files(files)
        for key in self.session.frame_keys():
            self._refresh_list_item(key)
        if files:
            self.select_frame((files[0].path, 0))

    def clear(self) -> None:
        self.frame_list.clear_frames()
        self.session.clear()
        self._frames.clear()
        self._current = None
        self.session.undo.activate(None)
        self.view.set_frame(None)
        self.panel.show_record(None)

    # Navigation --------------------------------------------------------------------------------
    def current_key(self) -> FrameKey | None:
        return self._current

    def state(self, key: FrameKey) -> FrameEntry:
        return self.session.entry(key)

    def current_record(self) -> MeasurementRecord | None:
        return self.session.record(self._current)

    def step(self, offset: int) -> None:
        key = self.frame_list.neighbour(self._current, offset)
        if key is not None:
            self.frame_list.select(key)

    def select_frame(self, key: FrameKey) -> None:
        key = (str(key[0]), int(key[1]))
        if key not in self.frame_list or self._selecting:
            return
        self._selecting = True
        try:
            self.frame_list.select(key)  # emits frameSelected: ignored by the guard
        finally:
            self._selecting = False
        self.view.cancel_picking()
        self._current = key
        self.session.undo.activate(key)
        self._set_scrubber(key)
        self.file_label.setText(self._frame_title(key))
        self._show_current()

    def _frame_title(self, key: FrameKey) -> str:
        n_frames = self.session.n_frames(key[0])
        suffix = f" — frame {key[1] + 1} of {n_frames}" if n_frames > 1 else ""
        return f"{Path(key[0]).name}{suffix}"

    def _show_current(self) -> None:
        key = self._current
        if key is None:
            return
        state = self.state(key)
        frame = self._frames.get(key)
        needs_measure = state.record is None and state.error is None
        if state.read_error is not None:
            self.view.set_frame(None)
        elif frame is not None:
            self._frames.move_to_end(key)
            self.view.set_frame(frame.pixels, self.spacing_for(key))
            if needs_measure:
                self._request(key, True)
        else:  # the previous frame stays on screen until this one is read (smooth cine)
            self._request(key, needs_measure)
        self._display_state(key)

    def _request(self, key: FrameKey, measure: bool) -> None:
        self.session.start_measuring(key, measure)
        self.service.request(key, self.session.calibration.override(key[0]), measure)

    def _set_scrubber(self, key: FrameKey | None) -> None:
        n_frames = self.session.n_frames(key[0]) if key else 1
        visible = n_frames > 1
        self.scrubber.setVisible(visible)
        self.frame_label.setVisible(visible)
        if visible:
            self.scrubber.blockSignals(True)
            self.scrubber.setRange(0, n_frames - 1)
            self.scrubber.setValue(key[1])
            self.scrubber.blockSignals(False)
            self.frame_label.setText(f"Frame {key[1] + 1} / {n_frames}")

    def _on_scrubbed(self, index: int) -> None:
        if self._current is not None:
            self.select_frame((self._current[0], index))

    # Worker results ----------------------------------------------------------------------------
    def _on_frame_loaded(self, key: FrameKey, frame: Frame) -> None:
        self.session.frame_read(key, frame.spacing)
        self._frames[key] = frame
        self._frames.move_to_end(key)
        while len(self._frames) > FRAME_CACHE_SIZE:
            self._frames.popitem(last=False)
        if key == self._current:
            self.view.set_frame(frame.pixels, self.spacing_for(key))
            self._display_state(key)

    def _on_measured(self, key: FrameKey, result) -> None:
        self.session.measured(key, result.record, result.prob)
        record = self.session.record(key)
        if frame_state(record) in (FrameState.NO_HEAD, FrameState.ERROR):
            self.statusMessage.emit(f"{Path(key[0]).name}: {status_text(record)}")
        self.frameMeasured.emit(key)

    def _on_read_failed(self, key: FrameKey, message: str) -> None:
        self.session.read_failed(key, message)
        if key == self._current:
            self.view.set_frame(None)
        self.errorMessage.emit(message)
        self.frameMeasured.emit(key)

    def _on_measure_failed(self, key: FrameKey, message: str) -> None:
        self.session.measure_failed(key, message)
        self.errorMessage.emit(f"Not measured: {message}")
        self.frameMeasured.emit(key)

    def _on_skipped(self, key: FrameKey) -> None:
        self.session.skipped(key)

    def _on_frame_changed(self, key: FrameKey) -> None:
        """The session changed this frame: its list entry, and the panel when it is on screen."""
        if key in self.frame_list:
            self._refresh_list_item(key)
        if key == self._current:
            self._display_state(key)

    def _on_calibration_changed(self, paths: set[str] | None) -> None:
        current = self._current
        if current is not None and (paths is None or current[0] in paths):
            self._show_current()

    # Display -----------------------------------------------------------------------------------
    def _refresh_list_item(self, key: FrameKey) -> None:
        state = self.session.entry(key)
        record = state.record
        hc_text = format_length(record.hc, record.unit) if record and record.hc else ""
        detail = state.error or (status_text(record) if record else None)
        self.frame_list.set_status(key, status_word(state), hc_text, detail)

    def _display_state(self, key: FrameKey) -> None:
        state = self.state(key)
        record = state.record
        self.panel.show_spacing(self.spacing_for(key))
        self.panel.show_record(record)
        if record is None:
            message = state.error or ("measuring…" if state.measuring else None)
            self.panel.show_message(message)
        self.view.set_mask(state.prob)
        self.view.editor.set_ellipse(record.ellipse_px if record is not None else None)
        self._update_action_state()
        self.frameDisplayed.emit(key)

    def frame_pixels(self, key: FrameKey) -> Frame | None:
        """The frame `key` if it was read and is still cached (None otherwise)."""
        return self._frames.get(key)

    def refresh_actions(self) -> None:
        """Enable the actions that apply to the frame on screen."""
        self._update_action_state()

    def _update_undo_actions(self) -> None:
        undo = self.session.undo
        for name, possible, text in (
            ("undo", undo.can_undo(), undo.undo_text()),
            ("redo", undo.can_redo(), undo.redo_text()),
        ):
            action = self.actions[name]
            action.setEnabled(possible)
            label = "&Undo" if name == "undo" else "&Redo"
            action.setText(f"{label} {text}".strip())

    def _update_action_state(self) -> None:
        record = self.current_record()
        has_record = record is not None
        for name in ("accept", "reject", "copy"):
            self.actions[name].setEnabled(has_record)
        state = self.state(self._current) if self._current else None
        self.actions["reset"].setEnabled(
            bool(state and state.auto is not None and state.record != state.auto)
        )
        self.panel.accept_button.setEnabled(has_record)
        self.panel.reject_button.setEnabled(has_record)
        self.panel.reset_button.setEnabled(self.actions["reset"].isEnabled())

    def _on_overlays_changed(self, *_args) -> None:
        mask_opacity = self.mask_opacity.value() / 100
        lines_opacity = self.lines_opacity.value() / 100
        self.view.set_mask_style(self.mask_check.isChecked(), mask_opacity)
        self.view.editor.set_overlays(self.ellipse_check.isChecked(), self.axes_check.isChecked())
        self.view.editor.set_opacity(lines_opacity)
        s = self.settings
        s.set_overlay_visible("mask", self.mask_check.isChecked())
        s.set_overlay_visible("ellipse", self.ellipse_check.isChecked())
        s.set_overlay_visible("axes", self.axes_check.isChecked())
        s.set_overlay_opacity("mask", mask_opacity)
        s.set_overlay_opacity("lines", lines_opacity)

    def _on_cursor(self, where) -> None:
        if where is None or self._current is None:
            self.cursor_label.setText("")
            return
        x, y, value = where
        spacing = self.spacing_for(self._current)
        text = f"x {x:.1f}, y {y:.1f} px"
        if spacing.calibrated:
            text += f"  |  {x * spacing.col_mm:.1f}, {y * spacing.row_mm:.1f} mm"
        self.cursor_label.setText(f"{text}  |  grey {value:.2f}")

    # Editing -----------------------------------------------------------------------------------
    def _on_ellipse_dragged(self, ellipse: Ellipse) -> None:
        """Live values while the mouse moves; the record changes when it is released."""
        if self._current is not None:
            record = self.session.edited_record(self._current, ellipse)
            if record is not None:
                self.panel.show_record(record)

    def _on_edit_finished(self, _before: Ellipse, after: Ellipse) -> None:
        if self._current is not None:
            self.session.edit(self._current, after)

    def reset_current(self) -> None:
        if self._current is not None:
            self.session.reset(self._current)

    def accept_current(self) -> None:
        self._decide(True)

    def reject_current(self) -> None:
        self._decide(False)

    def _decide(self, accepted: bool) -> None:
        key = self._current
        outcome = self.session.decide(key, accepted)
        if outcome is Decision.NEEDS_CONFIRMATION:
            answer = QMessageBox.question(
                self,
                "Accept an uncalibrated frame?",
                UNCALIBRATED_QUESTION,
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                self.statusMessage.emit("Not accepted: set the pixel size or calibrate first.")
                return
            outcome = self.session.decide(key, accepted, confirmed=True)
        if outcome is Decision.NOTHING_TO_ACCEPT:
            self.errorMessage.emit(f"Nothing to accept: {status_text(self.current_record())}")
        elif outcome is Decision.DONE:
            self.step(1)

    # Spacing -----------------------------------------------------------------------------------
    def spacing_for(self, key: FrameKey) -> Spacing:
        return self.session.spacing_for(key)

    def shutdown(self) -> None:
        """Wait for the worker threads (called when the window closes)."""
        self.service.wait(10000)
        self.lister.wait(10000)


def _opacity_slider(tip: str) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setFixedWidth(80)
    slider.setToolTip(tip)
    return slider
