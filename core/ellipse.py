"""Ellipses: the geometry type shared by fitting, biometry, display and export.

Convention: (x, y) = (column, row); `a >= b` are semi-axes; `angle` (radians, [0, pi)) is the
direction of the `a` axis from +x towards +y (image y points down).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from .ellipse_field import EllipseField, field_for
from .spacing import Spacing


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    a: float
    b: float
    angle: float

    @classmethod
    def normalised(cls, cx: float, cy: float, a: float, b: float, angle: float) -> Ellipse:
        """Build with a >= b and angle folded into [0, pi)."""
        a, b = abs(float(a)), abs(float(b))
        if b > a:
            a, b = b, a
            angle += math.pi / 2
        return cls(float(cx), float(cy), a, b, float(angle) % math.pi)

    def conic(self) -> np.ndarray:
        """3x3 symmetric matrix C with [x y 1] C [x y 1]^T = 0 on the ellipse."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        rot = np.array([[c, -s], [s, c]])
        inner = rot @ np.diag([1 / self.a**2, 1 / self.b**2]) @ rot.T
        centre = np.array([self.cx, self.cy])
        conic = np.zeros((3, 3))
        conic[:2, :2] = inner
        conic[:2, 2] = conic[2, :2] = -inner @ centre
        conic[2, 2] = centre @ inner @ centre - 1
        return conic

    @classmethod
    def from_conic(cls, conic: np.ndarray) -> Ellipse:
        inner = conic[:2, :2]
        centre = np.linalg.solve(inner, -conic[:2, 2])
        k = -(conic[2, 2] + conic[:2, 2] @ centre)
        eigvals, eigvecs = np.linalg.eigh(inner / k)
        if np.any(eigvals <= 0):
            raise ValueError("conic is not an ellipse")
        # eigh sorts ascending: the smallest eigenvalue belongs to the longest axis.
        a, b = 1 / math.sqrt(eigvals[0]), 1 / math.sqrt(eigvals[1])
        angle = math.atan2(eigvecs[1, 0], eigvecs[0, 0])
        return cls.normalised(centre[0], centre[1], a, b, angle)

    def scaled(self, sx: float, sy: float) -> Ellipse:
        """The exact image of this ellipse under x -> sx * x, y -> sy * y (e.g. px <-> mm)."""
        if math.isclose(sx, sy, rel_tol=1e-12):
            return Ellipse(self.cx * sx, self.cy * sy, self.a * sx, self.b * sx, self.angle)
        inv = np.diag([1 / sx, 1 / sy, 1.0])
        return Ellipse.from_conic(inv @ self.conic() @ inv)

    def points(self, n: int = 360) -> np.ndarray:
        """(n, 2) points (x, y) along the ellipse."""
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        c, s = math.cos(self.angle), math.sin(self.angle)
        x = self.cx + self.a * np.cos(t) * c - self.b * np.sin(t) * s
        y = self.cy + self.a * np.cos(t) * s + self.b * np.sin(t) * c
        return np.stack([x, y], axis=1)

    def axis_endpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """((2, 2) major-axis ends, (2, 2) minor-axis ends) as (x, y) rows."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        centre = np.array([self.cx, self.cy])
        major = np.array([c, s]) * self.a
        minor = np.array([-s, c]) * self.b
        return np.stack([centre - major, centre + major]), np.stack(
            [centre - minor, centre + minor]
        )

    def pixel_window(
        self, shape: tuple[int, int], radius_sq: float = 1.0
    ) -> tuple[slice, slice] | None:
        """(rows, cols) slices of `shape` covering the ellipse grown to normalised radius^2
        `radius_sq`, or None when that lies outside the frame. Work on a frame's pixels near an
        ellipse can stay inside this window instead of the whole frame."""
        grow = math.sqrt(radius_sq)
        c, s = math.cos(self.angle), math.sin(self.angle)
        half_x = grow * math.hypot(self.a * c, self.b * s)
        half_y = grow * math.hypot(self.a * s, self.b * c)
        col0, col1 = (
            max(math.floor(self.cx - half_x), 0),
            min(math.ceil(self.cx + half_x) + 1, shape[1]),
        )
        row0, row1 = (
            max(math.floor(self.cy - half_y), 0),
            min(math.ceil(self.cy + half_y) + 1, shape[0]),
        )
        if col0 >= col1 or row0 >= row1:
            return None
        return slice(row0, row1), slice(col0, col1)

    def radius_sq_in_window(self, window: tuple[slice, slice]) -> np.ndarray:
        """normalised_radius_sq at the pixel centres of `window` (from `pixel_window`)."""
        rows, cols = window
        ys = np.arange(rows.start, rows.stop, dtype=np.float64)[:, None]
        xs = np.arange(cols.start, cols.stop, dtype=np.float64)[None, :]
        return self.normalised_radius_sq(xs, ys)

    def normalised_radius_sq(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """d = (u/a)^2 + (v/b)^2 in the ellipse frame: < 1 inside, 1 on, > 1 outside."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = xs - self.cx, ys - self.cy
        u = dx * c + dy * s
        v = -dx * s + dy * c
        return (u / self.a) ** 2 + (v / self.b) ** 2


