"""The Measure tab: open frames, see the automatic ellipse, edit it, decide, export.

All measuring is done by `hc_studio.core` on a worker thread (`workers.InferenceService`); this
module keeps the per-frame state (automatic record, current record, probability map) and the
per-file spacing choices, and shows them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core.ellipse import Ellipse
from ..core.export import write_hc18_submission, write_records_csv
from ..core.io import Frame
from ..core.measure import is_failure, record_from_ellipse
from ..core.records import MeasurementRecord, Status
from ..core.spacing import Spacing, calibrate_two_points
from .formatting import format_length, values_text
from .frame_list import FrameList
from .image_view import FrameView, write_png
from .results_panel import ResultsPanel
from .settings import AppSettings
from .spacing_choices import SpacingChoices
from .undo import FrameUndoStacks, SetRecordCommand
from .workers import FileLister, FrameKey, InferenceService, ListedFile

FRAME_CACHE_SIZE = 32


@dataclass
class FrameState:
    """What is known about one frame: the automatic and the current record, the mask."""

    auto: MeasurementRecord | None = None
    record: MeasurementRecord | None = None
    prob: np.ndarray | None = None
    error: str | None = None  # could not be read or measured
    read_error: str | None = None  # could not be read at all
    measuring: bool = False


def status_word(state: FrameState) -> str:
    """The one-word status shown in the frame list."""
    record = state.record
    if state.measuring:
        return "measuring…"
    if record is None:
        if state.error and state.error.startswith("no model"):
            return "no model"
        return "error" if state.error else "not measured"
    if record.accepted is True:
        return "accepted"
    if record.accepted is False:
        return "rejected"
    if is_failure(record):
        return "no head" if record.status is not Status.ERROR else "error"
    if record.status is Status.REVIEW:
        return "review"
    return "edited" if record.origin == "edited" else "ok"


class MeasureTab(QWidget):
    """Frame list | frame view with overlays and cine scrubber | values and decisions."""

    frameMeasured = Signal(object)  # key, once a frame has a result (or failed)
    filesOpened = Signal(int)  # number of frames added
    statusMessage = Signal(str)
    errorMessage = Signal(str)

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.service = InferenceService(self)
        self.lister = FileLister(self)
        self.undo_stacks = FrameUndoStacks(self)
        self._states: dict[FrameKey, FrameState] = {}
        self._frames: OrderedDict[FrameKey, Frame] = OrderedDict()
        self._n_frames: dict[str, int] = {}
        self._current: FrameKey | None = None
        self.spacings = SpacingChoices()
        self._ga_by_dates: float | None = None
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
        self.cursor_label.setMinimumWidth(300)
        self.file_label = QLabel("Open frames: File > Open, or drop files here")

    def _build_layout(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.frame_list)
        open_row = QHBoxLayout()
        open_row.addWidget(self.open_button)
        open_row.addWidget(self.open_folder_button)
        left_layout.addLayout(open_row)

        overlay_row = QHBoxLayout()
        for widget in (
            self.mask_check,
            self.mask_opacity,
            self.ellipse_check,
            self.axes_check,
            self.lines_opacity,
            self.fit_button,
            self.levels_button,
        ):
            overlay_row.addWidget(widget)
        overlay_row.addStretch(1)
        cine_row = QHBoxLayout()
        cine_row.addWidget(self.frame_label)
        cine_row.addWidget(self.scrubber, 1)
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.file_label)
        centre_layout.addWidget(self.view, 1)
        centre_layout.addLayout(cine_row)
        centre_layout.addLayout(overlay_row)
        centre_layout.addWidget(self.cursor_label)

        splitter = QSplitter(Qt.Orientation.Horizontal)
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
        undo = self.undo_stacks.group.createUndoAction(self, "&Undo")
        undo.setShortcuts([QKeySequence("Ctrl+Z")])
        redo = self.undo_stacks.group.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.actions["undo"], self.actions["redo"] = undo, redo
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
        panel.gaByDatesChanged.connect(self.set_ga_by_dates)
        signals = self.service.signals
        signals.frameLoaded.connect(self._on_frame_loaded)
        signals.measured.connect(self._on_measured)
        signals.failed.connect(self._on_read_failed)
        signals.measureFailed.connect(self._on_measure_failed)
        signals.skipped.connect(self._on_skipped)
        self.lister.signals.listed.connect(self._on_files_listed)
        self.lister.signals.failed.connect(self.errorMessage.emit)

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
    def set_model(self, model_path: str | Path | None, device: str = "auto") -> None:
        """Measure with this model from now on; frames not edited or decided are measured again."""
        self.service.configure_model(model_path, device)
        for key, state in self._states.items():
            record = state.record
            if record is not None and (record.origin == "edited" or record.accepted is not None):
                continue
            self._states[key] = FrameState()
            self._refresh_list_item(key)
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
        paths = [str(p) for p in paths]
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
        self._select_after_listing = (str(key[0]), int(key[1]))
        self.open_paths([path])

    def _on_files_listed(self, files: list[ListedFile]) -> None:
        if not files:
            self.errorMessage.emit("No ultrasound frames (images, DICOM, video) found there.")
            return
        for listed in files:
            self._n_frames[listed.path] = listed.n_frames
        keys = self.frame_list.add_files(files)
        for listed in files:
            if listed.error:
                for index in range(listed.n_frames):
                    self._states[(listed.path, index)] = FrameState(
                        error=listed.error, read_error=listed.error
                    )
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

    def clear(self) -> None:
        self.frame_list.clear_frames()
        self._states.clear()
        self._frames.clear()
        self.undo_stacks.clear()
        self._current = None
        self.view.set_frame(None)
        self.panel.show_record(None)

    # Navigation --------------------------------------------------------------------------------
    def current_key(self) -> FrameKey | None:
        return self._current

    def state(self, key: FrameKey) -> FrameState:
        return self._states.setdefault(key, FrameState())

    def current_record(self) -> MeasurementRecord | None:
        return self.state(self._current).record if self._current is not None else None

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
        self.undo_stacks.activate(key)
        self._set_scrubber(key)
        self.file_label.setText(self._frame_title(key))
        self._show_current()

    def _frame_title(self, key: FrameKey) -> str:
        n_frames = self._n_frames.get(key[0], 1)
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
        state = self.state(key)
        state.measuring = measure and state.record is None
        self._refresh_list_item(key)
        self.service.request(key, self._spacing_override(key[0]), measure)

    def _set_scrubber(self, key: FrameKey | None) -> None:
        n_frames = self._n_frames.get(key[0], 1) if key else 1
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
        self._frames[key] = frame
        self._frames.move_to_end(key)
        while len(self._frames) > FRAME_CACHE_SIZE:
            self._frames.popitem(last=False)
        if key == self._current:
            self.view.set_frame(frame.pixels, self.spacing_for(key))
            self._display_state(key)

    def _on_measured(self, key: FrameKey, result) -> None:
        state = self.state(key)
        record = self._rederive(result.record, self.spacing_for(key))
        state.auto, state.record, state.prob = record, record, result.prob
        state.error, state.measuring = None, False
        self.undo_stacks.stack(key).clear()
        self._refresh_list_item(key)
        if key == self._current:
            self._display_state(key)
        if is_failure(record):
            self.statusMessage.emit(f"{Path(key[0]).name}: {record.status_text}")
        self.frameMeasured.emit(key)

    def _on_read_failed(self, key: FrameKey, message: str) -> None:
        state = self.state(key)
        state.error, state.read_error, state.measuring = message, message, False
        self._refresh_list_item(key)
        if key == self._current:
            self.view.set_frame(None)
            self._display_state(key)
        self.errorMessage.emit(message)
        self.frameMeasured.emit(key)

    def _on_measure_failed(self, key: FrameKey, message: str) -> None:
        state = self.state(key)
        state.error, state.measuring = message, False
        self._refresh_list_item(key)
        if key == self._current:
            self._display_state(key)
        self.errorMessage.emit(f"Not measured: {message}")
        self.frameMeasured.emit(key)

    def _on_skipped(self, key: FrameKey) -> None:
        state = self.state(key)
        state.measuring = False
        self._refresh_list_item(key)

    # Display -----------------------------------------------------------------------------------
    def _refresh_list_item(self, key: FrameKey) -> None:
        state = self.state(key)
        record = state.record
        hc_text = format_length(record.hc, record.unit) if record and record.hc else ""
        detail = state.error or (record.status_text if record else None)
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

    def refresh_actions(self) -> None:
        """Enable the actions that apply to the frame on screen."""
        self._update_action_state()

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
    def _edited_record(self, key: FrameKey, ellipse: Ellipse) -> MeasurementRecord:
        base = self.state(key).record
        return record_from_ellipse(
            key[0],
            key[1],
            self.spacing_for(key),
            ellipse,
            base.model if base else "",
            origin="edited",
            base=base,
            ga_weeks=self._ga_by_dates,
        )

    def _on_ellipse_dragged(self, ellipse: Ellipse) -> None:
        """Live values while the mouse moves; the record changes when it is released."""
        if self._current is not None and self.state(self._current).record is not None:
            self.panel.show_record(self._edited_record(self._current, ellipse))

    def _on_edit_finished(self, _before: Ellipse, after: Ellipse) -> None:
        key = self._current
        if key is None or self.state(key).record is None:
            return
        self._push(key, "Edit ellipse", self._edited_record(key, after))

    def _push(self, key: FrameKey, text: str, record: MeasurementRecord) -> None:
        before = self.state(key).record
        if before is None or before == record:
            return
        self.undo_stacks.push(SetRecordCommand(text, key, before, record, self._apply_record))

    def _apply_record(self, key: FrameKey, record: MeasurementRecord) -> None:
        """Put `record` in place (from an undo command); re-derived if the spacing changed."""
        state = self.state(key)
        state.record = self._rederive(record, self.spacing_for(key))
        self._refresh_list_item(key)
        if key == self._current:
            self._display_state(key)

    def reset_current(self) -> None:
        key = self._current
        if key is not None and self.state(key).auto is not None:
            self._push(key, "Reset to automatic", self.state(key).auto)

    def accept_current(self) -> None:
        self._decide(True)

    def reject_current(self) -> None:
        self._decide(False)

    def _decide(self, accepted: bool) -> None:
        key = self._current
        record = self.current_record()
        if key is None or record is None:
            return
        if accepted and not record.ok:
            self.errorMessage.emit(f"Nothing to accept: {record.status_text}")
            return
        self._push(key, "Accept" if accepted else "Reject", record.replace(accepted=accepted))
        self.step(1)

    # Spacing -----------------------------------------------------------------------------------
    def _spacing_override(self, path: str) -> Spacing | None:
        return self.spacings.override(path)

    def spacing_for(self, key: FrameKey) -> Spacing:
        frame, record = self._frames.get(key), self.state(key).record
        own = frame.spacing if frame is not None else getattr(record, "spacing", None)
        return self.spacings.policy.spacing_for(key[0], own or Spacing.uncalibrated())

    def _rederive(self, record: MeasurementRecord, spacing: Spacing) -> MeasurementRecord:
        """`record` under `spacing` and the GA by dates (values recomputed, decisions kept)."""
        if record.ellipse_px is None:
            return record.replace(spacing=spacing) if record.spacing != spacing else record
        new = record_from_ellipse(
            record.file,
            record.frame_index,
            spacing,
            record.ellipse_px,
            record.model,
            origin=record.origin,
            base=record,
            ga_weeks=self._ga_by_dates,
        )
        return new.replace(status=record.status, reasons=record.reasons)

    def _respace(self, paths: set[str] | None) -> None:
        """Recompute every record of `paths` (all files for None) after a spacing change."""
        for key, state in self._states.items():
            if paths is not None and key[0] not in paths:
                continue
            spacing = self.spacing_for(key)
            if state.auto is not None:
                state.auto = self._rederive(state.auto, spacing)
            if state.record is not None:
                state.record = self._rederive(state.record, spacing)
            self._refresh_list_item(key)
        if self._current is not None:
            self._show_current()

    def set_pixel_size(self, mm: float | None, all_files: bool = False) -> None:
        """A typed pixel size (mm) for the current file, or for every file (`all_files`)."""
        if all_files:
            self.spacings.set_for_all_files(mm)
            self._respace(None)
        elif self._current is not None:
            path = self._current[0]
            self.spacings.set_for_file(path, Spacing.square(mm, "user") if mm else None)
            self._respace({path})

    def set_pixel_csv(self, path: str | Path) -> None:
        try:
            count = self.spacings.load_csv(path, {Path(key[0]).parent for key in self._states})
        except (OSError, ValueError) as error:
            self.errorMessage.emit(str(error))
            return
        self.statusMessage.emit(f"{count} pixel sizes read from {Path(path).name}")
        self._respace(None)

    def apply_calibration(
        self, p1_xy: tuple[float, float], p2_xy: tuple[float, float], distance_mm: float
    ) -> Spacing | None:
        """Calibrate the current file from two points `distance_mm` apart."""
        if self._current is None:
            return None
        try:
            spacing = calibrate_two_points(p1_xy, p2_xy, distance_mm)
        except ValueError as error:
            self.errorMessage.emit(f"Calibration: {error}")
            return None
        path = self._current[0]
        self.spacings.set_for_file(path, spacing)
        self._respace({path})
        self.statusMessage.emit(f"Calibrated {Path(path).name}: {spacing.col_mm:.4f} mm/px")
        return spacing

    def start_calibration(self) -> None:
        if self._current is None or self.view.pixels() is None:
            self.errorMessage.emit("Open a frame first.")
            return
        self.view.start_picking(2)
        self.statusMessage.emit(
            "Calibration: click both ends of a known distance (e.g. 1 cm on the depth scale)."
        )

    def _on_calibration_points(self, points: list) -> None:
        distance, ok = QInputDialog.getDouble(
            self, "Calibrate", "Distance between the two points (mm):", 10.0, 0.01, 1000.0, 2
        )
        self.view.cancel_picking()
        if ok:
            self.apply_calibration(points[0], points[1], distance)

    def ask_pixel_size(self) -> None:
        self._ask_pixel_size(all_files=False)

    def ask_pixel_size_all(self) -> None:
        self._ask_pixel_size(all_files=True)

    def _ask_pixel_size(self, all_files: bool) -> None:
        if self._current is None and not all_files:
            self.errorMessage.emit("Open a frame first.")
            return
        current = self.spacing_for(self._current) if self._current else None
        start = current.col_mm if current is not None and current.calibrated else 0.15
        what = "every open file" if all_files else Path(self._current[0]).name
        mm, ok = QInputDialog.getDouble(
            self, "Pixel size", f"Pixel size for {what} (mm per pixel):", start, 0.001, 10.0, 4
        )
        if ok:
            self.set_pixel_size(mm, all_files)

    def choose_pixel_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Pixel-size CSV (filename,pixel size(mm))",
            self.settings.last_folder("open"),
            "CSV (*.csv)",
        )
        if path:
            self.set_pixel_csv(path)

    def set_ga_by_dates(self, weeks: float | None) -> None:
        """GA by dates for the HC centile and z-score (applies to every open frame)."""
        self._ga_by_dates = weeks
        self.panel.set_ga_by_dates(weeks)
        self._respace(None)

    # Output ------------------------------------------------------------------------------------
    def accepted_records(self) -> list[MeasurementRecord]:
        records = (self._states.get(key) for key in self.frame_list.frame_keys())
        return [s.record for s in records if s and s.record and s.record.accepted is True]

    def _ask_save_path(self, title: str, name: str, filters: str) -> str | None:
        folder = Path(self.settings.last_folder("export"))
        path, _ = QFileDialog.getSaveFileName(self, title, str(folder / name), filters)
        if path:
            self.settings.set_last_folder("export", path)
        return path or None

    def _export_accepted(self, title: str, default_name: str, path, write):
        """Write the accepted records with `write(records, path)`; (records, result) or None
        when there is nothing to write, no file was chosen, or writing failed (said in the
        window)."""
        records = self.accepted_records()
        if not records:
            self.errorMessage.emit("No accepted frame yet: accept frames with Enter or A first.")
            return None
        path = path or self._ask_save_path(title, default_name, "CSV (*.csv)")
        if not path:
            return None
        try:
            return records, Path(path), write(records, path)
        except OSError as error:
            self.errorMessage.emit(f"Could not write {Path(path).name}: {error.strerror or error}")
            return None

    def export_accepted_csv(self, path: str | Path | None = None) -> int:
        done = self._export_accepted(
            "Export accepted", "hc_measurements.csv", path, write_records_csv
        )
        if done is None:
            return 0
        _, path, count = done
        self.statusMessage.emit(f"{count} accepted record(s) written to {path.name}")
        return count

    def export_hc18(self, path: str | Path | None = None) -> int:
        done = self._export_accepted(
            "HC18 submission", "submission.csv", path, write_hc18_submission
        )
        if done is None:
            return 0
        records, path, skipped = done
        written = len(records) - len(skipped)
        message = f"{written} frame(s) written to {path.name}"
        if skipped:
            message += "; left out: " + "; ".join(f"{Path(f).name} ({r})" for f, r in skipped)
        self.statusMessage.emit(message)
        return written

    def copy_values(self) -> None:
        record = self.current_record()
        if record is None:
            return
        QApplication.clipboard().setText(values_text(record))
        self.statusMessage.emit("Values copied to the clipboard")

    def save_view_png(self, path: str | Path | None = None) -> bool:
        if self.view.pixels() is None:
            self.errorMessage.emit("No frame on screen.")
            return False
        if path is None:
            stem = Path(self._current[0]).stem if self._current else "frame"
            path = self._ask_save_path("Save view", f"{stem}_hc.png", "PNG (*.png)")
        if not path:
            return False
        try:
            write_png(self.view.grab_image(), path)
        except OSError as error:
            self.errorMessage.emit(f"Could not write {Path(path).name}: {error.strerror or error}")
            return False
        self.statusMessage.emit(f"View saved to {Path(path).name}")
        return True

    def cancel_calibration(self) -> None:
        if self.view.is_picking():
            self.view.cancel_picking()
            self.statusMessage.emit("Calibration cancelled")

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
