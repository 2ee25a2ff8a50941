"""Ellipse fitting, sub-pixel contours, per-axis mapping, rasterising and IoU."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hc_studio.core.biometry import ramanujan_perimeter
from hc_studio.core.ellipse import (
    Components,
    Ellipse,
    ellipse_from_probability,
    ellipse_iou,
    ellipse_on_map_grid,
    fit_ellipse_to_points,
    fit_outline_mask,
    largest_component,
    map_to_frame,
    rasterize_ellipse,
    subpixel_contour,
)
from hc_studio.core.phantom import draw_outline
from hc_studio.core.spacing import Spacing
from hypothesis import given, settings
from hypothesis import strategies as st

ellipses = st.builds(
    lambda cx, cy, a, ratio, angle: Ellipse.normalised(cx, cy, a, a * ratio, angle),
    st.floats(-500, 1500),
    st.floats(-500, 1500),
    st.floats(5, 400),
    st.floats(0.3, 1.0),
    st.floats(0, math.pi, exclude_max=True),
)


def on_ellipse(ellipse: Ellipse, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    return ellipse.normalised_radius_sq(xs, ys)


def perimeter(ellipse: Ellipse) -> float:
    return ramanujan_perimeter(ellipse.a, ellipse.b)


def coverage_map(ellipse: Ellipse, frame_hw: tuple[int, int], net_hw: tuple[int, int], k=8):
    """A perfect network output: the fraction of each map pixel's frame area inside the ellipse.

    Map pixel j covers frame x in [j * W / w - 0.5, (j + 1) * W / w - 0.5] (cv2.resize centres).
    """
    (frame_h, frame_w), (h, w) = frame_hw, net_hw
    sub = (np.arange(k) + 0.5) / k
    ys = ((np.arange(h)[:, None] + sub[None, :]) * frame_h / h - 0.5).ravel()
    xs = ((np.arange(w)[:, None] + sub[None, :]) * frame_w / w - 0.5).ravel()
    inside = ellipse.normalised_radius_sq(xs[None, :], ys[:, None]) <= 1
    return inside.reshape(h, k, w, k).mean(axis=(1, 3))


@settings(max_examples=40, deadline=None)
@given(ellipses)
def test_fit_recovers_an_ellipse_from_points_on_it(truth: Ellipse) -> None:
    fitted = fit_ellipse_to_points(truth.points(60))

    scale = truth.a
    assert fitted.cx == pytest.approx(truth.cx, abs=1e-3 * scale)
    assert fitted.cy == pytest.approx(truth.cy, abs=1e-3 * scale)
    assert fitted.a == pytest.approx(truth.a, rel=1e-3)
    assert fitted.b == pytest.approx(truth.b, rel=1e-3)
    # The angle is undefined for a circle: check that the fitted curve passes through the points.
    radius_sq = on_ellipse(fitted, *truth.points(17).T)
    np.testing.assert_allclose(radius_sq, 1.0, atol=5e-3)


@settings(max_examples=30, deadline=None)
@given(ellipses, st.floats(0.5, 3.0), st.floats(-0.2, 0.2), st.integers(0, 2**32 - 1))
def test_fit_recovers_noisy_points_on_average(truth, noise_px, _unused, seed) -> None:
    rng = np.random.default_rng(seed)
    points = truth.points(400) + rng.normal(0, noise_px, (400, 2))
    fitted = fit_ellipse_to_points(points)
    assert perimeter(fitted) == pytest.approx(perimeter(truth), rel=0.02 + 3 * noise_px / truth.b)


def test_fit_orders_opencv_axes_and_converts_its_degrees() -> None:
    # Major axis vertical: cv2 may report it as the second ("height") axis at ~0 degrees.
    truth = Ellipse(400.0, 270.0, 120.0, 80.0, math.pi / 2)
    fitted = fit_ellipse_to_points(truth.points(90))
    assert fitted.a == pytest.approx(120.0, rel=1e-4)
    assert fitted.b == pytest.approx(80.0, rel=1e-4)
    assert fitted.angle == pytest.approx(math.pi / 2, abs=1e-3)


def test_fit_needs_five_points() -> None:
    with pytest.raises(ValueError, match="at least 5 points"):
        fit_ellipse_to_points(np.zeros((4, 2)))


@settings(max_examples=40, deadline=None)
@given(ellipses, st.floats(0.05, 0.5), st.floats(0.05, 0.5))
def test_scaled_round_trip_and_maps_points(ellipse: Ellipse, sx: float, sy: float) -> None:
    scaled = ellipse.scaled(sx, sy)
    mapped_points = ellipse.points(24) * np.array([sx, sy])
    np.testing.assert_allclose(on_ellipse(scaled, *mapped_points.T), 1.0, atol=1e-6)

    back = scaled.scaled(1 / sx, 1 / sy)
    assert back.cx == pytest.approx(ellipse.cx, abs=1e-6 * ellipse.a + 1e-9)
    assert back.cy == pytest.approx(ellipse.cy, abs=1e-6 * ellipse.a + 1e-9)
    assert back.a == pytest.approx(ellipse.a, rel=1e-6)
    assert back.b == pytest.approx(ellipse.b, rel=1e-6)
    np.testing.assert_allclose(on_ellipse(back, *ellipse.points(24).T), 1.0, atol=1e-6)


def test_fit_outline_mask_fits_pixel_centres_as_x_y() -> None:
    truth = Ellipse(300.4, 200.7, 150.2, 100.3, 0.4)
    outline = draw_outline(truth, (540, 800))
    fitted = fit_outline_mask(outline)
    # np.nonzero gives (row, col): a swap would put the centre at (200, 300).
    assert (fitted.cx, fitted.cy) == pytest.approx((truth.cx, truth.cy), abs=0.1)
    assert fitted.angle == pytest.approx(truth.angle, abs=0.01)
    assert perimeter(fitted) == pytest.approx(perimeter(truth), rel=2e-3)


def test_fit_outline_mask_with_anisotropic_spacing_fits_in_mm() -> None:
    truth = Ellipse(300.0, 260.0, 200.0, 120.0, 0.7)
    outline = draw_outline(truth, (540, 800))
    spacing = Spacing(row_mm=0.3, col_mm=0.1, source="user")
    fitted = fit_outline_mask(outline, spacing)
    truth_mm = truth.scaled(spacing.col_mm, spacing.row_mm)
    fitted_mm = fitted.scaled(spacing.col_mm, spacing.row_mm)
    assert perimeter(fitted_mm) == pytest.approx(perimeter(truth_mm), rel=2e-3)
    assert (fitted.cx, fitted.cy) == pytest.approx((truth.cx, truth.cy), abs=0.2)


def test_fit_outline_mask_rejects_an_outline_of_too_few_pixels() -> None:
    outline = np.zeros((20, 20), dtype=bool)
    outline[5, 5:8] = True
    with pytest.raises(ValueError, match="at least 5 points"):
        fit_outline_mask(outline)


def test_subpixel_contour_of_nothing_is_empty() -> None:
    assert subpixel_contour(np.zeros((10, 10))).shape == (0, 2)


def test_subpixel_contour_keeps_the_largest_component_outer_boundary() -> None:
    shape = (120, 160)
    big = Ellipse(70.0, 60.0, 40.0, 30.0, 0.0)
    hole = Ellipse(70.0, 60.0, 15.0, 10.0, 0.0)
    small = Ellipse(140.0, 20.0, 8.0, 8.0, 0.0)
    prob = (rasterize_ellipse(big, shape) & ~rasterize_ellipse(hole, shape)).astype(float)
    prob[rasterize_ellipse(small, shape)] = 1.0

    contour = subpixel_contour(prob)

    radius_sq = big.normalised_radius_sq(*contour.T)
    assert radius_sq.min() > 0.9  # nothing on the hole or on the small blob
    assert radius_sq.max() < 1.1
    # All the way round the outline, not one stretch of it.
    angle = np.arctan2(contour[:, 1] - big.cy, contour[:, 0] - big.cx)
    sectors = np.floor((angle + np.pi) / (2 * np.pi) * 36).astype(int) % 36
    assert set(sectors) == set(range(36))


def test_subpixel_contour_closes_around_a_component_on_the_frame_edge() -> None:
    prob = np.zeros((50, 60))
    prob[:20, 10:40] = 1.0
    contour = subpixel_contour(prob)
    on_edge = contour[np.isclose(contour[:, 1], -0.5)]  # half a pixel beyond the first row
    assert sorted(on_edge[:, 0]) == list(range(10, 40))  # closed along the whole cut side
    assert contour[:, 1].min() == pytest.approx(-0.5)


def test_subpixel_contour_keeps_all_of_a_component_whose_parts_touch_at_a_corner() -> None:
    """Marching squares splits such an outline into one contour per part; the longest of them
    would leave the other part out of the fit."""
    prob = np.zeros((40, 40))
    prob[5:15, 5:15] = 1.0
    prob[15:35, 15:35] = 1.0  # 8-connected to the first square through (14, 14)-(15, 15)
    contour = subpixel_contour(prob)
    assert (contour[:, 0] < 10).any() and (contour[:, 0] > 30).any()
    assert len(contour) == 2 * (10 + 10) + 2 * (20 + 20)  # every edge pixel's crossing, once


def test_map_to_frame_maps_pixel_edges_to_pixel_edges_on_each_axis() -> None:
    corners = np.array([[-0.5, -0.5], [287.5, 191.5]])
    mapped = map_to_frame(corners, (192, 288), (540, 800))
    np.testing.assert_allclose(mapped, [[-0.5, -0.5], [799.5, 539.5]])


@pytest.mark.parametrize("seed", range(4))
def test_probability_map_at_network_resolution_gives_unbiased_frame_hc(seed: int) -> None:
    """A perfect 192x288 map of a 540x800 frame ellipse gives the frame ellipse's HC.

    Threshold + integer contour would lose ~1 mm, and one scale for both axes (540/800 is not
    192/288) ~0.6 %; the sub-pixel contour mapped axis by axis stays within 0.1 %.
    """
    rng = np.random.default_rng(seed)
    a = rng.uniform(90, 240)
    truth = Ellipse.normalised(
        rng.uniform(330, 470),
        rng.uniform(250, 290),
        a,
        a * rng.uniform(0.7, 0.95),
        rng.uniform(0, 3),
    )
    prob = coverage_map(truth, (540, 800), (192, 288))

    fit = ellipse_from_probability(prob, frame_shape=(540, 800))

    assert fit is not None
    assert perimeter(fit.ellipse_px) == pytest.approx(perimeter(truth), rel=1e-3)
    assert (fit.ellipse_px.cx, fit.ellipse_px.cy) == pytest.approx((truth.cx, truth.cy), abs=0.2)
    assert fit.component_mask.shape == (540, 800)
    assert fit.fit_iou > 0.99
    assert fit.n_contour_points > 100


def test_integer_contour_of_the_thresholded_map_is_biased() -> None:
    """Why the sub-pixel contour: the pixel-boundary contour of prob > 0.5 shrinks the head."""
    truth = Ellipse(400.0, 270.0, 200.0, 160.0, 0.3)
    prob = coverage_map(truth, (540, 800), (192, 288))
    contours, _ = cv2.findContours(
        (prob > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    crude = fit_ellipse_to_points(map_to_frame(contours[0][:, 0, :], (192, 288), (540, 800)))
    assert perimeter(crude) / perimeter(truth) - 1 < -0.003


def test_probability_map_at_frame_resolution_with_anisotropic_spacing() -> None:
    truth = Ellipse(200.0, 150.0, 120.0, 90.0, 1.0)
    prob = coverage_map(truth, (300, 400), (300, 400))
    spacing = Spacing(row_mm=0.2, col_mm=0.1, source="user")
    fit = ellipse_from_probability(prob, spacing=spacing)
    assert fit is not None
    fitted_mm = fit.ellipse_px.scaled(0.1, 0.2)
    assert perimeter(fitted_mm) == pytest.approx(perimeter(truth.scaled(0.1, 0.2)), rel=1e-3)


def test_probability_map_without_a_head_gives_none() -> None:
    assert ellipse_from_probability(np.full((64, 96), 0.2), frame_shape=(540, 800)) is None


def test_probability_fit_iou_is_low_for_a_non_elliptical_component() -> None:
    prob = np.zeros((100, 100))
    prob[20:80, 20:80] = 1.0
    prob[20:50, 50:80] = 0.0  # an L shape
    fit = ellipse_from_probability(prob)
    assert fit is not None
    assert fit.fit_iou < 0.85


def test_rasterize_includes_pixel_centres_on_the_border_only() -> None:
    circle = Ellipse(5.0, 5.0, 2.0, 2.0, 0.0)
    mask = rasterize_ellipse(circle, (11, 11))
    assert mask[5, 7] and mask[7, 5]  # exactly on the circle (row, col)
    assert not mask[7, 6]  # sqrt(5) > 2
    assert mask.sum() == 13


def test_rasterize_area_is_unbiased() -> None:
    ellipse = Ellipse(400.3, 270.6, 210.0, 150.0, 0.37)
    mask = rasterize_ellipse(ellipse, (540, 800))
    assert mask.sum() == pytest.approx(math.pi * ellipse.a * ellipse.b, rel=2e-3)


def test_ellipse_iou() -> None:
    a = np.zeros((10, 10), dtype=bool)
    b = np.zeros((10, 10), dtype=bool)
    assert ellipse_iou(a, b) == 1.0
    a[:5] = True
    assert ellipse_iou(a, a) == 1.0
    assert ellipse_iou(a, ~a) == 0.0
    b[:, :5] = True
    assert ellipse_iou(a, b) == pytest.approx(25 / 75)


@settings(max_examples=40, deadline=None)
@given(
    cx=st.floats(-40, 140),
    cy=st.floats(-40, 100),
    a=st.floats(2, 80),
    ratio=st.floats(0.2, 1.0),
    angle=st.floats(0, 3.14159),
    grow=st.floats(1.0, 1.6),
)
def test_window_work_matches_the_whole_frame(cx, cy, a, ratio, angle, grow) -> None:
    """Rasterising inside `pixel_window` gives exactly the whole-frame result, also for an
    ellipse that leaves the frame."""
    ellipse = Ellipse.normalised(cx, cy, a, a * ratio, angle)
    shape = (60, 100)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    radius_sq = ellipse.normalised_radius_sq(cols.astype(float), rows.astype(float))
    assert np.array_equal(rasterize_ellipse(ellipse, shape), radius_sq <= 1)
    window = ellipse.pixel_window(shape, radius_sq=grow)
    inside_grown = radius_sq <= grow
    if window is None:
        assert not inside_grown.any()
    else:
        covered = np.zeros(shape, bool)
        covered[window] = True
        assert not (inside_grown & ~covered).any()


# At (118, 2) some pixels are exactly 0.5: points on the outline that two edges share.
@pytest.mark.parametrize("centre", [(60.3, 40.7), (3.2, 40.0), (60.0, 77.5), (118.0, 2.0)])
def test_the_contour_traced_in_the_components_box_is_the_whole_maps_contour(centre) -> None:
    """`subpixel_contour` gives the vertices marching squares traces on the whole padded map
    (a head touching the frame edge included), each once, in no particular order."""
    from hc_studio.core.ellipse import component_map, subpixel_contour
    from skimage import measure

    rows, cols = np.mgrid[:80, :120]
    radius = np.hypot((cols - centre[0]) / 30.0, (rows - centre[1]) / 20.0)
    prob = 1.0 / (1.0 + np.exp((radius - 1.0) * 12.0))
    prob[5:9, 100:104] = 0.9  # a stray blob: not the largest component
    (whole,) = measure.find_contours(np.pad(component_map(prob), 1), 0.5)
    closed_once = whole[:-1]  # a closed contour ends on its first point
    expected = np.stack([closed_once[:, 1] - 1, closed_once[:, 0] - 1], axis=1)
    contour = subpixel_contour(prob)
    assert contour.shape == expected.shape

    def in_order(points: np.ndarray) -> np.ndarray:
        return points[np.lexsort((points[:, 1], points[:, 0]))]

    np.testing.assert_allclose(in_order(contour), in_order(expected), rtol=0, atol=1e-9)


def test_one_labelling_pass_gives_the_largest_component_and_every_area() -> None:
    """`Components` labels a mask once: its largest component (holes filled) and the areas of
    all components are what labelling the mask for each of them gave."""
    shape = (120, 160)
    head, hole = Ellipse(70.0, 60.0, 40.0, 30.0, 0.0), Ellipse(70.0, 60.0, 15.0, 10.0, 0.0)
    blob = Ellipse(140.0, 20.0, 8.0, 8.0, 0.0)
    ring = rasterize_ellipse(head, shape) & ~rasterize_ellipse(hole, shape)
    mask = ring | rasterize_ellipse(blob, shape)

    components = Components.of(mask)

    assert sorted(components.areas.tolist()) == sorted(
        [np.count_nonzero(rasterize_ellipse(blob, shape)), np.count_nonzero(ring)]
    )
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    assert components.areas.tolist() == stats[1:, cv2.CC_STAT_AREA].tolist()
    np.testing.assert_array_equal(components.largest(), rasterize_ellipse(head, shape))
    np.testing.assert_array_equal(largest_component(mask), components.largest())
    nothing = Components.of(np.zeros(shape, bool))
    assert nothing.areas.size == 0
    assert nothing.largest().shape == shape and not nothing.largest().any()


def test_a_fit_carries_its_ellipse_on_the_map_and_the_area_of_every_component() -> None:
    map_hw, frame_hw = (64, 96), (540, 800)
    prob = rasterize_ellipse(Ellipse(48.0, 32.0, 30.0, 20.0, 0.3), map_hw).astype(np.float32)
    prob[2:6, 2:8] = 0.9  # a stray blob of 24 pixels
    fit = ellipse_from_probability(prob, frame_shape=frame_hw)
    assert fit.ellipse_on_map == ellipse_on_map_grid(fit.ellipse_px, frame_hw, map_hw)
    assert sorted(fit.component_areas.tolist()) == [24, int(np.count_nonzero(prob == 1.0))]
