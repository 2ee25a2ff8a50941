"""HC, BPD, OFD and area from a pixel ellipse and a spacing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hc_studio.core.biometry import (
    HeadBiometry,
    biometry_from_ellipse,
    ellipse_in_mm,
    ramanujan_perimeter,
)
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.spacing import Spacing
from hypothesis import given, settings
from hypothesis import strategies as st


def exact_perimeter(a: float, b: float, n: int = 200_000) -> float:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    speed = np.hypot(a * np.sin(t), b * np.cos(t))
    return float(speed.mean() * 2 * np.pi)


def test_ramanujan_of_a_circle_is_two_pi_r() -> None:
    assert ramanujan_perimeter(10.0, 10.0) == pytest.approx(20 * math.pi, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.floats(1.0, 500.0), st.floats(0.3, 1.0))
def test_ramanujan_matches_the_exact_perimeter_of_head_shapes(a: float, ratio: float) -> None:
    assert ramanujan_perimeter(a, a * ratio) == pytest.approx(
        exact_perimeter(a, a * ratio), rel=1e-6
    )


def test_ramanujan_is_symmetric_and_handles_degenerate_axes() -> None:
    assert ramanujan_perimeter(3.0, 5.0) == ramanujan_perimeter(5.0, 3.0)
    assert ramanujan_perimeter(0.0, 0.0) == 0.0
    assert ramanujan_perimeter(1.0, 0.0) == pytest.approx(4.0, rel=1e-3)


def test_isotropic_biometry_in_mm() -> None:
    ellipse = Ellipse(300.0, 200.0, 150.0, 100.0, 0.3)
    result = biometry_from_ellipse(ellipse, Spacing.square(0.2, "csv"))
    assert result.unit == "mm"
    assert result.hc == pytest.approx(0.2 * ramanujan_perimeter(150.0, 100.0))
    assert result.ofd == pytest.approx(60.0)
    assert result.bpd == pytest.approx(40.0)
    assert result.area == pytest.approx(math.pi * 30.0 * 20.0)
    assert ellipse_in_mm(ellipse, Spacing.square(0.2, "csv")).cx == pytest.approx(60.0)


def test_anisotropic_spacing_scales_each_axis_exactly() -> None:
    # A circle of radius 100 px with rows twice as tall as columns is a vertical ellipse in mm.
    circle = Ellipse(200.0, 150.0, 100.0, 100.0, 0.0)
    spacing = Spacing(row_mm=0.2, col_mm=0.1, source="user")
    result = biometry_from_ellipse(circle, spacing)
    assert result.ofd == pytest.approx(40.0)  # vertical: 2 * 100 * 0.2
    assert result.bpd == pytest.approx(20.0)
    assert ellipse_in_mm(circle, spacing).angle == pytest.approx(math.pi / 2)
    assert result.hc == pytest.approx(ramanujan_perimeter(20.0, 10.0))


def test_uncalibrated_biometry_is_in_pixels() -> None:
    ellipse = Ellipse(50.0, 50.0, 40.0, 30.0, 0.0)
    result = biometry_from_ellipse(ellipse, Spacing.uncalibrated())
    assert result.unit == "px"
    assert result.ofd == 80.0 and result.bpd == 60.0
    assert result.hc == pytest.approx(ramanujan_perimeter(40.0, 30.0))


def test_head_biometry_declares_its_csv_columns_and_units() -> None:
    biometry = HeadBiometry(hc=172.5, bpd=41.25, ofd=55.0, area=1780.0, unit="mm")
    names = [column.name for column in HeadBiometry.COLUMNS]
    assert names == ["hc", "bpd_outer_outer", "ofd_outer_outer", "area"]
    assert biometry.cells() == {
        "hc": 172.5,
        "bpd_outer_outer": 41.25,
        "ofd_outer_outer": 55.0,
        "area": 1780.0,
    }
    units = {column.name: column.unit("mm") for column in HeadBiometry.COLUMNS}
    assert units == {"hc": "mm", "bpd_outer_outer": "mm", "ofd_outer_outer": "mm", "area": "mm^2"}


def test_head_biometry_reads_back_from_its_cells() -> None:
    cells = {"hc": "172.500", "bpd_outer_outer": "41.250", "ofd_outer_outer": "", "area": "9"}
    read = HeadBiometry.from_cells(cells, "px")
    assert (read.hc, read.bpd, read.area, read.unit) == (172.5, 41.25, 9.0, "px")
    assert math.isnan(read.ofd)
    assert HeadBiometry.from_cells(dict.fromkeys(cells, " "), "mm") is None
