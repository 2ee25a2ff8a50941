"""The BPD outer-to-inner caliper on the image: near outer border -> far inner border.

`core.skull.bpd_outer_inner` finds the far skull's inner border along the minor axis; this item
shows the caliper it gives and lets the user move the far end when the border was misread. The
far end slides along the BPD axis (the line from the near outer border through the far outer
one), as the measurement is defined along that axis; its length is measured with
`core.skull.caliper_length`, so it is in mm when the frame is calibrated.

When the image gave no far inner border the caliper starts at the far OUTER border, dashed and
grey, and reports no length until the user places it: a guess is never shown as a measurement.
All coordinates are frame pixels (x, y), as in the ellipse editor.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Qt, Signal

from ..core.skull import SkullBpd, caliper_length
from ..core.spacing import Spacing

CALIPER_COLOUR = (255, 60, 60)
UNPLACED_COLOUR = (170, 170, 170)
# Where the far end may go along the axis, as a fraction of near -> far outer: from the middle of
# the head to a little outside the skull.
_SLIDE_RANGE = (0.5, 1.1)
_PLACE_HINT = "Drag this end onto the far inner border of the skull."


class BpdOuterInnerCaliper(QObject):
    """The caliper in a ViewBox: a fixed near end, a draggable far end, a line and its length.

    Signals: `length_changed(float)` on every move of the far end (mm, or px uncalibrated);
    `edit_finished(float)` when the drag ends (one edit for an undo stack).
    """

    length_changed = Signal(float)
    edit_finished = Signal(float)

    def __init__(self, view_box: pg.ViewBox, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._spacing: Spacing | None = None
        self._near = np.zeros(2)
        self._far_outer = np.zeros(2)
        self._placing = False
        self.placed_by: str | None = None  # "image", "user", or None while unplaced
        self.line = pg.PlotCurveItem()
        self.near_end = pg.TargetItem(size=9, symbol="+", movable=False)
        self.far_end = pg.TargetItem(
            size=11,
            symbol="s",
            pen=pg.mkPen(CALIPER_COLOUR, width=2),
            brush=(*CALIPER_COLOUR, 60),
            hoverPen=pg.mkPen((255, 255, 255), width=2),
        )
        self.far_end.setToolTip("BPD outer-to-inner: drag onto the inner border of the far skull")
        self.label = pg.TextItem(anchor=(0, 0.5), fill=(0, 0, 0, 170))  # readable over bone
        for z, item in enumerate((self.line, self.near_end, self.far_end, self.label)):
            item.setZValue(30 + z)
            view_box.addItem(item)
        self.far_end.sigPositionChanged.connect(self._on_far_end_moved)
        self.far_end.sigPositionChangeFinished.connect(self._on_released)
        self.set_skull(None, None)

    # ---- public --------------------------------------------------------------------------------

    def set_skull(self, skull: SkullBpd | None, spacing: Spacing | None) -> None:
        """Show the caliper of `skull` (None hides it). Emits nothing."""
        visible = skull is not None and spacing is not None
        for item in (self.line, self.near_end, self.far_end, self.label):
            item.setVisible(visible)
        if not visible:
            self._spacing, self.placed_by = None, None
            return
        self._spacing = spacing
        self._near = np.asarray(skull.near_outer_xy, dtype=float)
        self._far_outer = np.asarray(skull.far_outer_xy, dtype=float)
        far = skull.far_inner_xy if skull.far_inner_xy is not None else skull.far_outer_xy
        self.placed_by = "image" if skull.far_inner_xy is not None else None
        hint = None if skull.far_inner_xy is not None else _PLACE_HINT
        self.label.setToolTip(" ".join(text for text in (hint, skull.note) if text))
        self.far_end.setToolTip(_PLACE_HINT)
        self.near_end.setPos(QPointF(*self._near))
        self._move_far_end(np.asarray(far, dtype=float))
        self._draw()

    @property
    def far_xy(self) -> tuple[float, float]:
        pos = self.far_end.pos()
        return float(pos.x()), float(pos.y())

    @property
    def length(self) -> float | None:
        """The caliper's length, or None while it is hidden or not placed yet."""
        if self._spacing is None or self.placed_by is None:
            return None
        return caliper_length(tuple(self._near), self.far_xy, self._spacing)

    def show_placed(self, far_xy: tuple[float, float]) -> None:
        """Show the far end where the person placed it earlier (kept in the session): placed
        by the user, no edit emitted."""
        if self._spacing is None:
            return
        self._move_far_end(np.asarray(far_xy, dtype=float))
        self.placed_by = "user"
        self._draw()

    def move_far_end(self, to_xy: tuple[float, float]) -> None:
        """Move the far end as a drag would (onto the axis, then released): one edit."""
        self.far_end.setPos(QPointF(*to_xy))
        self._on_released()

    # ---- internals -----------------------------------------------------------------------------

    def _on_far_end_moved(self) -> None:
        if self._placing or self._spacing is None:
            return
        self._move_far_end(np.array(self.far_xy))
        self.placed_by = "user"
        self._draw()
        self.length_changed.emit(self.length)

    def _on_released(self) -> None:
        if self.length is not None:
            self.edit_finished.emit(self.length)

    def _move_far_end(self, point: np.ndarray) -> None:
        """Put the far end on the axis at the point nearest `point`, within the slide range."""
        axis = self._far_outer - self._near
        squared = float(axis @ axis)
        t = 1.0 if squared == 0 else float((point - self._near) @ axis) / squared
        t = min(max(t, _SLIDE_RANGE[0]), _SLIDE_RANGE[1])
        self._placing = True  # setPos re-emits sigPositionChanged
        self.far_end.setPos(QPointF(*(self._near + t * axis)))
        self._placing = False

    def _draw(self) -> None:
        far = np.array(self.far_xy)
        placed = self.placed_by is not None
        colour = CALIPER_COLOUR if placed else UNPLACED_COLOUR
        style = Qt.PenStyle.SolidLine if placed else Qt.PenStyle.DashLine
        self.line.setPen(pg.mkPen(colour, width=2, style=style))
        self.near_end.setPen(pg.mkPen(colour, width=2))
        self.line.setData(x=[self._near[0], far[0]], y=[self._near[1], far[1]])
        length = self.length
        unit = self._spacing.unit if self._spacing is not None else ""
        self.label.setColor(colour)
        outward = 1.0
        if length is None:
            self.label.setText("BPD o-i: not found")
            # The end waits on the outer border: the message goes outside the head, away from
            # the near end, not across the BPD axis and the head it would hide; short, so that
            # it fits beside a head that fills the frame (how to place it is the tooltip's).
            outward = 1.0 if far[0] >= self._near[0] else -1.0
        else:
            edited = " (moved)" if self.placed_by == "user" else ""
            self.label.setText(f"BPD o-i {length:.1f} {unit}{edited}")
        self.label.setAnchor((0.0 if outward > 0 else 1.0, 0.5))
        self.label.setPos(QPointF(*(far + np.array([8.0 * outward, 0.0]))))
