"""A head label from a mask image: filled masks, label maps, closed and open outlines.

What a clinic's annotation tool writes varies, and each kind is read on its own terms:

- a binary mask (one foreground level: 0/1, 0/255, 16-bit): foreground is every pixel above half
  that level (a clean mask: any non-zero pixel; JPEG ringing near zero is ignored);
- a label map (several structures, e.g. PSFHS: 1 pubic symphysis, 2 fetal head): the head is the
  label given with `mask_label`; without it the mask is refused with the values it holds, since
  guessing which structure is the head would train on the wrong one;
- a closed outline: filled as drawn;
- an outline that is not closed (a gap, or a few strokes): the ellipse is fitted to its pixels as
  for an HC18 outline, when the strokes go at least half-way round it; the label says so
  (`source` "open-outline");
- an HC18 annotation ring: the ellipse fitted to its pixel coordinates (the HC18 definition).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from skimage import measure

from .ellipse import MIN_FIT_POINTS, Ellipse, fill_holes, fit_ellipse_to_points, rasterize_ellipse

# A connected part of a mask smaller than this share of the largest part is a speck (drawing or
# compression noise) and is dropped; a larger one makes the mask "several blobs".
SIGNIFICANT_BLOB_SHARE = 0.05
# A filled mask covering less than this share of its fitted ellipse is not a head (e.g. a crescent).
MIN_FILL_OF_ELLIPSE = 0.5
# A region whose widest inscribed disc is narrower than this radius is a stroke, not a region.
MIN_REGION_RADIUS_PX = 3.0
MIN_SEMI_AXIS_PX = 1.0  # a thinner fit is a line, not a head
# A grey level covering at least this share of the non-zero pixels is a level of the mask, not
# compression noise; levels further apart than LABEL_SPREAD of the top level are distinct labels.
SIGNIFICANT_LEVEL_SHARE = 0.02
LABEL_SPREAD = 0.1
# An open outline must cover this many of ANGLE_BINS angular sectors of its ellipse (half-way
# round): a shorter arc does not pin down the other half of the head.
ANGLE_BINS = 36
MIN_OPEN_OUTLINE_BINS = 18

SOURCE_HC18 = "hc18-outline"
SOURCE_OUTLINE = "outline"
SOURCE_OPEN_OUTLINE = "open-outline"
SOURCE_FILLED = "filled"
SOURCE_DESCRIPTIONS = {
    SOURCE_HC18: "HC18 outline, ellipse fitted to its pixels",
    SOURCE_OUTLINE: "closed outline, filled as drawn",
    SOURCE_OPEN_OUTLINE: "outline not closed, ellipse fitted to its pixels as for HC18",
    SOURCE_FILLED: "filled mask",
}


class LabelProblem(Exception):
    """A mask that cannot be used; the message is the problem shown to the user."""


@dataclass(frozen=True)
class HeadLabel:
    """`mask` (H, W) bool (None when not asked for), `ellipse` in pixels, `source` (see above)."""

    mask: np.ndarray | None
    ellipse: Ellipse
    source: str


def describe_source(source: str, mask_label: int | None = None) -> str:
    """How a label was made, in words (for the import report)."""
    text = SOURCE_DESCRIPTIONS.get(source, source)
    return text if mask_label is None else f"{text} (label {mask_label} of a label map)"


def fit_ellipse_xy(xy: np.ndarray) -> Ellipse:
    """Least-squares ellipse through (N, 2) pixel points (x, y).

    Fitted in pixel coordinates even for anisotropic spacing: OpenCV's fit is equivariant under
    scaling each axis, so fitting mm coordinates and mapping back gives the same ellipse.
    """
    if len(xy) < MIN_FIT_POINTS:
        raise LabelProblem(f"no ellipse fits the mask (only {len(xy)} boundary points)")
    try:
        ellipse = fit_ellipse_to_points(xy)
    except (ValueError, np.linalg.LinAlgError):
        raise LabelProblem("no ellipse fits the mask (degenerate)") from None
    if not (ellipse.b >= MIN_SEMI_AXIS_PX and math.isfinite(ellipse.a)):
        raise LabelProblem("no ellipse fits the mask (degenerate: a line or a dot)")
    return ellipse


def _boundary_xy(filled: np.ndarray) -> np.ndarray:
    """(N, 2) points (x, y) of the filled region's outer 0.5 iso-contour (sub-pixel, unbiased:
    halfway between inside and outside pixel centres)."""
    padded = np.pad(filled.astype(np.float32), 1)
    contours = measure.find_contours(padded, 0.5)
    if not contours:
        return np.zeros((0, 2))
    rows_cols = max(contours, key=len) - 1.0  # undo the padding
    return rows_cols[:, ::-1]


def mask_levels(grey: np.ndarray) -> list[int]:
    """The non-zero grey levels that make up a mask (each at least SIGNIFICANT_LEVEL_SHARE of
    the non-zero pixels), ascending."""
    values, counts = np.unique(grey[grey > 0], return_counts=True)
    if values.size == 0:
        return []
    keep = counts >= SIGNIFICANT_LEVEL_SHARE * counts.sum()
    return [int(v) for v in values[keep]]


def foreground(grey: np.ndarray, mask_label: int | None = None) -> np.ndarray:
    """The head pixels of a mask image (see the module docstring); LabelProblem when empty or
    when a label map is given without `mask_label`."""
    if mask_label is not None:
        selected = grey == mask_label
        if not selected.any():
            found = ", ".join(str(v) for v in np.unique(grey)[:20])
            raise LabelProblem(f"label {mask_label} is not in the mask (values found: {found})")
        return selected
    top = float(grey.max()) if grey.size else 0.0
    if top <= 0.0:
        raise LabelProblem("mask is empty")
    levels = mask_levels(grey)
    if len(levels) > 1 and levels[-1] - levels[0] > LABEL_SPREAD * top:
        found = ", ".join(str(v) for v in levels)
        raise LabelProblem(
            f"mask is a label map with several values ({found}): say which is the head "
            "with --mask-label N"
        )
    return grey > top / 2


def _significant_blobs(binary: np.ndarray) -> list[np.ndarray]:
    """The connected parts (8-connected) of `binary` that are not specks, largest first."""
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=8
    )
    if n_labels <= 1:
        raise LabelProblem("mask is empty")
    sizes = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(sizes >= SIGNIFICANT_BLOB_SHARE * sizes.max())
    keep = keep[np.argsort(-sizes[keep])]
    return [labels == part + 1 for part in keep]


def _single_blob(binary: np.ndarray) -> np.ndarray:
    blobs = _significant_blobs(binary)
    if len(blobs) > 1:
        raise LabelProblem(f"mask has {len(blobs)} separate blobs; expected one head")
    return blobs[0]


def _inscribed_radius(region: np.ndarray) -> float:
    """Radius (px) of the widest disc that fits inside `region` (Euclidean distance map)."""
    padded = np.pad(region.astype(np.uint8), 1)
    return float(cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).max())


def rasterise(ellipse: Ellipse, shape: tuple[int, int]) -> np.ndarray:
    """`rasterize_ellipse` evaluated only over the ellipse's bounding box (same pixels, faster)."""
    height, width = shape
    reach = ellipse.a + 1
    x0, y0 = max(0, math.floor(ellipse.cx - reach)), max(0, math.floor(ellipse.cy - reach))
    x1 = min(width, math.ceil(ellipse.cx + reach) + 1)
    y1 = min(height, math.ceil(ellipse.cy + reach) + 1)
    mask = np.zeros(shape, bool)
    if x0 < x1 and y0 < y1:
        local = Ellipse(ellipse.cx - x0, ellipse.cy - y0, ellipse.a, ellipse.b, ellipse.angle)
        mask[y0:y1, x0:x1] = rasterize_ellipse(local, (y1 - y0, x1 - x0))
    return mask


