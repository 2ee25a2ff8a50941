"""The HC18 reference definition: the least-squares ellipse of the annotation ring's pixels."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from hc_studio.core.biometry import ramanujan_perimeter
from hc_studio.core.ellipse import fill_holes, fit_ellipse_to_points, fit_outline_mask
from hc_studio.core.spacing import Spacing

pytestmark = pytest.mark.hc18
N_FRAMES = 20


def sample_rows(hc18_dir) -> list[tuple[str, float, float]]:
    with (hc18_dir / "training_set_pixel_size_and_HC.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    step = max(1, len(rows) // N_FRAMES)
    return [(name, float(mm), float(hc)) for name, mm, hc in rows[::step][:N_FRAMES]]


def read_outline(hc18_dir, name: str) -> np.ndarray:
    path = hc18_dir / "training_set" / name.replace(".png", "_Annotation.png")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None, f"cannot read {path}"
    return image > 127


def test_fitting_the_outline_pixels_reproduces_the_csv_hc(hc18_dir) -> None:
    for name, mm, reference in sample_rows(hc18_dir):
        ellipse = fit_outline_mask(read_outline(hc18_dir, name), Spacing.square(mm, "csv"))
        hc = ramanujan_perimeter(ellipse.a, ellipse.b) * mm
        assert hc == pytest.approx(reference, abs=0.1), name


def test_outer_contour_of_the_filled_ring_does_not(hc18_dir) -> None:
    """Filling the ring and fitting its outer contour puts the ellipse ~half a pixel outside."""
    errors = []
    for name, mm, reference in sample_rows(hc18_dir):
        filled = fill_holes(read_outline(hc18_dir, name)).astype(np.uint8)
        contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        ellipse = fit_ellipse_to_points(max(contours, key=len)[:, 0, :])
        errors.append(ramanujan_perimeter(ellipse.a, ellipse.b) * mm - reference)
    assert np.mean(errors) > 0.3  # always too large, by ~0.7 mm on average
    assert max(errors) > 0.1
