"""The BPD outer-to-inner caliper: shown from the skull found in the image, moved by the user."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from hc_studio.app.caliper_item import BpdOuterInnerCaliper
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.phantom import make_phantom
from hc_studio.core.skull import SkullBpd, bpd_outer_inner
from hc_studio.core.spacing import Spacing

SPACING = Spacing.square(0.14, "csv")


@pytest.fixture
def view_box(qtbot):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    yield widget.getViewBox()  # the generator keeps the widget (and its ViewBox) alive


@pytest.fixture
def skull() -> SkullBpd:
    ellipse = Ellipse.normalised(200, 135, 120, 96, 0.2)
    phantom = make_phantom((270, 400), ellipse, SPACING, seed=0, ring_px=8)
    found = bpd_outer_inner(phantom.image, ellipse, SPACING)
    assert found.far_inner_xy is not None
    return found


def test_caliper_starts_at_the_far_inner_border_found_in_the_image(view_box, skull) -> None:
    caliper = BpdOuterInnerCaliper(view_box)
    caliper.set_skull(skull, SPACING)
    assert caliper.placed_by == "image"
    assert caliper.length == pytest.approx(skull.outer_inner, abs=1e-6)
    assert caliper.label.textItem.toPlainText() == f"BPD o-i {skull.outer_inner:.1f} mm"


def test_dragging_the_far_end_changes_the_length(qtbot, view_box, skull) -> None:
    caliper = BpdOuterInnerCaliper(view_box)
    caliper.set_skull(skull, SPACING)
    near, far_outer = np.array(skull.near_outer_xy), np.array(skull.far_outer_xy)
    with qtbot.waitSignal(caliper.edit_finished) as finished:
        caliper.move_far_end(tuple(far_outer))  # onto the outer border: outer-to-outer
    assert finished.args[0] == pytest.approx(skull.outer_outer, abs=1e-6)
    assert caliper.placed_by == "user"
    assert "(moved)" in caliper.label.textItem.toPlainText()

    # Off the axis: the end slides to the nearest point of the axis (90 % of the way).
    axis = far_outer - near
    sideways = np.array([-axis[1], axis[0]]) * 0.2
    moved = []
    caliper.length_changed.connect(moved.append)
    caliper.far_end.setPos(*(near + 0.9 * axis + sideways))
    assert moved[-1] == pytest.approx(0.9 * skull.outer_outer, rel=1e-6)
    assert caliper.far_xy == pytest.approx(tuple(near + 0.9 * axis))


def test_the_end_stays_within_the_head_and_just_outside_the_skull(view_box, skull) -> None:
    caliper = BpdOuterInnerCaliper(view_box)
    caliper.set_skull(skull, SPACING)
    caliper.move_far_end(skull.near_outer_xy)
    assert caliper.length == pytest.approx(0.5 * skull.outer_outer, rel=1e-6)


def test_an_unfound_border_is_no_length_until_the_user_places_it(view_box, skull) -> None:
    unfound = SkullBpd(
        skull.outer_outer,
        None,
        None,
        "mm",
        skull.near_outer_xy,
        skull.far_outer_xy,
        None,
        note="the profile never falls to half the skull band's height",
    )
    caliper = BpdOuterInnerCaliper(view_box)
    caliper.set_skull(unfound, SPACING)
    assert caliper.length is None and caliper.placed_by is None
    assert caliper.label.textItem.toPlainText() == "BPD o-i: not found"
    assert caliper.label.toolTip().startswith("Drag this end onto the far inner border")
    caliper.move_far_end(skull.far_inner_xy)
    assert caliper.length == pytest.approx(skull.outer_inner, abs=1e-6)

    caliper.set_skull(None, None)
    assert caliper.length is None and not caliper.line.isVisible()


def test_an_unfound_border_says_so_outside_the_head(view_box, skull) -> None:
    # The far end on the outer border, left of the near end: the message extends further left,
    # over the background, not back across the head and its BPD axis.
    near, far = np.array(skull.near_outer_xy), np.array(skull.far_outer_xy)
    if far[0] > near[0]:
        near, far = far, near
    unfound = SkullBpd(skull.outer_outer, None, None, "mm", tuple(near), tuple(far), None, note="")
    caliper = BpdOuterInnerCaliper(view_box)
    caliper.set_skull(unfound, SPACING)
    assert caliper.label.pos().x() < far[0]
    assert tuple(caliper.label.anchor) == (1.0, 0.5)  # the text ends at that point

    # Found, the label keeps its place beside the far end, inside the skull.
    caliper.set_skull(skull, SPACING)
    assert tuple(caliper.label.anchor) == (0.0, 0.5)
    assert caliper.label.pos().x() == pytest.approx(skull.far_inner_xy[0] + 8)
