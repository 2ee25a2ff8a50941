"""One ellipse field on the map, read by the fit's IoU, the border confidence and the plane
check: every narrower window's values are those worked out for that window on its own."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hc_studio.core import plane_check
from hc_studio.core.ellipse import (
    Components,
    Ellipse,
    _outer_contour,
    _restricted_to,
    fill_holes,
    rasterize_ellipse,
)
from hc_studio.core.ellipse_field import EllipseField
from hc_studio.core.measure import border_confidence

SHAPE = (64, 96)
ELLIPSES = [
    Ellipse(48.3, 31.7, 20.2, 13.9, 0.41),  # inside the map
    Ellipse(3.6, 58.1, 25.0, 9.5, 2.7),  # cut by two edges
    Ellipse(47.0, 32.0, 90.0, 70.0, 1.1),  # larger than the map
    Ellipse(-200.0, 30.0, 20.0, 14.0, 0.4),  # off the map
]


@pytest.mark.parametrize("ellipse", ELLIPSES)
@pytest.mark.parametrize("limit", [1.0, 1.25**2, 1.4**2])
def test_a_narrowed_field_is_the_windows_own_radius_bit_for_bit(ellipse, limit) -> None:
    field = EllipseField.of(ellipse, SHAPE, plane_check.FIELD_LIMIT).narrowed(limit)
    window = ellipse.pixel_window(SHAPE, radius_sq=limit)
    assert field.window == window
    if window is not None:
        np.testing.assert_array_equal(field.radius_sq, ellipse.radius_sq_in_window(window))
        rows, cols = np.mgrid[window]
        c, s = math.cos(ellipse.angle), math.sin(ellipse.angle)
        dx, dy = cols - ellipse.cx, rows - ellipse.cy
        np.testing.assert_array_equal(field.u, (dx * c + dy * s) / ellipse.a)
        np.testing.assert_array_equal(field.v, (-dx * s + dy * c) / ellipse.b)


def test_a_field_serves_only_its_ellipse_grid_and_narrower_windows() -> None:
    ellipse = ELLIPSES[0]
    field = EllipseField.of(ellipse, SHAPE, 1.25**2)
    assert field.serves(ellipse, SHAPE, 1.0) and not field.serves(ellipse, SHAPE, 1.4**2)
    assert not field.serves(ELLIPSES[1], SHAPE, 1.0) and not field.serves(ellipse, (64, 95), 1.0)
    with pytest.raises(ValueError, match="cannot serve"):
        field.narrowed(1.4**2)


@pytest.mark.parametrize("ellipse", ELLIPSES)
def test_the_iou_mask_and_the_border_confidence_read_from_a_field_are_unchanged(ellipse) -> None:
    prob = np.random.default_rng(5).random(SHAPE, dtype=np.float32)
    field = EllipseField.of(ellipse, SHAPE, plane_check.FIELD_LIMIT)
    np.testing.assert_array_equal(
        rasterize_ellipse(ellipse, SHAPE, field), rasterize_ellipse(ellipse, SHAPE)
    )
    assert border_confidence(prob, ellipse, field) == border_confidence(prob, ellipse)
    stranger = EllipseField.of(ELLIPSES[2], SHAPE, plane_check.FIELD_LIMIT)  # not used
    assert border_confidence(prob, ellipse, stranger) == border_confidence(prob, ellipse)


@pytest.mark.parametrize("ellipse", ELLIPSES)
def test_the_plane_features_read_from_a_field_are_those_worked_out_again(ellipse) -> None:
    rng = np.random.default_rng(7)
    grey, prob = rng.random(SHAPE, dtype=np.float32), rng.random(SHAPE, dtype=np.float32)
    field = EllipseField.of(ellipse, SHAPE, plane_check.FIELD_LIMIT)
    shared = plane_check.plane_features(grey, prob, ellipse, 0.9, 0.9, map_field=field)
    assert shared == plane_check.plane_features(grey, prob, ellipse, 0.9, 0.9)


def test_the_sectors_are_the_angle_modulo_sixteen() -> None:
    """The sector of each band pixel is floor((angle + pi) * 16 / 2 pi) % 16, the angle pi
    (u < 0, v = +0) included, whose sector 16 wraps to 0."""
    rng = np.random.default_rng(11)
    u = np.concatenate([rng.normal(size=500), [-1.0, -2.0, 1.0, 0.0]])
    v = np.concatenate([rng.normal(size=500), [0.0, -0.0, 0.0, 1.0]])
    grey = rng.random(u.size, dtype=np.float32)
    angle = np.arctan2(v, u)
    sector = ((angle + math.pi) * (16 / (2 * math.pi))).astype(int) % 16
    sums = np.bincount(sector, grey, minlength=16)
    counts = np.bincount(sector, minlength=16)
    means, has = plane_check._BandPixels(grey, u, v).sector_means()
    np.testing.assert_array_equal(means, sums / np.maximum(counts, 1))
    np.testing.assert_array_equal(has, counts > 0)
    assert plane_check._SECTORS & (plane_check._SECTORS - 1) == 0  # the bit mask needs it


def test_the_inside_pixels_read_in_their_window_are_the_whole_frames() -> None:
    """cv2.ellipse turns the ellipse to a whole degree and rounds its outline to the grid: the
    window still holds every pixel it fills (large, thin, cut and off-frame ellipses)."""
    rng = np.random.default_rng(13)
    shape = (120, 160)
    pixels = rng.random(shape, dtype=np.float32)
    for _ in range(400):
        a = rng.uniform(0.3, 300.0)
        angle = rng.uniform(0.0, math.pi)
        ellipse = Ellipse(rng.uniform(-60, 220), rng.uniform(-60, 180), a, a * rng.random(), angle)
        mask = np.zeros(shape, np.uint8)
        centre = (float(ellipse.cx), float(ellipse.cy))
        axes = (2 * 0.7 * ellipse.a, 2 * 0.7 * ellipse.b)
        cv2.ellipse(mask, (centre, axes, math.degrees(ellipse.angle)), 1, -1)
        expected = pixels[mask > 0]
        np.testing.assert_array_equal(plane_check._inside_pixels(pixels, ellipse, 0.7), expected)


def test_the_component_map_worked_out_in_the_components_box_is_the_whole_maps() -> None:
    """Holes filled, neighbourhood and contour box in the largest component's bounding box: the
    same arrays as over the whole map, for a ringed head, one touching the edges and none."""
    rng = np.random.default_rng(17)
    shape = (60, 90)
    noisy = rng.random(shape)
    head = rasterize_ellipse(Ellipse(40.0, 30.0, 25.0, 18.0, 0.3), shape)
    hole = rasterize_ellipse(Ellipse(40.0, 30.0, 8.0, 6.0, 0.3), shape)
    edge = rasterize_ellipse(Ellipse(5.0, 55.0, 40.0, 20.0, 0.2), shape)
    for inside in (head & ~hole, edge, np.zeros(shape, bool)):
        prob = np.where(inside, 0.5 + 0.5 * noisy, 0.5 * noisy)
        components = Components.of(prob > 0.5)
        largest, box = components.largest_in_box()
        whole = (
            fill_holes(components.labels == 1 + int(np.argmax(components.areas)))
            if components.areas.size
            else np.zeros(shape, bool)
        )
        np.testing.assert_array_equal(largest, whole)
        restricted = _restricted_to(prob, largest, 0.5, box)
        np.testing.assert_array_equal(restricted, _restricted_to(prob, whole, 0.5))
        if box is not None:
            near = (slice(box[0].start - 1, box[0].stop + 1), slice(None))
            near = (slice(max(near[0].start, 0), near[0].stop), slice(0, shape[1]))
            np.testing.assert_array_equal(
                _outer_contour(restricted, 0.5, near), _outer_contour(restricted, 0.5)
            )
