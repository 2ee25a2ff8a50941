"""An editable ellipse on the image: outline, BPD and OFD axes, and drag handles.

Handles (all in frame pixel coordinates (x, y)):
- "centre" moves the whole ellipse;
- "major+", "major-" (OFD ends) and "minor+", "minor-" (BPD ends) behave like calipers: the
  dragged end follows the mouse while the opposite end of the same axis stays where it is;
  a major end also turns the ellipse, a minor end only changes the minor axis;
- "rotate" turns the ellipse about its centre, keeping both axes.

During a drag the editor emits `ellipseChanged(Ellipse)` on every move (live values) and, when the
mouse is released, `editFinished(before, after)` (one undo step per drag).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal

from ..core.ellipse import Ellipse

HANDLE_ROLES = ("centre", "major+", "major-", "minor+", "minor-", "rotate")
MIN_SEMI_AXIS_PX = 2.0
# The rotation handle sits on the ellipse diagonal, pushed outwards so it is not mistaken for
# an axis end.
_ROTATE_T = math.pi / 4
_ROTATE_PUSH = 1.12

OFD_COLOUR = (255, 200, 40)  # major axis
BPD_COLOUR = (60, 200, 255)  # minor axis
OUTLINE_COLOUR = (80, 255, 120)


@dataclass(frozen=True)
class EditableEllipse:
    """An ellipse whose axes keep their roles while dragged (`a` may become shorter than `b`).

    The emitted `Ellipse` is the normalised one; handles are laid out from this form so that a
    handle never jumps away from the mouse when the axes swap lengths mid-drag.
    """

    cx: float
    cy: float
    a: float
    b: float
    angle: float

    @classmethod
    def from_ellipse(cls, ellipse: Ellipse) -> EditableEllipse:
        return cls(ellipse.cx, ellipse.cy, ellipse.a, ellipse.b, ellipse.angle)

    def to_ellipse(self) -> Ellipse:
        return Ellipse.normalised(self.cx, self.cy, self.a, self.b, self.angle)

    @property
    def major_dir(self) -> np.ndarray:
        return np.array([math.cos(self.angle), math.sin(self.angle)])

    @property
    def minor_dir(self) -> np.ndarray:
        return np.array([-math.sin(self.angle), math.cos(self.angle)])

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.cx, self.cy])

    def handle_positions(self) -> dict[str, np.ndarray]:
        """{role: (x, y)} of every handle."""
        centre, major, minor = self.centre, self.major_dir, self.minor_dir
        diagonal = self.a * math.cos(_ROTATE_T) * major + self.b * math.sin(_ROTATE_T) * minor
        return {
            "centre": centre,
            "major+": centre + self.a * major,
            "major-": centre - self.a * major,
            "minor+": centre + self.b * minor,
            "minor-": centre - self.b * minor,
            "rotate": centre + _ROTATE_PUSH * diagonal,
        }

    def outline(self, n: int = 180) -> np.ndarray:
        """(n + 1, 2) closed outline points (x, y)."""
        t = np.linspace(0, 2 * np.pi, n + 1)
        return (
            self.centre
            + np.outer(self.a * np.cos(t), self.major_dir)
            + np.outer(self.b * np.sin(t), self.minor_dir)
        )

    def _rotate_handle_angle(self) -> float:
        """Angle of the rotation handle from the centre, relative to the major axis."""
        return math.atan2(self.b * math.sin(_ROTATE_T), self.a * math.cos(_ROTATE_T))


def drag_handle(start: EditableEllipse, role: str, to_xy: tuple[float, float]) -> EditableEllipse:
    """The ellipse after dragging handle `role` of `start` to `to_xy` (frame pixels)."""
    point = np.asarray(to_xy, dtype=float)
    if role == "centre":
        return EditableEllipse(point[0], point[1], start.a, start.b, start.angle)
    if role == "rotate":
        direction = point - start.centre
        if np.hypot(*direction) < 1e-9:
            return start
        angle = math.atan2(direction[1], direction[0]) - start._rotate_handle_angle()
        return EditableEllipse(start.cx, start.cy, start.a, start.b, angle)
    if role in ("major+", "major-"):
        return _drag_major_end(start, role, point)
    if role in ("minor+", "minor-"):
        return _drag_minor_end(start, role, point)
    raise ValueError(f"unknown handle role {role!r}")


def _drag_major_end(start: EditableEllipse, role: str, point: np.ndarray) -> EditableEllipse:
    sign = 1.0 if role == "major+" else -1.0
    fixed_end = start.centre - sign * start.a * start.major_dir
    span = point - fixed_end
    length = float(np.hypot(*span))
    if length < 2 * MIN_SEMI_AXIS_PX:
        span = sign * start.major_dir * 2 * MIN_SEMI_AXIS_PX
        length = 2 * MIN_SEMI_AXIS_PX
    # Keep the handle's sign: the "+" end stays at +a along the (new) major direction.
    angle = math.atan2(sign * span[1], sign * span[0])
    centre = fixed_end + span / 2
    return EditableEllipse(centre[0], centre[1], length / 2, start.b, angle)


def _drag_minor_end(start: EditableEllipse, role: str, point: np.ndarray) -> EditableEllipse:
    sign = 1.0 if role == "minor+" else -1.0
    fixed_end = start.centre - sign * start.b * start.minor_dir
    # Only the distance along the minor direction counts: the axis does not turn.
    reach = sign * float(np.dot(point - fixed_end, start.minor_dir))
    reach = max(reach, 2 * MIN_SEMI_AXIS_PX)
    centre = fixed_end + sign * start.minor_dir * reach / 2
    return EditableEllipse(centre[0], centre[1], start.a, reach / 2, start.angle)


class _Handle(pg.TargetItem):
    """A draggable handle that reports its role; its size stays fixed on screen."""

    def __init__(self, role: str, symbol: str, colour: tuple[int, int, int]) -> None:
        super().__init__(
            size=11 if role != "centre" else 13,
            symbol=symbol,
            pen=pg.mkPen(colour, width=2),
            brush=(*colour, 60),
            hoverPen=pg.mkPen((255, 255, 255), width=2),
            hoverBrush=(255, 255, 255, 90),
        )
        self.role = role
        self.setZValue(20)
        tips = {
            "centre": "Drag to move the ellipse",
            "major+": "OFD end: drag to change the OFD axis (and turn the ellipse)",
            "major-": "OFD end: drag to change the OFD axis (and turn the ellipse)",
            "minor+": "BPD end: drag to change the BPD axis",
            "minor-": "BPD end: drag to change the BPD axis",
            "rotate": "Drag to rotate the ellipse",
        }
        self.setToolTip(tips[role])


class EllipseEditor(QObject):
    """Draws an ellipse with its axes in a ViewBox and lets the user edit it with handles."""

    ellipseChanged = Signal(object)  # Ellipse, on every move of a drag
    editFinished = Signal(object, object)  # (Ellipse before, Ellipse after) at the end of a drag

    def __init__(self, view_box: pg.ViewBox, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._view_box = view_box
        self._shape: EditableEllipse | None = None
        self._drag_start: EditableEllipse | None = None
        self._laying_out = False
        self._editable = True
        self.outline = pg.PlotCurveItem(pen=pg.mkPen(OUTLINE_COLOUR, width=2))
        dashed = Qt.PenStyle.DashLine
        self.ofd_line = pg.PlotCurveItem(pen=pg.mkPen(OFD_COLOUR, width=2, style=dashed))
        self.bpd_line = pg.PlotCurveItem(pen=pg.mkPen(BPD_COLOUR, width=2, style=dashed))
        self.handles: dict[str, _Handle] = {
            "centre": _Handle("centre", "+", OUTLINE_COLOUR),
            "major+": _Handle("major+", "s", OFD_COLOUR),
            "major-": _Handle("major-", "s", OFD_COLOUR),
            "minor+": _Handle("minor+", "s", BPD_COLOUR),
            "minor-": _Handle("minor-", "s", BPD_COLOUR),
            "rotate": _Handle("rotate", "o", OUTLINE_COLOUR),
        }
        for item in (self.outline, self.ofd_line, self.bpd_line):
            item.setZValue(10)
            view_box.addItem(item)
        for handle in self.handles.values():
            view_box.addItem(handle)
            handle.sigPositionChanged.connect(self._on_handle_moved)
            handle.sigPositionChangeFinished.connect(self._on_handle_released)
        self._ellipse_visible = True
        self._axes_visible = True
        self._refresh_visibility()

    # Public API --------------------------------------------------------------------------------
    def ellipse(self) -> Ellipse | None:
        return self._shape.to_ellipse() if self._shape is not None else None

    def set_ellipse(self, ellipse: Ellipse | None) -> None:
        """Show `ellipse` (frame pixels), or hide everything for None. Emits nothing."""
        self._shape = EditableEllipse.from_ellipse(ellipse) if ellipse is not None else None
        self._drag_start = None
        self._layout()
        self._refresh_visibility()

    def set_overlays(self, ellipse_visible: bool, axes_visible: bool) -> None:
        self._ellipse_visible = ellipse_visible
        self._axes_visible = axes_visible
        self._refresh_visibility()

    def set_opacity(self, opacity: float) -> None:
        for item in (self.outline, self.ofd_line, self.bpd_line, *self.handles.values()):
            item.setOpacity(opacity)

    def set_editable(self, editable: bool) -> None:
        self._editable = editable
        self._refresh_visibility()

    def handle_position(self, role: str) -> tuple[float, float]:
        pos = self.handles[role].pos()
        return float(pos.x()), float(pos.y())

    def drag_handle(self, role: str, to_xy: tuple[float, float]) -> None:
        """Drag a handle to `to_xy` as the mouse would (move, then release): one edit."""
        handle = self.handles[role]
        handle.setPos(*to_xy)
        handle.sigPositionChangeFinished.emit(handle)

    # Internals ---------------------------------------------------------------------------------
    def _refresh_visibility(self) -> None:
        has_shape = self._shape is not None
        self.outline.setVisible(has_shape and self._ellipse_visible)
        self.ofd_line.setVisible(has_shape and self._axes_visible)
        self.bpd_line.setVisible(has_shape and self._axes_visible)
        show_handles = has_shape and self._editable and self._ellipse_visible
        for handle in self.handles.values():
            handle.setVisible(show_handles)

    def _layout(self) -> None:
        """Place outline, axes and handles from the current shape."""
        if self._shape is None:
            return
        self._laying_out = True
        try:
            outline = self._shape.outline()
            self.outline.setData(outline[:, 0], outline[:, 1])
            positions = self._shape.handle_positions()
            for line, (start, end) in (
                (self.ofd_line, ("major-", "major+")),
                (self.bpd_line, ("minor-", "minor+")),
            ):
                xy = np.stack([positions[start], positions[end]])
                line.setData(xy[:, 0], xy[:, 1])
            # The dragged handle too: a BPD end or the rotation handle is held on its track.
            for role, handle in self.handles.items():
                handle.setPos(*positions[role])
        finally:
            self._laying_out = False

    def _on_handle_moved(self, handle: _Handle) -> None:
        if self._laying_out or self._shape is None:
            return
        if self._drag_start is None:
            self._drag_start = self._shape
        pos = handle.pos()
        self._shape = drag_handle(self._drag_start, handle.role, (pos.x(), pos.y()))
        self._layout()
        self.ellipseChanged.emit(self._shape.to_ellipse())

    def _on_handle_released(self, _handle: object) -> None:
        if self._drag_start is None or self._shape is None:
            return
        before = self._drag_start.to_ellipse()
        # Re-lay out from the normalised ellipse so handles take their final roles.
        self._shape = EditableEllipse.from_ellipse(self._shape.to_ellipse())
        self._drag_start = None
        self._layout()
        after = self._shape.to_ellipse()
        if after != before:
            self.editFinished.emit(before, after)