@dataclass(frozen=True)
class EllipseFit:
    """An ellipse fitted to a segmentation, with what it was fitted to.

    `ellipse_px` is in frame pixel coordinates; `fit_iou` is the IoU between the ellipse and the
    segmented component, both on the probability map's own grid (1.0 = the segmentation is
    exactly elliptical), a fit-quality figure; `n_contour_points` is how many sub-pixel contour
    points the fit used; `component_mask` is the component as (H, W) bool at frame size,
    computed on first use (measuring needs only the ellipse). `ellipse_on_map` is `ellipse_px`
    on the map's grid and `component_areas` the areas of every component of prob > `level`:
    the fit works them out anyway, and the head-plane check reads them too. `map_field` is
    `ellipse_on_map`'s `EllipseField` on the map, over the window the caller asked for (at
    least the ellipse's own, which the IoU reads): the border confidence and the plane check
    read theirs from it instead of working it out again.
    """

    ellipse_px: Ellipse
    fit_iou: float
    n_contour_points: int
    component_map: np.ndarray  # (h, w) float, see `component_map`
    frame_shape: tuple[int, int]
    ellipse_on_map: Ellipse
    component_areas: np.ndarray  # see `Components.areas`
    level: float = 0.5
    map_field: EllipseField | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def component_mask(self) -> np.ndarray:
        restricted = self.component_map
        if restricted.shape != tuple(self.frame_shape):
            size = (self.frame_shape[1], self.frame_shape[0])
            restricted = cv2.resize(restricted, size, interpolation=cv2.INTER_LINEAR)
        return largest_component(restricted > self.level)


MIN_FIT_POINTS = 5


def fit_ellipse_to_points(xy: np.ndarray) -> Ellipse:
    """Least-squares ellipse through (N, 2) points (x, y), N >= 5 (OpenCV's algebraic fit).

    Raises ValueError when there are too few points or they do not define an ellipse.
    """
    points = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(points) < MIN_FIT_POINTS:
        raise ValueError(
            f"an ellipse fit needs at least {MIN_FIT_POINTS} points, got {len(points)}"
        )
    # cv2 works in float32: centre the points first so large coordinates keep their precision.
    origin = points.mean(axis=0)
    (cx, cy), (width, height), angle_deg = cv2.fitEllipse((points - origin).astype(np.float32))
    # cv2 gives FULL axis lengths; `width` lies along `angle_deg` (degrees), in no fixed order.
    if not (np.isfinite([cx, cy, width, height]).all() and width > 0 and height > 0):
        raise ValueError("the points do not define an ellipse")
    return Ellipse.normalised(
        cx + origin[0], cy + origin[1], width / 2, height / 2, math.radians(angle_deg)
    )


