"""The frame view: image, mask overlay, editable ellipse, window/level and point picking.

Mouse, as in OHIF and 3D Slicer: wheel zooms, middle-drag pans (left-drag on the image too),
right-drag sets window/level (horizontal: width, vertical: level), left-drag on a handle edits
the ellipse. Pixel coordinates are (x, y) = (column, row), y down.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QIODevice, QPointF, Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ..core.atomic import atomic_write_bytes
from ..core.spacing import Spacing
from .ellipse_editor import EllipseEditor

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

MASK_COLOUR = (0, 170, 255)
DEFAULT_LEVELS = (0.0, 1.0)  # frames are 0..1
MOUSE_HELP = (
    "Mouse: wheel zooms, middle-drag (or left-drag on the image) pans, right-drag sets "
    "window/level (left-right: width, up-down: level), left-drag a handle edits the ellipse. "
    "Double-click fits the frame to the window."
)


def write_png(image: QImage, path) -> None:
    """Save `image` as a PNG file atomically; OSError when it cannot be written."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError("the image could not be encoded as PNG")
    atomic_write_bytes(path, bytes(buffer.data()))


def mask_rgba(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(H, W, 4) uint8 overlay: the head (prob >= threshold) tinted, the rest transparent.

    The edge is soft (alpha follows the probability near the threshold) so that a sub-pixel
    boundary is visible as such.
    """
    alpha = np.clip((prob - threshold) * 8.0 + 0.5, 0.0, 1.0)
    rgba = np.zeros((*prob.shape, 4), dtype=np.uint8)
    rgba[..., :3] = MASK_COLOUR
    rgba[..., 3] = (alpha * 255).astype(np.uint8)
    return rgba


class FrameViewBox(pg.ViewBox):
    """A ViewBox with radiology mouse habits (see the module docstring)."""

    windowLevelDragged = Signal(float, float)  # (dx, dy) in screen pixels since the last move
    windowLevelFinished = Signal()
    pointClicked = Signal(float, float)  # (x, y) frame pixels, while picking points
    doubleClicked = Signal()

    def __init__(self) -> None:
        super().__init__(invertY=True, lockAspect=True, enableMenu=False)
        self.picking = False

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 (Qt naming)
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.pos() - ev.lastPos()
            self.windowLevelDragged.emit(float(delta.x()), float(delta.y()))
            if ev.isFinish():
                self.windowLevelFinished.emit()
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (Qt naming)
        if ev.button() == Qt.MouseButton.LeftButton:
            if ev.double():
                ev.accept()
                self.doubleClicked.emit()
                return
            if self.picking:
                ev.accept()
                point = self.mapSceneToView(ev.scenePos())
                self.pointClicked.emit(float(point.x()), float(point.y()))
                return
        super().mouseClickEvent(ev)


class FrameView(QWidget):
    """Shows one frame with its overlays; the ellipse editor lives in `self.editor`."""

    cursorMoved = Signal(object)  # (x, y, value) in frame pixels, or None when off the frame
    levelsChanged = Signal(float, float)  # (low, high) display levels
    pointsPicked = Signal(list)  # list of (x, y) once the requested number was clicked
    pickedOutside = Signal()  # a point was clicked off the frame while picking: not taken

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsView(background=(20, 20, 20))
        self.view_box = FrameViewBox()
        self.graphics.setCentralItem(self.view_box)
        self.graphics.setToolTip(MOUSE_HELP)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)

        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.mask_item = pg.ImageItem(axisOrder="row-major")
        self.mask_item.setZValue(5)
        self.view_box.addItem(self.image_item)
        self.view_box.addItem(self.mask_item)
        self.pick_line = pg.PlotDataItem(
            pen=pg.mkPen((255, 80, 80), width=2), symbol="x", symbolPen=(255, 80, 80)
        )
        self.pick_line.setZValue(30)
        self.view_box.addItem(self.pick_line)
        self.editor = EllipseEditor(self.view_box, self)

        self._pixels: np.ndarray | None = None
        self._levels = DEFAULT_LEVELS
        self._picked: list[tuple[float, float]] = []
        self._points_wanted = 0
        self._mask_visible = True
        self._mask_opacity = 0.35

        self.view_box.windowLevelDragged.connect(self._on_window_level_drag)
        self.view_box.pointClicked.connect(self._on_point_clicked)
        self.view_box.doubleClicked.connect(self.fit_to_window)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

    # Frame and overlays ------------------------------------------------------------------------
    def set_frame(self, pixels: np.ndarray | None, spacing: Spacing | None = None) -> None:
        """Show `pixels` ((H, W) float 0..1) and fit it to the window when its size changed."""
        old_shape = None if self._pixels is None else self._pixels.shape
        self._pixels = pixels
        if pixels is None:
            self.image_item.clear()
            self.mask_item.clear()
            self.editor.set_ellipse(None)
            return
        self.image_item.setImage(pixels, levels=self._levels, autoLevels=False)
        if spacing is not None and spacing.calibrated:
            # Square screen pixels per mm: a pixel is col_mm wide and row_mm tall.
            self.view_box.setAspectLocked(True, ratio=spacing.col_mm / spacing.row_mm)
        else:
            self.view_box.setAspectLocked(True, ratio=1.0)
        if old_shape != pixels.shape:
            self.fit_to_window()

    def pixels(self) -> np.ndarray | None:
        return self._pixels

    def set_mask(self, prob: np.ndarray | None) -> None:
        """Overlay the head probability ((H, W) 0..1 at frame size), or nothing for None."""
        if prob is None:
            self.mask_item.clear()
            return
        self.mask_item.setImage(mask_rgba(prob), autoLevels=False, levels=(0, 255))
        self._apply_mask_style()

    def set_mask_style(self, visible: bool, opacity: float) -> None:
        self._mask_visible = visible
        self._mask_opacity = opacity
        self._apply_mask_style()

    def _apply_mask_style(self) -> None:
        self.mask_item.setVisible(self._mask_visible)
        self.mask_item.setOpacity(self._mask_opacity)

    def fit_to_window(self) -> None:
        if self._pixels is not None:
            height, width = self._pixels.shape
            self.view_box.setRange(
                xRange=(-0.5, width - 0.5), yRange=(-0.5, height - 0.5), padding=0.01
            )

    # Window / level ----------------------------------------------------------------------------
    def levels(self) -> tuple[float, float]:
        return self._levels

    def set_levels(self, low: float, high: float) -> None:
        if high - low < 1e-3:
            high = low + 1e-3
        self._levels = (float(low), float(high))
        self.image_item.setLevels(self._levels)
        self.levelsChanged.emit(*self._levels)

    def reset_levels(self) -> None:
        self.set_levels(*DEFAULT_LEVELS)

    def _on_window_level_drag(self, dx: float, dy: float) -> None:
        low, high = self._levels
        width, centre = high - low, (high + low) / 2
        # One screen pixel = 0.4 % of the full range; dragging right widens, down raises level.
        width = max(1e-3, width + dx * 0.004)
        centre = centre + dy * 0.004
        self.set_levels(centre - width / 2, centre + width / 2)

    # Cursor readout ----------------------------------------------------------------------------
    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self._pixels is None or not self.view_box.sceneBoundingRect().contains(scene_pos):
            self.cursorMoved.emit(None)
            return
        point = self.view_box.mapSceneToView(scene_pos)
        x, y = float(point.x()), float(point.y())
        col, row = int(round(x)), int(round(y))
        height, width = self._pixels.shape
        if 0 <= row < height and 0 <= col < width:
            self.cursorMoved.emit((x, y, float(self._pixels[row, col])))
        else:
            self.cursorMoved.emit(None)

    # Point picking (two-point calibration) ----------------------------------------------------
    def start_picking(self, count: int) -> None:
        """Collect `count` left clicks on the frame, then emit `pointsPicked`."""
        self._picked = []
        self._points_wanted = count
        self.view_box.picking = True
        self.graphics.setCursor(Qt.CursorShape.CrossCursor)
        self.pick_line.setData([], [])

    def cancel_picking(self) -> None:
        self.view_box.picking = False
        self._points_wanted = 0
        self._picked = []
        self.pick_line.setData([], [])
        self.graphics.unsetCursor()

    def is_picking(self) -> bool:
        return self.view_box.picking

    def on_frame(self, x: float, y: float) -> bool:
        """Whether (x, y) lies on a pixel of the frame (pixel centres at integers)."""
        if self._pixels is None:
            return False
        height, width = self._pixels.shape[:2]
        return -0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5

    def _on_point_clicked(self, x: float, y: float) -> None:
        if not self.on_frame(x, y):  # a calibration measures the image, not the background
            self.pickedOutside.emit()
            return
        self._picked.append((x, y))
        xs, ys = zip(*self._picked, strict=True)
        self.pick_line.setData(list(xs), list(ys))
        if len(self._picked) >= self._points_wanted:
            points = list(self._picked)
            self.view_box.picking = False
            self.graphics.unsetCursor()
            self.pointsPicked.emit(points)

    # Export ------------------------------------------------------------------------------------
    def grab_image(self) -> QImage:
        """The view as shown (frame, overlays, ellipse) at screen resolution."""
        return self.graphics.grab().toImage()
