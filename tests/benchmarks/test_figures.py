"""benchmarks/figures.py: Bland-Altman numbers, case choice, drawing and the size budget."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import figures
import numpy as np
import pytest
from hc_studio.core.ellipse import Ellipse


def test_bland_altman_matches_hand_computed_values() -> None:
    measured = np.array([101.0, 152.0, 199.0, 250.0])
    reference = np.array([100.0, 150.0, 200.0, 250.0])
    stats = figures.bland_altman(measured, reference)
    differences = np.array([1.0, 2.0, -1.0, 0.0])  # mean 0.5
    sd = math.sqrt(((differences - 0.5) ** 2).sum() / 3)  # sample SD
    assert stats.n == 4 and stats.bias == pytest.approx(0.5)
    assert stats.sd == pytest.approx(sd)
    assert stats.lower == pytest.approx(0.5 - 1.96 * sd)
    assert stats.upper == pytest.approx(0.5 + 1.96 * sd)
    assert stats.mean_abs_difference == pytest.approx(1.0)


def test_bland_altman_needs_two_matching_pairs() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        figures.bland_altman(np.array([1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="same length"):
        figures.bland_altman(np.array([1.0, 2.0]), np.array([1.0]))


def test_read_hc_rows_keeps_frames_with_both_values(tmp_path: Path) -> None:
    path = tmp_path / "per_frame.csv"
    path.write_text(
        "file,hc_pred_mm,hc_ref_mm\na.png,101.5,100\nb.png,,100\nc.png,nan,90\nd.png,80,79\n"
    )
    rows = figures.read_hc_rows(path)
    assert [row.file for row in rows] == ["a.png", "d.png"]
    assert rows[0].difference == pytest.approx(1.5)


def test_best_and_worst_are_ranked_by_absolute_difference_and_disjoint() -> None:
    rows = [
        figures.FrameRow(f"{i}.png", 100.0 + d, 100.0) for i, d in enumerate([3, -0.1, -7, 1, 0.5])
    ]
    best, worst = figures.best_and_worst(rows, 2)
    assert [row.file for row in best] == ["1.png", "4.png"]
    assert [row.file for row in worst] == ["2.png", "0.png"]
    few_best, few_worst = figures.best_and_worst(rows[:3], 4)
    assert not {r.file for r in few_best} & {r.file for r in few_worst}
    assert len(few_best) + len(few_worst) == 3


def test_draw_tile_draws_both_ellipses_in_their_colours() -> None:
    image = np.zeros((540, 800), np.float32)
    reference = Ellipse(400.0, 270.0, 200.0, 150.0, 0.0)
    measured = Ellipse(400.0, 270.0, 100.0, 80.0, 0.3)
    tile = figures.draw_tile(image, reference, measured, "x", width=400)
    assert tile.shape == (270 + figures.LABEL_HEIGHT, 400, 3)
    blue = (tile[..., 0] > 150) & (tile[..., 2] < 120)
    orange = (tile[..., 2] > 150) & (tile[..., 0] < 60)
    # At half scale the reference's rim passes (x, y) = (300, 135) and (200, 60); the measured
    # ellipse's rim passes (250, 135).
    assert blue[133:138, 297:303].any() and blue[57:63, 197:203].any()
    assert orange[133:138, 247:253].any()
    assert not orange[133:138, 297:303].any() and not blue[133:138, 247:253].any()


def test_encode_png_under_shrinks_until_it_fits() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (600, 900, 3), dtype=np.uint8)
    widths = []

    def render(width: int) -> np.ndarray:
        widths.append(width)
        return cv2.resize(noise, (width, width * 2 // 3), interpolation=cv2.INTER_NEAREST)

    data = figures.encode_png_under(render, max_bytes=100_000, width=900)
    assert len(data) <= 100_000
    assert widths[0] == 900 and widths[-1] < 900
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[1] == widths[-1]


def test_bland_altman_plot_is_a_small_png() -> None:
    pytest.importorskip("matplotlib")
    rows = [figures.FrameRow(f"{i}.png", 150.0 + i + (i % 3), 150.0 + i) for i in range(30)]
    stats = figures.bland_altman(
        np.array([r.hc_pred_mm for r in rows]), np.array([r.hc_ref_mm for r in rows])
    )
    data = figures.render_bland_altman(rows, stats)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < figures.MAX_IMAGE_BYTES