def fit_points_in_mm(xy: np.ndarray, spacing: Spacing | None) -> Ellipse:
    """Fit pixel points; with anisotropic spacing fit in mm space and map the result back."""
    if spacing is None or spacing.isotropic:
        return fit_ellipse_to_points(xy)
    scale = np.array([spacing.col_mm, spacing.row_mm])
    ellipse_mm = fit_ellipse_to_points(np.asarray(xy, dtype=np.float64) * scale)
    return ellipse_mm.scaled(1 / spacing.col_mm, 1 / spacing.row_mm)


def fit_outline_mask(outline: np.ndarray, spacing: Spacing | None = None) -> Ellipse:
    """Pixel-space ellipse fitted to the pixel centres of a (H, W) bool outline (HC18 reference).

    This is how the HC18 reference HC is defined: a least-squares fit to the coordinates of every
    pixel of the 1-pixel annotation ring. With anisotropic spacing the fit is done in mm space.
    """
    rows, cols = np.nonzero(np.asarray(outline))
    return fit_points_in_mm(np.stack([cols, rows], axis=1), spacing)


@dataclass(frozen=True)
class Components:
    """The 8-connected components of a (H, W) bool mask, from one labelling pass.

    `labels`: (H, W) int32, 0 on the background, components numbered from 1; `areas`: the pixel
    count of each component, `areas[i]` for label i + 1 (empty when the mask is empty); `boxes`:
    (n, 4) left, top, width, height of each component's bounding box, in the same order.
    """

    labels: np.ndarray
    areas: np.ndarray
    boxes: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray) -> Components:
        _, labels, stats, _ = cv2.connectedComponentsWithStats(
            np.asarray(mask, dtype=np.uint8), connectivity=8
        )
        box_columns = [cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT]
        return cls(labels, stats[1:, cv2.CC_STAT_AREA], stats[1:, box_columns])

    def largest(self) -> np.ndarray:
        """(H, W) bool: the largest component with its holes filled (all False when none)."""
        return self.largest_in_box()[0]

    def largest_in_box(self) -> tuple[np.ndarray, tuple[slice, slice] | None]:
        """(`largest()`, the (rows, cols) window of its bounding box; None when there is none).

        Its holes are filled within that box: every pixel outside the box is background joined
        to the frame's border, so a background region of the box is a hole of the component
        exactly when it does not reach the box's edge (the same holes, on a smaller array).
        """
        if self.areas.size == 0:
            return np.zeros(self.labels.shape, dtype=bool), None
        index = int(np.argmax(self.areas))
        left, top, width, height = (int(value) for value in self.boxes[index])
        box = (slice(top, top + height), slice(left, left + width))
        largest = np.zeros(self.labels.shape, dtype=bool)
        largest[box] = fill_holes(self.labels[box] == 1 + index)
        return largest, box


