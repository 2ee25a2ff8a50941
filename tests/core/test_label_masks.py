"""Masks as clinics write them: label maps, open outlines, and the per-frame import report."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.dataset import import_labelled_folder
from hc_studio.core.ellipse import Ellipse, rasterize_ellipse
from hc_studio.core.label_masks import LabelProblem, foreground, label_from_grey

SHAPE = (120, 160)
HEAD = Ellipse(80.3, 60.6, 50.0, 32.0, 0.4)


def put(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)


def label_map() -> np.ndarray:
    """PSFHS-style: 0 background, 1 a pubic symphysis blob, 2 the head."""
    grey = rasterize_ellipse(HEAD, SHAPE).astype(np.uint8) * 2
    cv2.circle(grey, (20, 105), 10, 1, -1)
    return grey


def outline(start: int, end: int) -> np.ndarray:
    drawn = np.zeros(SHAPE, np.uint8)
    centre, axes = (round(HEAD.cx), round(HEAD.cy)), (round(HEAD.a), round(HEAD.b))
    cv2.ellipse(drawn, centre, axes, math.degrees(HEAD.angle), start, end, 255, 1)
    return drawn


def test_label_map_without_mask_label_lists_its_values() -> None:
    with pytest.raises(LabelProblem, match=r"label map with several values \(1, 2\).*--mask-label"):
        label_from_grey(label_map(), hc18_outline=False)


def test_mask_label_picks_the_head_out_of_a_label_map() -> None:
    label = label_from_grey(label_map(), hc18_outline=False, mask_label=2)
    np.testing.assert_array_equal(label.mask, rasterize_ellipse(HEAD, SHAPE))
    assert abs(label.ellipse.a - HEAD.a) < 0.3 and abs(label.ellipse.cx - HEAD.cx) < 0.2


def test_a_missing_label_says_which_values_are_there() -> None:
    with pytest.raises(LabelProblem, match=r"label 3 is not in the mask \(values found: 0, 1, 2\)"):
        foreground(label_map(), mask_label=3)


@pytest.mark.parametrize("levels", [(0, 1), (0, 255), (0, 65535)])
def test_a_binary_mask_of_any_level_is_its_non_zero_pixels(levels: tuple[int, int]) -> None:
    head = rasterize_ellipse(HEAD, SHAPE)
    grey = np.where(head, levels[1], levels[0]).astype(np.uint16)
    np.testing.assert_array_equal(foreground(grey), head)


def test_jpeg_ringing_is_not_a_label_map() -> None:
    grey = rasterize_ellipse(HEAD, SHAPE).astype(np.uint8) * 255
    noisy = grey.copy()
    noisy[grey == 255] -= (
        np.random.default_rng(0).integers(0, 3, (grey == 255).sum()).astype(np.uint8)
    )
    np.testing.assert_array_equal(foreground(noisy), grey > 0)


def test_outline_with_a_gap_is_fitted_like_hc18() -> None:
    label = label_from_grey(outline(20, 340), hc18_outline=False)
    closed = label_from_grey(outline(0, 360), hc18_outline=True)
    assert label.source == "open-outline"
    for name in ("cx", "cy", "a", "b"):
        assert abs(getattr(label.ellipse, name) - getattr(closed.ellipse, name)) < 0.5
    assert label.mask.sum() == pytest.approx(math.pi * HEAD.a * HEAD.b, rel=0.05)


def test_an_outline_in_two_strokes_is_fitted() -> None:
    label = label_from_grey(outline(0, 150) | outline(200, 330), hc18_outline=False)
    assert label.source == "open-outline" and abs(label.ellipse.a - 50) < 1.5


def test_a_straight_line_is_refused() -> None:
    line = np.zeros(SHAPE, np.uint8)
    cv2.line(line, (10, 10), (150, 100), 255, 1)
    with pytest.raises(LabelProblem, match="not closed"):
        label_from_grey(line, hc18_outline=False)


def test_import_report_says_what_was_done_for_each_frame(tmp_path: Path) -> None:
    root = tmp_path / "clinic"
    noise = (np.random.default_rng(2).random(SHAPE) * 255).astype(np.uint8)
    for name, mask in [("a_map", label_map()), ("b_open", outline(20, 340))]:
        put(root / "images" / f"{name}.png", noise)
        put(root / "masks" / f"{name}.png", mask)
    refused = import_labelled_folder(root)
    assert [p.image_path.name for p in refused.pairs] == ["b_open.png"]
    assert refused.report_lines() == [
        "a_map.png: skipped: mask is a label map with several values (1, 2): say which is the "
        "head with --mask-label N",
        "b_open.png: imported: outline not closed, ellipse fitted to its pixels as for HC18",
    ]
    chosen = import_labelled_folder(root, mask_label=2, load_pixels=False)
    assert chosen.report_lines()[0] == "a_map.png: imported: filled mask (label 2 of a label map)"
    assert chosen.report_lines()[1].startswith("b_open.png: skipped: label 2 is not in the mask")
    pair = chosen.pairs[0]
    np.testing.assert_array_equal(pair.read_mask(), rasterize_ellipse(HEAD, SHAPE))


PSFHS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "psfhs-dev"


@pytest.mark.skipif(not (PSFHS / "masks").is_dir(), reason="PSFHS development frames not here")
def test_psfhs_label_maps_import_with_mask_label_2(tmp_path: Path) -> None:
    # A handful of frames, linked (never copied) into a small folder to keep the test fast.
    names = sorted(p.name for p in (PSFHS / "images").iterdir())[:6]
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
        for name in names:
            (tmp_path / sub / name).symlink_to(PSFHS / sub / name)
    assert import_labelled_folder(tmp_path, load_pixels=False).pairs == []
    imported = import_labelled_folder(tmp_path, mask_label=2, load_pixels=False)
    assert len(imported.pairs) == len(names) and not imported.problems
