"""Dice, IoU and surface distances in mm (anisotropic spacing, empty masks)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hc_studio.core.ellipse import Ellipse, rasterize_ellipse
from hc_studio.core.metrics import (
    SegmentationScores,
    asd_mm,
    dice,
    hausdorff_mm,
    hc_difference,
    hd95_mm,
    iou,
    score_masks,
    surface,
)
from hc_studio.core.spacing import Spacing
from hypothesis import given, settings
from hypothesis import strategies as st

SHAPE = (48, 64)
ANISOTROPIC = Spacing(row_mm=0.2, col_mm=0.1, source="user")


@st.composite
def ellipse_masks(draw) -> np.ndarray:
    ellipse = Ellipse.normalised(
        draw(st.floats(5, 59)),
        draw(st.floats(5, 43)),
        draw(st.floats(2, 30)),
        draw(st.floats(1.5, 20)),
        draw(st.floats(0, 3.1)),
    )
    return rasterize_ellipse(ellipse, SHAPE)


spacings = st.builds(
    lambda row, col: Spacing(row, col, "user"), st.floats(0.05, 0.5), st.floats(0.05, 0.5)
)


@settings(max_examples=40, deadline=None)
@given(ellipse_masks(), ellipse_masks())
def test_overlap_is_symmetric_and_bounded(a: np.ndarray, b: np.ndarray) -> None:
    assert dice(a, b) == dice(b, a)
    assert iou(a, b) == iou(b, a)
    assert 0.0 <= iou(a, b) <= dice(a, b) <= 1.0


@settings(max_examples=30, deadline=None)
@given(ellipse_masks(), ellipse_masks(), spacings)
def test_distances_are_ordered_and_symmetric(a, b, spacing) -> None:
    if not a.any() or not b.any():
        return
    hausdorff = hausdorff_mm(a, b, spacing)
    assert hd95_mm(a, b, spacing) <= hausdorff + 1e-9
    assert asd_mm(a, b, spacing) <= hausdorff + 1e-9
    assert hausdorff == pytest.approx(hausdorff_mm(b, a, spacing))
    assert asd_mm(a, b, spacing) == pytest.approx(asd_mm(b, a, spacing))


@settings(max_examples=30, deadline=None)
@given(ellipse_masks(), spacings)
def test_a_mask_against_itself(mask, spacing) -> None:
    if not mask.any():
        return
    scores = score_masks(mask, mask, spacing)
    assert scores == SegmentationScores(1.0, 1.0, 0.0, 0.0, 0.0, "mm")


@pytest.mark.parametrize(
    ("shift_rc", "expected_mm"), [((0, 3), 0.3), ((3, 0), 0.6), ((4, 3), math.hypot(0.8, 0.3))]
)
def test_shifted_masks_give_the_shift_in_mm(shift_rc, expected_mm) -> None:
    a = np.zeros((60, 60), dtype=bool)
    a[10:40, 15:45] = True
    b = np.roll(a, shift_rc, axis=(0, 1))
    assert hausdorff_mm(a, b, ANISOTROPIC) == pytest.approx(expected_mm)
    assert hd95_mm(a, b, ANISOTROPIC) <= expected_mm + 1e-9


def test_isotropic_and_anisotropic_paths_agree() -> None:
    a = rasterize_ellipse(Ellipse(30, 25, 20, 12, 0.4), SHAPE)
    b = rasterize_ellipse(Ellipse(33, 22, 18, 14, 1.2), SHAPE)
    isotropic = score_masks(a, b, Spacing.square(0.15))
    nearly = score_masks(a, b, Spacing(0.15, 0.15 * (1 + 1e-5), "user"))
    assert nearly.hausdorff == pytest.approx(isotropic.hausdorff, rel=1e-4)
    assert nearly.hd95 == pytest.approx(isotropic.hd95, rel=1e-4)
    assert nearly.asd == pytest.approx(isotropic.asd, rel=1e-4)


def test_score_masks_matches_the_single_metrics() -> None:
    a = rasterize_ellipse(Ellipse(30, 25, 20, 12, 0.4), SHAPE)
    b = rasterize_ellipse(Ellipse(31, 24, 19, 13, 0.5), SHAPE)
    scores = score_masks(a, b, ANISOTROPIC)
    assert scores.dice == dice(a, b)
    assert scores.iou == iou(a, b)
    assert scores.hausdorff == hausdorff_mm(a, b, ANISOTROPIC)
    assert scores.hd95 == hd95_mm(a, b, ANISOTROPIC)
    assert scores.asd == asd_mm(a, b, ANISOTROPIC)
    assert scores.unit == "mm"
    assert score_masks(a, b, Spacing.uncalibrated()).unit == "px"


def test_empty_masks() -> None:
    empty = np.zeros(SHAPE, dtype=bool)
    full = rasterize_ellipse(Ellipse(30, 25, 10, 8, 0), SHAPE)
    both_empty = score_masks(empty, empty, ANISOTROPIC)
    assert (both_empty.dice, both_empty.iou, both_empty.hausdorff, both_empty.asd) == (1, 1, 0, 0)
    one_empty = score_masks(full, empty, ANISOTROPIC)
    assert (one_empty.dice, one_empty.iou) == (0.0, 0.0)
    assert math.isinf(one_empty.hausdorff) and math.isinf(one_empty.hd95)
    assert math.isinf(asd_mm(empty, full, ANISOTROPIC))


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        dice(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


def test_surface_counts_the_frame_border() -> None:
    full = np.ones((5, 6), dtype=bool)
    border = surface(full)
    assert border.sum() == 2 * 6 + 2 * 3
    assert not border[1:-1, 1:-1].any()


def test_hc_difference() -> None:
    assert hc_difference(101.5, 100.0) == (1.5, 1.5)
    assert hc_difference(98.0, 100.0) == (-2.0, 2.0)