def _angular_coverage(ellipse: Ellipse, xy: np.ndarray) -> int:
    """How many of ANGLE_BINS sectors of the ellipse (by its own parametric angle) hold points."""
    dx, dy = xy[:, 0] - ellipse.cx, xy[:, 1] - ellipse.cy
    cos, sin = math.cos(ellipse.angle), math.sin(ellipse.angle)
    u = (dx * cos + dy * sin) / ellipse.a
    v = (-dx * sin + dy * cos) / ellipse.b
    bins = ((np.arctan2(v, u) + math.pi) / (2 * math.pi) * ANGLE_BINS).astype(int) % ANGLE_BINS
    return int(np.unique(bins).size)


def _fit_stroke(binary: np.ndarray, want_mask: bool) -> HeadLabel:
    """An outline that is not closed: the ellipse through its pixels, if it goes half-way round."""
    strokes = np.zeros_like(binary)
    for blob in _significant_blobs(binary):
        strokes |= blob
    rows, cols = np.nonzero(strokes)
    xy = np.stack([cols, rows], axis=1).astype(float)
    try:
        ellipse = fit_ellipse_xy(xy)
    except LabelProblem:
        raise LabelProblem(
            "mask is a line or an outline that is not closed, and no ellipse fits it"
        ) from None
    covered = _angular_coverage(ellipse, xy)
    if covered < MIN_OPEN_OUTLINE_BINS:
        raise LabelProblem(
            "outline that is not closed covers only "
            f"{round(360 * covered / ANGLE_BINS)} degrees of its ellipse (at least 180 needed)"
        )
    mask = rasterise(ellipse, binary.shape) if want_mask else None
    return HeadLabel(mask, ellipse, SOURCE_OPEN_OUTLINE)


def label_from_grey(
    grey: np.ndarray, hc18_outline: bool, want_mask: bool = True, mask_label: int | None = None
) -> HeadLabel:
    """The head label of a mask image (see the module docstring).

    The mask is None when not `want_mask` and it is not needed to check the label (outlines
    fitted by their pixels). Raises LabelProblem for an empty mask, several blobs, an unnamed
    label map, a short open outline or no ellipse.
    """
    binary = foreground(grey, mask_label)
    if hc18_outline:
        ring = binary & _single_blob(fill_holes(binary))  # specks dropped
        rows, cols = np.nonzero(ring)
        ellipse = fit_ellipse_xy(np.stack([cols, rows], axis=1))
        mask = rasterise(ellipse, binary.shape) if want_mask else None
        return HeadLabel(mask, ellipse, SOURCE_HC18)
    if np.count_nonzero(binary) < MIN_FIT_POINTS:
        raise LabelProblem(f"no ellipse fits the mask (fewer than {MIN_FIT_POINTS} pixels)")
    filled = fill_holes(binary)
    # The widest inscribed disc tells a head (a region) from a stroke: a line, or an outline
    # whose gap kept it from being filled.
    if _inscribed_radius(_significant_blobs(filled)[0]) < MIN_REGION_RADIUS_PX:
        return _fit_stroke(binary, want_mask)
    filled = fill_holes(_single_blob(binary))
    ellipse = fit_ellipse_xy(_boundary_xy(filled))
    area = int(np.count_nonzero(filled))
    if area < MIN_FILL_OF_ELLIPSE * math.pi * ellipse.a * ellipse.b:
        raise LabelProblem("mask is not a filled head (it covers under half of its ellipse)")
    source = SOURCE_OUTLINE if area > 1.5 * np.count_nonzero(binary) else SOURCE_FILLED
    return HeadLabel(filled, ellipse, source)
