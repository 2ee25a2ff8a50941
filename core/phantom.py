"""Synthetic ultrasound head phantoms with a known ellipse, for tests and demonstrations.

A phantom is a dark background (~0.1), a brain interior (~0.35) and a bright skull ring (~0.9)
lying just inside the outer border of the truth ellipse, under multiplicative speckle and a
little blur. The truth ellipse is the outer border of the ring, like the HC18 reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .ellipse import Ellipse, rasterize_ellipse
from .spacing import Spacing

BACKGROUND = 0.1
INTERIOR = 0.35
SKULL = 0.9
DEFAULT_SPACING_MM = 0.14  # the mean HC18 pixel size
_EDGE_MARGIN_PX = 4.0
_BLUR_SIGMA_PX = 0.8


@dataclass(frozen=True)
class Phantom:
    """image: (H, W) float32 in 0..1; mask: (H, W) bool, the filled truth ellipse (outer skull
    border); ellipse_px: the truth in pixel coordinates; spacing: its pixel size; outline:
    (H, W) bool 1-pixel outline of the truth ellipse, drawn like an HC18 annotation."""

    image: np.ndarray
    mask: np.ndarray
    ellipse_px: Ellipse
    spacing: Spacing
    outline: np.ndarray


def random_ellipse(shape: tuple[int, int], rng: np.random.Generator, margin: float) -> Ellipse:
    """A head-like ellipse (axis ratio 0.72-0.92, any angle) lying `margin` px inside the frame."""
    height, width = shape
    a = rng.uniform(0.28, 0.45) * min(height, width)
    b = a * rng.uniform(0.72, 0.92)
    angle = rng.uniform(0.0, math.pi)
    c, s = math.cos(angle), math.sin(angle)
    half_w = math.hypot(a * c, b * s)
    half_h = math.hypot(a * s, b * c)
    shrink = min(1.0, (width / 2 - margin) / half_w, (height / 2 - margin) / half_h)
    a, b, half_w, half_h = a * shrink, b * shrink, half_w * shrink, half_h * shrink
    cx = rng.uniform(half_w + margin, width - half_w - margin)
    cy = rng.uniform(half_h + margin, height - half_h - margin)
    return Ellipse.normalised(cx, cy, a, b, angle)


def _coverage(ellipse: Ellipse, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float: anti-aliased inside-ness, 0.5 exactly on the ellipse (signed distance ramp)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    c, s = math.cos(ellipse.angle), math.sin(ellipse.angle)
    dx, dy = cols - ellipse.cx, rows - ellipse.cy
    u, v = dx * c + dy * s, -dx * s + dy * c
    radius = np.sqrt((u / ellipse.a) ** 2 + (v / ellipse.b) ** 2)
    # |grad radius| = |(u/a^2, v/b^2)| / radius; (radius - 1) / |grad| approximates the signed
    # distance to the ellipse in pixels, exact to first order at the border.
    gradient = np.hypot(u / ellipse.a**2, v / ellipse.b**2) / np.maximum(radius, 1e-9)
    signed_distance = (radius - 1) / np.maximum(gradient, 1e-9)
    return np.clip(0.5 - signed_distance, 0.0, 1.0)


def draw_outline(ellipse: Ellipse, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool 1-pixel (8-connected) outline of the ellipse, like an HC18 annotation.

    Drawn as a closed polyline through points of the exact ellipse at 1/16 pixel precision
    (cv2.ellipse rounds its angle to whole degrees and shifts the outline by ~0.1 pixel).
    """
    canvas = np.zeros(shape, dtype=np.uint8)
    shift = 4
    n_points = max(64, int(4 * ellipse.a))
    points = np.round(ellipse.points(n_points) * (1 << shift)).astype(np.int32)
    cv2.polylines(canvas, [points], True, 255, 1, cv2.LINE_8, shift)
    return canvas > 0


def make_phantom(
    shape: tuple[int, int] = (270, 400),
    ellipse_px: Ellipse | None = None,
    spacing: Spacing | None = None,
    seed: int = 0,
    ring_px: float = 6.0,
    speckle: float = 0.3,
) -> Phantom:
    """A phantom frame of `shape` (H, W); a random ellipse that fits the frame when none given.

    `ring_px` is the skull ring's thickness in pixels, `speckle` the standard deviation of the
    multiplicative (gamma, mean 1) speckle; `spacing` defaults to a square 0.14 mm pixel.
    """
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    if ellipse_px is None:
        ellipse_px = random_ellipse(shape, rng, margin=ring_px + _EDGE_MARGIN_PX)
    if spacing is None:
        spacing = Spacing.square(DEFAULT_SPACING_MM, "user")
    outer = _coverage(ellipse_px, shape)
    inner_ellipse = Ellipse(
        ellipse_px.cx,
        ellipse_px.cy,
        max(ellipse_px.a - ring_px, 1.0),
        max(ellipse_px.b - ring_px, 1.0),
        ellipse_px.angle,
    )
    inner = _coverage(inner_ellipse, shape)
    image = BACKGROUND + (INTERIOR - BACKGROUND) * outer + (SKULL - INTERIOR) * (outer - inner)
    if speckle > 0:
        image = image * rng.gamma(1.0 / speckle**2, speckle**2, size=shape)
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), _BLUR_SIGMA_PX)
    return Phantom(
        image=np.clip(image, 0.0, 1.0).astype(np.float32),
        mask=rasterize_ellipse(ellipse_px, shape),
        ellipse_px=ellipse_px,
        spacing=spacing,
        outline=draw_outline(ellipse_px, shape),
    )


def make_phantom_batch(n: int, shape: tuple[int, int] = (270, 400), seed: int = 0) -> list[Phantom]:
    """`n` phantoms with different random ellipses (seeds seed, seed + 1, ...)."""
    return [make_phantom(shape, seed=seed + index) for index in range(n)]
