"""How crisp and contrasted a frame's head border is, measured on the frame's own pixels.

The network's confidence barely sees blur or a washed-out image (a blurred head is still
segmented, often with a smooth, confident border), so the best-frame ranking
(`core.best_frame`) also weighs what the image shows at the fitted ellipse:

* edge_strength: the mean gradient magnitude (Sobel, after a Gaussian of sigma 1.5 px so that
  speckle and pixel noise count less than the skull's edges) over the band 0.8-1.2 of the
  ellipse's normalised radius, in grey levels (0..1) per pixel. Blur lowers it, and so does a
  darker or flatter image: both make the skull border harder to place.
* contrast: the 90th percentile of the grey levels in that band (the skull, the band's brightest
  part) minus the mean inside the head (normalised radius below 0.6); the skull is a bright
  ring around a darker brain.

Both are absolute values of one frame; `core.best_frame` compares each with the clip's median.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .ellipse import Ellipse
from .order_stats import percentile

BAND_RADIUS = (0.8, 1.2)  # normalised radius of the skull band around the fitted ellipse
INSIDE_RADIUS = 0.6  # the brain, well inside the skull
SMOOTHING_SIGMA_PX = 1.5
SKULL_PERCENTILE = 90  # the skull ring is the brightest part of the band


@dataclass(frozen=True)
class ImageQuality:
    """A frame's edge strength and skull contrast at its ellipse (grey levels 0..1)."""

    edge_strength: float
    contrast: float


def image_quality(pixels: np.ndarray, ellipse_px: Ellipse) -> ImageQuality | None:
    """The quality of `pixels` (H, W grey, 0..1) at `ellipse_px` (frame pixels), or None when
    the band lies outside the frame."""
    outer_sq = BAND_RADIUS[1] ** 2
    window = ellipse_px.pixel_window(pixels.shape[:2], radius_sq=outer_sq)
    if window is None:
        return None
    # A margin so that the smoothing and the Sobel see real neighbours at the window's edges.
    margin = int(4 * SMOOTHING_SIGMA_PX) + 2
    rows, cols = window
    r0, c0 = max(rows.start - margin, 0), max(cols.start - margin, 0)
    padded = np.asarray(pixels[r0 : rows.stop + margin, c0 : cols.stop + margin], np.float32)
    smooth = cv2.GaussianBlur(padded, (0, 0), SMOOTHING_SIGMA_PX)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / 8.0  # Sobel's weights sum to 8
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    inner = (slice(rows.start - r0, rows.stop - r0), slice(cols.start - c0, cols.stop - c0))
    radius_sq = ellipse_px.radius_sq_in_window(window)
    band = (radius_sq >= BAND_RADIUS[0] ** 2) & (radius_sq <= outer_sq)
    inside = radius_sq < INSIDE_RADIUS**2
    if not band.any() or not inside.any():
        return None
    grey = padded[inner]
    edge = float(np.hypot(gx[inner], gy[inner])[band].mean())
    contrast = percentile(grey[band], SKULL_PERCENTILE) - float(grey[inside].mean())
    return ImageQuality(edge_strength=edge, contrast=contrast)
