"""The second look at a head: a refining network on a square window around the first ellipse.

Why: the first pass sees the whole frame at 224x336, so on a large head one network pixel is close
to a millimetre. The refining model (named by the first model's `hc_studio.refiner`) sees only the
window `core.head_crop.CropWindow.around(first ellipse)` at its own input size, trained on such
windows (`benchmarks/make_head_crops.py`).

The two passes are also two opinions: how far their head circumferences lie apart
(`disagreement`, relative, so it needs no calibration) is a review signal of its own. Frames the
first model measured confidently but wrongly tend to be those where the two disagree
(docs/benchmarks.md, section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .biometry import ellipse_in_mm, ramanujan_perimeter
from .ellipse import MIN_FIT_POINTS, Ellipse, fit_points_in_mm, subpixel_contour
from .head_crop import CropWindow
from .inference import SegmentationEngine
from .spacing_value import Spacing


@dataclass(frozen=True)
class Refinement:
    """The refining pass of one frame.

    `prob`: (S, S) head probability on the window; `ellipse_px`: the ellipse fitted to its
    sub-pixel contour, in frame pixels; `disagreement`: |HC refined - HC first| / HC first.
    """

    window: CropWindow
    prob: np.ndarray
    ellipse_px: Ellipse
    disagreement: float

    def paste_into(self, frame_prob: np.ndarray) -> np.ndarray:
        """A copy of a (H, W) frame probability with the window's part replaced by this pass."""
        side = self.window.side
        window_prob = cv2.resize(self.prob, (side, side), interpolation=cv2.INTER_LINEAR)
        combined = np.array(frame_prob, dtype=np.float32, copy=True)
        height, width = combined.shape
        x0, y0 = self.window.x0, self.window.y0
        ys, xs = max(y0, 0), max(x0, 0)
        ye, xe = min(y0 + side, height), min(x0 + side, width)
        if ye > ys and xe > xs:
            combined[ys:ye, xs:xe] = window_prob[ys - y0 : ye - y0, xs - x0 : xe - x0]
        return combined


def perimeter_in(ellipse_px: Ellipse, spacing: Spacing | None) -> float:
    """The ellipse's perimeter in mm-space for an anisotropic spacing, else in pixels."""
    if spacing is not None and not spacing.isotropic:
        ellipse_mm = ellipse_in_mm(ellipse_px, spacing)
        return ramanujan_perimeter(ellipse_mm.a, ellipse_mm.b)
    return ramanujan_perimeter(ellipse_px.a, ellipse_px.b)


def refine(
    pixels: np.ndarray,
    first_ellipse_px: Ellipse,
    refiner: SegmentationEngine,
    margin: float,
    spacing: Spacing | None = None,
) -> Refinement | None:
    """Run the refining model on the window around `first_ellipse_px`; None when it finds no
    ellipse there."""
    size = refiner.info.input_height
    window = CropWindow.around(first_ellipse_px, margin)
    crop = window.cut(np.asarray(pixels, dtype=np.float32), size)
    prob = refiner.predict(crop).prob
    contour = subpixel_contour(prob)
    if len(contour) < MIN_FIT_POINTS:
        return None
    try:
        ellipse_px = fit_points_in_mm(window.to_frame_xy(contour, size), spacing)
    except (ValueError, np.linalg.LinAlgError):
        return None
    first = perimeter_in(first_ellipse_px, spacing)
    disagreement = abs(perimeter_in(ellipse_px, spacing) - first) / first
    return Refinement(window, prob, ellipse_px, float(disagreement))
