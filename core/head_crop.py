"""The square window around a head that the refinement pass sees, and the way back to the frame.

One owner for the crop geometry: the training crops (`benchmarks/make_head_crops.py`) and the
second pass at inference (`core.refine`) must cut the same window the same way, or the refining
network is shown heads at another scale than it learned.

The window is axis-aligned and square, centred on the first-pass ellipse, with a side of
`2 * margin * a` frame pixels (a = semi-major axis), rounded to whole pixels so that cutting is a
slice of the frame (zero outside it) followed by one `cv2.resize` with INTER_AREA, like the first
pass. Pixel-centre convention of cv2.resize: x_frame = x0 + (u + 0.5) * side / size - 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .ellipse import Ellipse

DEFAULT_MARGIN = 1.25  # the head spans 1 / 1.25 = 80 % of the window's side


@dataclass(frozen=True)
class CropWindow:
    """A square window of the frame: top-left (x0, y0) and side, in frame pixels."""

    x0: int
    y0: int
    side: int

    @classmethod
    def around(cls, ellipse_px: Ellipse, margin: float = DEFAULT_MARGIN) -> CropWindow:
        side = max(16, int(round(2 * margin * ellipse_px.a)))
        return cls(int(round(ellipse_px.cx - side / 2)), int(round(ellipse_px.cy - side / 2)), side)

    def scale(self, size: int) -> float:
        """Frame pixels per crop pixel when the window is resized to size x size."""
        return self.side / size

    def cut(self, frame: np.ndarray, size: int) -> np.ndarray:
        """The window of a (H, W) float frame resized to (size, size); zero outside the frame."""
        height, width = frame.shape
        window = np.zeros((self.side, self.side), dtype=np.float32)
        ys, xs = max(self.y0, 0), max(self.x0, 0)
        ye, xe = min(self.y0 + self.side, height), min(self.x0 + self.side, width)
        if ye > ys and xe > xs:
            window[ys - self.y0 : ye - self.y0, xs - self.x0 : xe - self.x0] = frame[ys:ye, xs:xe]
        return cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA)

    def to_frame_xy(self, xy: np.ndarray, size: int) -> np.ndarray:
        """Map (N, 2) (x, y) on the (size, size) crop to frame pixel coordinates."""
        s = self.scale(size)
        return (np.asarray(xy, dtype=np.float64) + 0.5) * s - 0.5 + np.array([self.x0, self.y0])

    def ellipse_on_crop(self, ellipse_px: Ellipse, size: int) -> Ellipse:
        """A frame ellipse on the crop's grid: the inverse of `to_frame_xy`."""
        s = self.scale(size)
        return Ellipse(
            (ellipse_px.cx - self.x0 + 0.5) / s - 0.5,
            (ellipse_px.cy - self.y0 + 0.5) / s - 0.5,
            ellipse_px.a / s,
            ellipse_px.b / s,
            ellipse_px.angle,
        )

    def inside_share(self, frame_shape: tuple[int, int]) -> float:
        """Share of the window's area that lies inside the frame."""
        height, width = frame_shape
        dx = max(0, min(self.x0 + self.side, width) - max(self.x0, 0))
        dy = max(0, min(self.y0 + self.side, height) - max(self.y0, 0))
        return dx * dy / float(self.side * self.side)


def jittered_window(
    ellipse_px: Ellipse,
    rng: np.random.Generator,
    centre_sd: float = 0.04,
    margin_range: tuple[float, float] = (1.15, 1.4),
) -> CropWindow:
    """A window like `CropWindow.around`, moved and scaled at random, for training crops.

    The centre moves by a normal offset of `centre_sd * a` per axis and the margin is uniform in
    `margin_range`, so the refining network learns heads that the first pass placed imperfectly.
    """
    shift = rng.normal(0.0, centre_sd * ellipse_px.a, size=2)
    moved = Ellipse(
        ellipse_px.cx + shift[0],
        ellipse_px.cy + shift[1],
        ellipse_px.a,
        ellipse_px.b,
        ellipse_px.angle,
    )
    margin = float(rng.uniform(*margin_range))
    if not math.isfinite(margin):
        margin = DEFAULT_MARGIN
    return CropWindow.around(moved, margin)
