"""What the Measure tab shows beside a single frame: the cine bar, the BPD outer-to-inner
caliper, and the exam panel (a side tab next to the frame's values).

`MeasureExtras` attaches to a `MeasureTab` and follows it through `frameDisplayed`:

- a multi-frame file (DICOM cine, video) shows `CineControls` at the clip's recorded frame rate
  (`core.cine.clip_frame_rate`); each frame shown while playing is measured on demand in the
  worker (the session keeps one record per frame, so a frame is measured once). "Measure clip"
  measures every frame of the clip in the worker, one after another, with its progress; once
  every frame has a record, "Best frame" jumps to the frame `core.best_frame.rank_clip` suggests,
  weighing each frame's image quality at its ellipse (`core.image_quality`): the worker's
  result carries it, kept here beside the session's record (measured at the network's
  ellipse: an ellipse edited by hand keeps it, the image is the same); a frame measured before
  (a restored session) gets it from its pixels when they are still cached, else the clip is
  ranked without the quality term.
- after a frame is measured, `BpdOuterInnerCaliper` shows BPD outer-to-inner on the image
  (`core.skull.bpd_outer_inner`) and the results panel shows its length beside outer-to-outer.
  A caliper moved by hand is kept in the session for that frame (`KeptCaliper`) and shown
  again, marked edited, whenever the frame is shown with the same ellipse.
- the exam panel (`ExamWiring`) groups the open frames into exams; the results panel says the GA
  by dates of the frame's own exam.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTabWidget,
    QWidget,
)

from ..core.best_frame import rank_clip
from ..core.cine import clip_frame_rate
from ..core.exam.kept_caliper import EDITED_NOTE, KeptCaliper
from ..core.image_quality import ImageQuality, image_quality
from ..core.skull import SkullBpd, bpd_outer_inner
from .caliper_item import BpdOuterInnerCaliper
from .cine_controls import CineControls
from .exam_panel import ExamPanel
from .exam_wiring import ExamWiring
from .keys import text_field_has_focus
from .workers import FrameKey

FRAME_TAB, EXAM_TAB = "Frame", "Exam"
MEASURE_CLIP = "Measure clip"
EXAM_PANEL_WIDTH, MIN_LIST_WIDTH = 460, 170
SCROLL_AND_TAB_MARGIN = 40  # the scroll bar and the tab frame around the exam panel
CALIPER_Z = 15  # above the ellipse outline (10), below its handles (20)


class MeasureExtras(QObject):
    """The cine bar, the caliper and the exam side tab of one Measure tab."""

    def __init__(self, tab) -> None:
        super().__init__(tab)
        self.tab = tab
        self.session = tab.session
        self.cine = CineControls()  # its own keys act while it has the focus
        # Space and B act anywhere in the tab (no other key of the tab uses them); Left/Right
        # stay the window's previous/next frame, which in a clip are the same step.
        tab_keys = (QKeySequence(Qt.Key.Key_Space), QKeySequence(Qt.Key.Key_B))
        for own in self.cine.shortcuts:  # one owner per key, or Qt finds them ambiguous
            own.setEnabled(own.key() not in tab_keys)
        self.shortcuts = []
        for key, action in ((Qt.Key.Key_Space, self.cine.toggle), (Qt.Key.Key_B, self._best)):
            shortcut = QShortcut(QKeySequence(key), tab)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(_unless_typing(action))
            self.shortcuts.append(shortcut)
        self.measure_clip_button = QPushButton(MEASURE_CLIP)
        self.measure_clip_button.setToolTip(
            "Measure every frame of this clip (in the background), then suggest the best frame"
        )
        self._clip: str | None = None
        self._clip_queue: list[FrameKey] = []
        self._clip_total = 0
        self._quality: dict[FrameKey, ImageQuality] = {}  # from the worker, per measured frame
        self.skull: SkullBpd | None = None
        self._skull_for: tuple | None = None
        self.caliper = BpdOuterInnerCaliper(tab.view.view_box, self)
        # Under the ellipse editor's handles (z 20): where the caliper's far end lies on a BPD
        # handle, dragging moves the ellipse, as before the caliper existed.
        caliper = self.caliper
        for z, item in enumerate((caliper.line, caliper.near_end, caliper.far_end, caliper.label)):
            item.setZValue(CALIPER_Z + z * 0.1)
        self.exam_panel = ExamPanel()
        self.exams = ExamWiring(self.session, self.exam_panel, self)
        self._build()
        tab.frameDisplayed.connect(self._on_frame_displayed)
        tab.frameMeasured.connect(self._on_frame_measured)
        tab.service.signals.skipped.connect(self._on_frame_skipped)
        tab.service.signals.measured.connect(self._keep_quality)
        self.cine.frame_requested.connect(self._on_cine_frame)
        self.measure_clip_button.clicked.connect(self.measure_clip)
        self.caliper.length_changed.connect(self._show_caliper_length)
        self.caliper.edit_finished.connect(self._keep_caliper)
        self._show_clip(None)

    def _build(self) -> None:
        tab = self.tab
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.cine, 1)
        layout.addWidget(self.measure_clip_button)
        self.cine_row = row
        # The label's text decides its width: the fixed 130 pixels would take them from the
        # exam panel on a 1024-pixel screen.
        self.cine.frame_label.setMinimumWidth(0)
        # below the scrubber row (file label, view, scrubber): play controls under the slider
        tab.centre_layout.insertWidget(3, row)
        scroll = QScrollArea()  # the exam panel is taller than a 700-pixel screen allows
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.exam_panel)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Columns share the side's width and their cells wrap (rows grow): at 1024 pixels the
        # side is about 330 wide, too narrow for columns sized to their contents.
        header = self.exam_panel.values_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.exam_panel.values_table.setWordWrap(True)
        ga_label = self.exam_panel.ga_label  # its table wraps to the width it is given
        ga_label.setSizePolicy(QSizePolicy.Policy.Ignored, ga_label.sizePolicy().verticalPolicy())
        exam_box = self.exam_panel.exam_box  # a long exam name must not widen the side
        exam_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        exam_box.setMinimumContentsLength(12)
        self.exam_scroll = scroll
        self.side_tabs = QTabWidget()
        index = tab.splitter.indexOf(tab.panel)
        tab.splitter.replaceWidget(index, self.side_tabs)
        self.side_tabs.addTab(tab.panel, FRAME_TAB)
        self.side_tabs.addTab(scroll, EXAM_TAB)
        self.side_tabs.currentChanged.connect(self._on_side_tab_changed)

    def show_exam_tab(self) -> None:
        self.side_tabs.setCurrentWidget(self.exam_scroll)

    def _on_side_tab_changed(self, index: int) -> None:
        """The exam panel needs more width than the frame's values: take it from the frame
        list (then the image) while it is shown, on a screen as small as 1024x700."""
        splitter = self.tab.splitter
        sizes = splitter.sizes()
        if len(sizes) != 3 or self.side_tabs.tabText(index) != EXAM_TAB:
            return
        needed = self.exam_panel.minimumSizeHint().width() + SCROLL_AND_TAB_MARGIN
        wanted = max(sizes[2], EXAM_PANEL_WIDTH, needed)
        extra = wanted - sizes[2]
        from_list = min(extra, max(0, sizes[0] - MIN_LIST_WIDTH))
        splitter.setSizes([sizes[0] - from_list, sizes[1] - (extra - from_list), wanted])

    # ---- following the tab ---------------------------------------------------------------------

    def _on_frame_displayed(self, key: FrameKey) -> None:
        self._show_clip(key)
        self._update_caliper(key)
        self.tab.panel.show_ga_by_dates(self.session.ga_weeks_for_frame(key))

    def _on_frame_measured(self, key: FrameKey) -> None:
        if self._clip_queue and key == self._clip_queue[0]:
            self._clip_queue.pop(0)
        if self._clip_queue:
            self._measure_next()
        elif self._clip_total:
            self._clip_total = 0
            self.measure_clip_button.setText(MEASURE_CLIP)
            self.tab.statusMessage.emit("Clip measured: Best frame (B) jumps to the suggested one.")
        if key[0] == self._clip:
            self._update_best_frame()
        self.measure_clip_button.setEnabled(not self._clip_queue and self._clip is not None)

    def _keep_quality(self, key: FrameKey, result) -> None:
        """Keep the frame's image quality; the tab's own slot ran first (connected first), so
        the clip is ranked again now that this frame's quality is known."""
        if result.quality is None:
            self._quality.pop(key, None)
        else:
            self._quality[key] = result.quality
        if key[0] == self._clip:
            self._update_best_frame()

    def _best(self) -> None:
        self.cine.go_to_best_frame()

    def _on_frame_skipped(self, key: FrameKey) -> None:
        """A newer request (the person moved on) superseded the clip's frame: ask again."""
        if self._clip_queue and key == self._clip_queue[0]:
            self._measure_next()

    def _show_clip(self, key: FrameKey | None) -> None:
        n_frames = self.session.n_frames(key[0]) if key else 1
        if n_frames < 2:
            self._clip = None
            self.cine.clear()
            self.cine_row.setVisible(False)
            return
        self.cine_row.setVisible(True)
        if key[0] != self._clip:
            self._clip = key[0]
            rate = clip_frame_rate(key[0])
            self.cine.set_clip(n_frames, rate.fps)
            self.cine.setToolTip(
                f"Frame rate from {rate.source}" + "".join(f"\n{note}" for note in rate.notes)
            )
            self._update_best_frame()
        if self.cine.index != key[1]:
            self.cine.show_frame(key[1])

    def _on_cine_frame(self, index: int) -> None:
        if self._clip is not None:
            self.tab.select_frame((self._clip, index))

    # ---- the whole clip ------------------------------------------------------------------------

    def clip_records(self, path: str) -> list:
        records = [self.session.record((path, i)) for i in range(self.session.n_frames(path))]
        return [r for r in records if r is not None]

    def measure_clip(self) -> None:
        """Measure every frame of the clip on screen that has no record, in the worker."""
        if self._clip is None:
            return
        self.cine.pause()
        path = self._clip
        self._clip_queue = [
            (path, i)
            for i in range(self.session.n_frames(path))
            if self.session.entry((path, i)).record is None
            and self.session.entry((path, i)).error is None
        ]
        self._clip_total = len(self._clip_queue)
        if self._clip_queue:
            self.measure_clip_button.setEnabled(False)
            self._measure_next()
        else:
            self._update_best_frame()

    def _measure_next(self) -> None:
        key = self._clip_queue[0]
        done = self._clip_total - len(self._clip_queue)
        self.measure_clip_button.setText(f"Measuring {done}/{self._clip_total}…")
        self.tab.statusMessage.emit(f"Measuring the clip: {done} / {self._clip_total} frames")
        self.tab._request(key, True)  # the tab's own request: the session marks it measuring

    def _update_best_frame(self) -> None:
        """Suggest the best frame once every frame of the clip has a record."""
        path = self._clip
        if path is None:
            return
        records = self.clip_records(path)
        best = None
        if len(records) == self.session.n_frames(path):
            best = rank_clip(records, quality=self.clip_quality(records)).best_index
        self.cine.set_best_frame(best)

    def clip_quality(self, records: list) -> dict[FrameKey, ImageQuality] | None:
        """The image quality of every frame with an ellipse, or None when one is unknown (the
        clip is then ranked without it rather than with some frames' quality missing)."""
        quality = {}
        for record in records:
            if record.ellipse_px is None:
                continue
            key = (record.file, record.frame_index)
            known = self._quality.get(key)
            if known is None:
                frame = self.tab.frame_pixels(key)
                if frame is not None:
                    known = image_quality(frame.pixels, record.ellipse_px)
            if known is None:
                return None
            quality[key] = known
        return quality

    # ---- the BPD outer-to-inner caliper --------------------------------------------------------

    def _update_caliper(self, key: FrameKey | None) -> None:
        record = self.session.record(key) if key else None
        frame = self.tab.frame_pixels(key) if key else None
        if record is None or record.ellipse_px is None or frame is None:
            self.skull, self._skull_for = None, None
            self.caliper.set_skull(None, None)
            self.tab.panel.show_bpd_outer_inner(None, "")
            return
        spacing = self.session.spacing_for(key)
        wanted = (key, record.ellipse_px, spacing)
        if wanted != self._skull_for:  # the caliper the user moved stays while nothing changed
            self.skull = bpd_outer_inner(frame.pixels, record.ellipse_px, spacing)
            self._skull_for = wanted
            self.caliper.set_skull(self.skull, spacing)
            kept = self.session.kept_caliper(key)
            if kept is not None:
                self.caliper.show_placed(kept.far_xy)
        self._show_caliper_length(self.caliper.length)

    def _keep_caliper(self, _length: float) -> None:
        """The person let go of the far end: keep the placement for the frame."""
        if self.skull is None or self._skull_for is None or self.caliper.placed_by != "user":
            return
        key, ellipse, _spacing = self._skull_for
        skull = self.skull
        kept = KeptCaliper(
            tuple(skull.near_outer_xy),
            self.caliper.far_xy,
            tuple(skull.far_outer_xy),
            ellipse,
            skull.outer_inner,
            skull.unit,
        )
        if kept != self.session.choices.calipers.get(key):
            self.session.keep_caliper(key, kept)

    def _show_caliper_length(self, length: float | None) -> None:
        skull = self.skull
        if skull is None:
            return
        moved = self.caliper.placed_by == "user"
        note = EDITED_NOTE if moved else skull.note
        self.tab.panel.show_bpd_outer_inner(length, skull.unit, note)


def _unless_typing(action):
    def run() -> None:
        if not text_field_has_focus():
            action()

    return run
