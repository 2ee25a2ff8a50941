"""Synthetic head phantoms: known truth, intensities, fitting the frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hc_studio.core.biometry import ramanujan_perimeter
from hc_studio.core.ellipse import (
    Ellipse,
    ellipse_from_probability,
    fit_outline_mask,
    rasterize_ellipse,
)
from hc_studio.core.phantom import make_phantom, make_phantom_batch
from hc_studio.core.spacing import Spacing
from hypothesis import given, settings
from hypothesis import strategies as st


def perimeter(ellipse: Ellipse) -> float:
    return ramanujan_perimeter(ellipse.a, ellipse.b)


def test_phantom_arrays_and_truth(phantom) -> None:
    assert phantom.image.shape == (270, 400) and phantom.image.dtype == np.float32
    assert phantom.image.min() >= 0.0 and phantom.image.max() <= 1.0
    assert phantom.mask.dtype == bool and phantom.outline.dtype == bool
    np.testing.assert_array_equal(phantom.mask, rasterize_ellipse(phantom.ellipse_px, (270, 400)))
    assert phantom.spacing.calibrated


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(120, 400), st.integers(120, 400))
def test_random_ellipse_fits_inside_the_frame(seed: int, height: int, width: int) -> None:
    phantom = make_phantom((height, width), seed=seed, speckle=0.0)
    mask = phantom.mask
    assert mask.any()
    assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    assert phantom.ellipse_px.b / phantom.ellipse_px.a >= 0.7


def test_outline_is_an_hc18_style_annotation_of_the_truth(phantom) -> None:
    fitted = fit_outline_mask(phantom.outline)
    assert perimeter(fitted) == pytest.approx(perimeter(phantom.ellipse_px), rel=1e-3)
    assert phantom.outline.sum() < 1.5 * perimeter(phantom.ellipse_px)  # about one pixel wide


def test_intensities_of_background_brain_and_skull() -> None:
    truth = Ellipse(200.0, 135.0, 110.0, 90.0, 0.3)
    phantom = make_phantom(ellipse_px=truth, ring_px=6.0)
    shape = phantom.image.shape
    deep_inside = rasterize_ellipse(Ellipse(200.0, 135.0, 95.0, 75.0, 0.3), shape)
    ring = rasterize_ellipse(Ellipse(200.0, 135.0, 108.0, 88.0, 0.3), shape) & ~(
        rasterize_ellipse(Ellipse(200.0, 135.0, 104.0, 84.0, 0.3), shape)
    )
    outside = ~rasterize_ellipse(Ellipse(200.0, 135.0, 116.0, 96.0, 0.3), shape)
    assert phantom.image[outside].mean() == pytest.approx(0.1, abs=0.02)
    assert phantom.image[deep_inside].mean() == pytest.approx(0.35, abs=0.03)
    assert phantom.image[ring].mean() == pytest.approx(0.9, abs=0.08)
    assert phantom.image[deep_inside].std() > 0.03  # speckled


def test_blur_and_threshold_recovers_the_truth_hc(phantom) -> None:
    smoothed = cv2.GaussianBlur(phantom.image, (0, 0), 1.5)
    fit = ellipse_from_probability((smoothed > 0.5).astype(np.float32))
    assert fit is not None
    assert perimeter(fit.ellipse_px) == pytest.approx(perimeter(phantom.ellipse_px), rel=3e-3)


def test_given_ellipse_and_spacing_are_used() -> None:
    truth = Ellipse(100.0, 80.0, 50.0, 40.0, 1.0)
    spacing = Spacing(0.2, 0.1, "user")
    phantom = make_phantom((160, 200), ellipse_px=truth, spacing=spacing)
    assert phantom.ellipse_px == truth
    assert phantom.spacing == spacing


def test_phantoms_are_reproducible_and_batches_vary() -> None:
    np.testing.assert_array_equal(make_phantom(seed=3).image, make_phantom(seed=3).image)
    batch = make_phantom_batch(3, (128, 192), seed=5)
    assert len(batch) == 3
    assert len({p.ellipse_px for p in batch}) == 3
    assert all(p.image.shape == (128, 192) for p in batch)
