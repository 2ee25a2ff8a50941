"""The window's plain logic: handle geometry, spacing precedence, formatting, run summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hc_studio.app.ellipse_editor import EditableEllipse, drag_handle
from hc_studio.app.formatting import format_centile, format_spacing, format_weeks
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.spacing import Spacing

START = EditableEllipse(100.0, 80.0, 40.0, 25.0, 0.3)


def test_major_end_drag_keeps_the_opposite_end_and_the_minor_axis():
    fixed = START.handle_positions()["major-"]
    moved = drag_handle(START, "major+", (160.0, 120.0))
    assert np.allclose(moved.handle_positions()["major-"], fixed)
    assert np.allclose(moved.handle_positions()["major+"], (160.0, 120.0))
    assert moved.b == START.b


def test_minor_end_drag_moves_only_along_the_minor_axis():
    fixed = START.handle_positions()["minor-"]
    target = START.handle_positions()["minor+"] + 10 * START.minor_dir + 7 * START.major_dir
    moved = drag_handle(START, "minor+", tuple(target))
    assert moved.b == pytest.approx(START.b + 5)
    assert moved.angle == START.angle and moved.a == START.a
    assert np.allclose(moved.handle_positions()["minor-"], fixed)


def test_rotation_keeps_the_axes_and_centre_and_the_handle_under_the_mouse():
    handle = START.handle_positions()["rotate"]
    centre = START.centre
    turn = 0.4
    c, s = math.cos(turn), math.sin(turn)
    offset = handle - centre
    target = centre + np.array([c * offset[0] - s * offset[1], s * offset[0] + c * offset[1]])
    moved = drag_handle(START, "rotate", tuple(target))
    assert (moved.a, moved.b, moved.cx, moved.cy) == (START.a, START.b, START.cx, START.cy)
    assert moved.angle == pytest.approx(START.angle + turn)
    assert np.allclose(moved.handle_positions()["rotate"], target)


def test_a_shortened_major_axis_becomes_the_minor_one():
    fixed = START.handle_positions()["major-"]
    moved = drag_handle(START, "major+", tuple(fixed + 30 * START.major_dir))
    ellipse = moved.to_ellipse()
    assert ellipse.a == pytest.approx(START.b) and ellipse.b == pytest.approx(15.0)


def test_formatting_for_reports():
    assert format_weeks(24.43) == "24w 3d"
    assert format_weeks(None) == "–"
    assert format_centile(50.2, 0.005) == "50th (z +0.01)"
    assert format_centile(1.0, None) == "1st"
    assert format_centile(12.0, None) == "12th"
    assert format_centile(22.0, None) == "22nd"
    assert format_spacing(Spacing.uncalibrated()).startswith("UNCALIBRATED")
    assert format_spacing(Spacing(0.1, 0.12, "dicom-pixel-spacing")) == (
        "0.1200 x 0.1000 mm/px (x by y; DICOM pixel spacing)"
    )


def test_ellipse_round_trip_through_the_editable_form():
    ellipse = Ellipse(10.0, 20.0, 30.0, 12.0, 1.0)
    assert EditableEllipse.from_ellipse(ellipse).to_ellipse() == ellipse


def test_short_paths_keep_the_last_parts():
    from pathlib import Path

    from hc_studio.app.train_tab import short_path

    assert short_path(Path("/home/someone/HC Studio/runs")) == "…/HC Studio/runs"
    assert short_path(Path("/runs")) == "/runs"