def largest_component(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the largest 8-connected component of `mask` with its holes filled."""
    return Components.of(mask).largest()


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool with every background region not connected to the border set to True."""
    padded = np.pad(np.asarray(mask, dtype=np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood == 0
    return (padded.astype(bool) | holes)[1:-1, 1:-1]


def component_map(prob: np.ndarray, level: float = 0.5) -> np.ndarray:
    """(h, w) float: `prob` kept only on the largest component of prob > level and its border.

    Holes of the component are set to 1 (only its outer boundary remains) and pixels beyond its
    one-pixel neighbourhood to 0; with 8-connectivity every neighbour of the component is
    <= level, so the values that interpolation at its border uses are untouched.
    """
    prob = np.asarray(prob, dtype=np.float64)
    return _restricted_to(prob, largest_component(prob > level), level)


def _restricted_to(
    prob: np.ndarray,
    component: np.ndarray,
    level: float,
    box: tuple[slice, slice] | None = None,
) -> np.ndarray:
    """`component_map` of a float64 `prob` whose largest component (holes filled) is known.

    `box`: the component's bounding box (`Components.largest_in_box`), when known: the map is
    0 beyond one pixel around it, so only that window is worked out (the same values)."""
    if box is not None:
        near = _grown(box, prob.shape)
        restricted = np.zeros(prob.shape)
        restricted[near] = _restricted_to(prob[near], component[near], level)
        return restricted
    neighbourhood = cv2.dilate(component.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    restricted = np.where(neighbourhood, prob, 0.0)
    restricted[component & (prob <= level)] = 1.0
    return restricted


def _grown(box: tuple[slice, slice], shape: tuple[int, ...]) -> tuple[slice, slice]:
    """A (rows, cols) window grown by one pixel on every side, within a (H, W) grid."""
    rows, cols = box
    return (
        slice(max(rows.start - 1, 0), min(rows.stop + 1, shape[0])),
        slice(max(cols.start - 1, 0), min(cols.stop + 1, shape[1])),
    )


def subpixel_contour(prob: np.ndarray, level: float = 0.5) -> np.ndarray:
    """(N, 2) points (x, y) of the `level` iso-line around the largest component of prob > level.

    Outer boundary only (holes filled); the map is zero-padded so that a component touching the
    frame edge still gives a closed outline. The points are where the iso-line crosses the
    edges between pixel centres (linear interpolation: the vertices marching squares gives),
    in no order along the outline, each once: an ellipse fit needs no order. Returns an empty
    (0, 2) array when nothing exceeds `level`.
    """
    return _outer_contour(component_map(prob, level), level)


def _outer_contour(
    restricted: np.ndarray, level: float, near: tuple[slice, slice] | None = None
) -> np.ndarray:
    """(N, 2) x, y of the outer `level` iso-line of a `component_map` result (0 outside the
    window `near`, when given), as `subpixel_contour` gives them.

    Every crossing of `level` in such a map lies on the component's outer boundary: its holes
    are 1, every 8-neighbour of it is <= level and everything further out is 0. So the crossings
    themselves are the outline, and chaining them into an ordered contour (what
    `skimage.measure.find_contours` spends most of its time on) is not needed. Unlike taking the
    longest chained contour, this keeps all of a component whose parts touch only at a corner.
    """
    near = near or (slice(0, restricted.shape[0]), slice(0, restricted.shape[1]))
    if not (restricted[near] > level).any():
        return np.zeros((0, 2))
    # Only the box around the component's neighbourhood (everything outside it is 0), padded
    # with 0 so that a component on the map's edge is closed there.
    rows = np.flatnonzero(restricted[near].any(axis=1)) + near[0].start
    cols = np.flatnonzero(restricted[near].any(axis=0)) + near[1].start
    top, left = int(rows[0]), int(cols[0])
    box = np.pad(restricted[top : int(rows[-1]) + 1, left : int(cols[-1]) + 1], 1)
    above = box > level
    # Along rows (between columns c and c + 1), then along columns (between rows r and r + 1):
    # the fraction (level - from) / (to - from), the same floats as marching squares.
    r, c = np.nonzero(above[:, :-1] != above[:, 1:])
    start, end = box[r, c], box[r, c + 1]
    along_rows = np.stack([c + (level - start) / (end - start), r.astype(np.float64)], axis=1)
    r, c = np.nonzero(above[:-1, :] != above[1:, :])
    start, end = box[r, c], box[r + 1, c]
    along_cols = np.stack([c.astype(np.float64), r + (level - start) / (end - start)], axis=1)
    points = np.concatenate([along_rows, along_cols])
    if (box == level).any():
        # A pixel exactly at `level` is the crossing point of each of its edges: keep it once.
        points = np.unique(points, axis=0)
    return points + (left - 1, top - 1)


def map_to_frame(xy: np.ndarray, net_shape: tuple[int, int], frame_shape: tuple[int, int]):
    """Map (N, 2) (x, y) from a (h, w) map to a (H, W) frame, each axis with its own scale.

    Pixel-centre convention of cv2.resize: x_frame = (x + 0.5) * W / w - 0.5 (same for y).
    """
    (h, w), (frame_h, frame_w) = net_shape, frame_shape
    scale = np.array([frame_w / w, frame_h / h])
    return (np.asarray(xy, dtype=np.float64) + 0.5) * scale - 0.5


def ellipse_from_probability(
    prob: np.ndarray,
    frame_shape: tuple[int, int] | None = None,
    threshold: float = 0.5,
    spacing: Spacing | None = None,
    *,
    field_limit: float = 1.0,
) -> EllipseFit | None:
    """Ellipse of the head in a (h, w) probability map, in frame pixel coordinates.

    The largest component of prob > threshold (holes filled) gives a sub-pixel iso-contour at
    `threshold`; it is mapped to the (H, W) frame axis by axis (when the map is at network
    resolution) and fitted by least squares (in mm space when `spacing` is anisotropic).
    Returns None when no component or too few contour points are found. `field_limit`: the
    normalised radius^2 (>= 1) out to which the fit's `map_field` covers the map (a caller
    that reads bands beyond the ellipse asks for them here).
    """
    prob = np.asarray(prob, dtype=np.float64)
    frame_shape = tuple(frame_shape) if frame_shape is not None else prob.shape
    components = Components.of(prob > threshold)
    largest, box = components.largest_in_box()
    restricted = _restricted_to(prob, largest, threshold, box)
    near = None if box is None else _grown(box, prob.shape)  # the map is 0 beyond it
    contour = _outer_contour(restricted, threshold, near)
    if len(contour) < MIN_FIT_POINTS:
        return None
    try:
        ellipse = fit_points_in_mm(map_to_frame(contour, prob.shape, frame_shape), spacing)
    except (ValueError, np.linalg.LinAlgError):
        return None
    on_map = ellipse_on_map_grid(ellipse, frame_shape, prob.shape)
    map_field = EllipseField.of(on_map, prob.shape, max(field_limit, 1.0))
    inside = rasterize_ellipse(on_map, prob.shape, map_field)
    fit_iou = ellipse_iou(inside, restricted > threshold)
    return EllipseFit(
        ellipse,
        fit_iou,
        len(contour),
        restricted,
        frame_shape,
        on_map,
        components.areas,
        threshold,
        map_field,
    )


def ellipse_on_map_grid(
    ellipse_px: Ellipse, frame_shape: tuple[int, int], map_shape: tuple[int, int]
) -> Ellipse:
    """The frame ellipse on a (h, w) map's grid: the inverse of `map_to_frame`."""
    if tuple(frame_shape) == tuple(map_shape):
        return ellipse_px
    sx, sy = map_shape[1] / frame_shape[1], map_shape[0] / frame_shape[0]
    scaled = ellipse_px.scaled(sx, sy)
    return replace(scaled, cx=scaled.cx + 0.5 * sx - 0.5, cy=scaled.cy + 0.5 * sy - 0.5)


def rasterize_ellipse(
    ellipse_px: Ellipse, shape: tuple[int, int], map_field: EllipseField | None = None
) -> np.ndarray:
    """(H, W) bool: pixel centres inside or on the ellipse (normalised radius^2 <= 1).

    `map_field`: the ellipse's `EllipseField` on this grid when the caller has it."""
    mask = np.zeros(shape, dtype=bool)
    inside = field_for(ellipse_px, shape, 1.0, map_field)
    if inside.window is not None:
        mask[inside.window] = inside.radius_sq <= 1
    return mask


def ellipse_iou(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks; 1.0 when both are empty."""
    a, b = np.asarray(mask_a, dtype=bool), np.asarray(mask_b, dtype=bool)
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return np.count_nonzero(a & b) / union
