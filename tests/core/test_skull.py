"""BPD outer-to-inner on phantoms whose skull thickness is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.phantom import make_phantom
from hc_studio.core.skull import bpd_outer_inner, caliper_length, minor_axis_ends
from hc_studio.core.spacing import Spacing


@pytest.mark.parametrize("seed", range(4))
def test_outer_outer_minus_outer_inner_is_the_skull_thickness(seed: int) -> None:
    spacing = Spacing.square(0.1, "user")
    ellipse = Ellipse.normalised(350, 260, 220, 180, seed * 0.7)
    phantom = make_phantom((520, 700), ellipse, spacing, seed=seed, ring_px=30)  # 3 mm skull

    result = bpd_outer_inner(phantom.image, ellipse, spacing)

    assert result.outer_outer == pytest.approx(36.0)
    assert result.outer_outer - result.outer_inner == pytest.approx(3.0, abs=0.3)
    # the end points lie on the minor axis: near outer border, far inner border
    far_inner = np.array(result.far_inner_xy)
    assert caliper_length(result.near_outer_xy, result.far_inner_xy, spacing) == pytest.approx(
        result.outer_inner
    )
    assert np.hypot(*(far_inner - np.array(result.far_outer_xy))) == pytest.approx(30, abs=3)


@pytest.mark.parametrize("ring_px", [6, 10, 16])
def test_thin_skulls_at_the_hc18_pixel_size(ring_px: int) -> None:
    spacing = Spacing.square(0.14, "csv")
    ellipse = Ellipse.normalised(200, 135, 150, 115, 0.3)
    phantom = make_phantom((270, 400), ellipse, spacing, seed=ring_px, ring_px=ring_px)
    result = bpd_outer_inner(phantom.image, ellipse, spacing)
    assert result.far_thickness == pytest.approx(ring_px * 0.14, abs=0.3)


def test_anisotropic_spacing_uses_the_physical_minor_axis() -> None:
    spacing = Spacing(0.12, 0.1, "dicom-pixel-spacing")  # rows 0.12 mm, columns 0.1 mm
    ellipse_mm = Ellipse.normalised(35.0, 31.2, 22.0, 18.0, 0.0)  # minor axis vertical
    ellipse_px = ellipse_mm.scaled(1 / spacing.col_mm, 1 / spacing.row_mm)
    near, far = minor_axis_ends(ellipse_px, spacing)
    assert near[1] < far[1] and near[0] == pytest.approx(far[0])
    assert caliper_length(tuple(near), tuple(far), spacing) == pytest.approx(36.0)
    # 3 mm of skull along a vertical minor axis is 25 rows
    phantom = make_phantom((520, 700), ellipse_px, spacing, seed=3, ring_px=25)
    result = bpd_outer_inner(phantom.image, ellipse_px, spacing)
    assert result.far_thickness == pytest.approx(3.0, abs=0.3)


def test_no_skull_band_gives_no_outer_inner_and_says_why() -> None:
    ellipse = Ellipse.normalised(200, 135, 120, 100, 0.0)
    flat = np.full((270, 400), 0.3, np.float32)
    result = bpd_outer_inner(flat, ellipse, Spacing.square(0.14, "csv"))
    assert result.outer_inner is None and result.far_inner_xy is None
    assert "no bright skull band" in result.note
    assert result.outer_outer == pytest.approx(2 * 100 * 0.14)


def test_near_end_is_the_one_higher_in_the_image() -> None:
    ellipse = Ellipse.normalised(200, 135, 120, 100, math.radians(30))
    near, far = minor_axis_ends(ellipse, Spacing.square(0.14, "csv"))
    assert near[1] < far[1]


def test_a_band_thicker_than_a_fetal_skull_gives_no_outer_inner_value() -> None:
    # A bright band reaching a quarter of the way in (brain echoes next to the skull) must not
    # become a BPD outer-to-inner a fifth shorter than outer-to-outer.
    import cv2
    from hc_studio.core.ellipse import Ellipse
    from hc_studio.core.skull import MAX_THICKNESS_FRACTION, bpd_outer_inner
    from hc_studio.core.spacing import Spacing

    image = np.full((400, 400), 0.2, np.float32)
    cv2.ellipse(image, (200, 200), (150, 120), 0, 0, 360, 0.9, -1)
    cv2.ellipse(image, (200, 200), (110, 80), 0, 0, 360, 0.2, -1)  # a 40 px "skull"
    result = bpd_outer_inner(image, Ellipse(200.0, 200.0, 150.0, 120.0, 0.0), Spacing.square(0.1))
    assert result.outer_inner is None and result.far_inner_xy is None
    assert "thicker than a fetal skull" in result.note
    assert MAX_THICKNESS_FRACTION == 0.10
