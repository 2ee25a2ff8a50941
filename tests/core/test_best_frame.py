"""Best frame of a clip: the score's parts, the status tiers, the image quality, the CSV column."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from hc_studio.core.best_frame import (
    BEST_FRAME_COLUMN,
    QUALITY_WEIGHT,
    TIER_NONE,
    TIER_OK,
    TIER_REVIEW,
    add_best_frame_column,
    best_frame_column,
    best_frame_flags,
    quality_terms,
    rank_clip,
    rank_clips,
    stability,
)
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.image_quality import ImageQuality, image_quality
from hc_studio.core.measure import record_from_ellipse
from hc_studio.core.phantom import make_phantom
from hc_studio.core.records import MeasurementRecord, parse_status_text
from hc_studio.core.spacing import Spacing

SPACING = Spacing.square(0.1, "user")


def frame(index, *, file="clip.dcm", cx=100.0, a=60.0, b=45.0, conf=0.95, iou=0.97, status="ok"):
    record = record_from_ellipse(file, index, SPACING, Ellipse.normalised(cx, 80.0, a, b, 0.2), "m")
    status, reasons = parse_status_text(status)
    return record.replace(confidence=conf, fit_iou=iou, status=status, reasons=reasons)


def no_head(index, file="clip.dcm") -> MeasurementRecord:
    return MeasurementRecord(file=file, frame_index=index, spacing=SPACING, status="no head found")


def test_most_confident_steady_frame_wins() -> None:
    clip = [frame(0, conf=0.90), frame(1, conf=0.97), frame(2, conf=0.91), frame(3, conf=0.90)]
    ranking = rank_clip(clip)
    assert ranking.best_index == 1
    best = ranking.score_of(1)
    assert best.confidence_term == pytest.approx(0.94)
    assert best.fit_term == pytest.approx(0.85)
    assert best.stability_term == pytest.approx(1.0)  # identical ellipses around it
    assert best.score == pytest.approx(0.4 * 0.94 + 0.3 * 0.85 + 0.3 * 1.0)


def test_a_jumping_ellipse_loses_to_a_steady_one() -> None:
    # Frame 2 is the most confident, but its ellipse jumps away from every neighbour.
    clip = [frame(0), frame(1), frame(2, cx=160.0, a=90.0, conf=0.97), frame(3), frame(4)]
    ranking = rank_clip(clip)
    assert ranking.score_of(2).stability_term < 0.05
    assert ranking.best_index != 2


def test_stability_counts_the_steadier_side_and_lost_heads() -> None:
    clip = [frame(0, cx=200.0), frame(1, cx=200.0), frame(2), frame(3), frame(4)]
    assert stability(clip, 2) == pytest.approx(1.0)  # the frames after it agree
    lost = [no_head(0), frame(1), no_head(2)]
    assert stability(lost, 1, window=1) == pytest.approx(0.0, abs=1e-4)


def test_status_decides_before_the_score() -> None:
    clip = [
        frame(0, conf=0.99, iou=0.99, status="review: very small head"),
        frame(1, conf=0.86, iou=0.91),
        no_head(2),
        frame(3, conf=0.99, status="error: broken"),
        frame(4, conf=0.99, status="not a fetal head: not a head plane"),
    ]
    ranking = rank_clip(clip)
    tiers = [s.tier for s in ranking.scores]
    assert tiers == [TIER_REVIEW, TIER_OK, TIER_NONE, TIER_NONE, TIER_NONE]
    assert ranking.best_index == 1
    assert ranking.score_of(2).score is None and ranking.score_of(2).reason == "no head found"
    # With no ok frame, the best flagged one is suggested; with nothing usable, none is.
    assert rank_clip([clip[0], clip[2]]).best_index == 0
    assert rank_clip([no_head(0), no_head(1)]).best_index is None


def test_ties_go_to_the_earliest_frame() -> None:
    assert rank_clip([frame(i) for i in range(4)]).best_index == 0


def test_plane_score_joins_the_sum() -> None:
    clip = [frame(0), frame(1)]
    planes = {("clip.dcm", 0): 0.1, ("clip.dcm", 1): 0.9}
    ranking = rank_clip(clip, plane_scores=planes)
    assert ranking.best_index == 1
    assert ranking.score_of(1).plane_term == 0.9
    plain = rank_clip(clip).score_of(1).score
    assert ranking.score_of(1).score == pytest.approx(0.75 * plain + 0.25 * 0.9)


def test_rank_clip_refuses_several_files() -> None:
    with pytest.raises(ValueError, match="one file"):
        rank_clip([frame(0), frame(1, file="other.dcm")])


def test_flags_mark_one_frame_per_clip_and_leave_single_frames_out() -> None:
    records = [frame(0), frame(1, conf=0.99), frame(2), frame(0, file="still.png")]
    records += [no_head(0, "dead.dcm"), no_head(1, "dead.dcm")]
    flags = best_frame_flags(records)
    assert flags == {
        ("clip.dcm", 0): 0,
        ("clip.dcm", 1): 1,
        ("clip.dcm", 2): 0,
        ("dead.dcm", 0): 0,
        ("dead.dcm", 1): 0,
    }
    assert set(rank_clips(records)) == {"clip.dcm", "dead.dcm"}
    assert best_frame_column(records) == ["0", "1", "0", "", "0", "0"]
    rows = [{"file": r.file, "frame_index": str(r.frame_index), "hc": "1"} for r in records]
    marked = add_best_frame_column(rows, flags)
    assert [row[BEST_FRAME_COLUMN] for row in marked] == ["0", "1", "0", "", "0", "0"]
    assert BEST_FRAME_COLUMN not in rows[0]  # the input rows are left as they were


# ---- the image quality term ---------------------------------------------------------------------


def blurred(pixels: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(pixels, (0, 0), sigma)


def test_blur_and_low_contrast_lower_the_image_quality() -> None:
    phantom = make_phantom(seed=3)
    sharp = image_quality(phantom.image, phantom.ellipse_px)
    assert sharp is not None and sharp.edge_strength > 0 and sharp.contrast > 0
    edges = [image_quality(blurred(phantom.image, s), phantom.ellipse_px) for s in (1, 2, 4, 8)]
    strengths = [sharp.edge_strength] + [q.edge_strength for q in edges]
    assert strengths == sorted(strengths, reverse=True)  # more blur, weaker edges
    assert strengths[-1] < 0.5 * strengths[0]
    flat = image_quality(0.45 + 0.1 * phantom.image, phantom.ellipse_px)
    assert flat.contrast == pytest.approx(0.1 * sharp.contrast, rel=1e-3)
    assert flat.edge_strength == pytest.approx(0.1 * sharp.edge_strength, rel=1e-3)
    # An ellipse whose skull band lies outside the frame has no quality.
    far = Ellipse.normalised(5000.0, 5000.0, 60.0, 45.0, 0.0)
    assert image_quality(phantom.image, far) is None


def test_image_quality_stays_off_numpy_ma() -> None:
    """Its skull percentile comes from one partition (`core.order_stats`): numpy's percentile
    imports numpy.ma (about 20 ms) inside the first frame a clip ranks."""
    code = (
        "import sys\n"
        "from hc_studio.core.image_quality import image_quality\n"
        "from hc_studio.core.phantom import make_phantom\n"
        "phantom = make_phantom(seed=3)\n"
        "assert image_quality(phantom.image, phantom.ellipse_px) is not None\n"
        "print('numpy.ma' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_quality_term_is_relative_to_the_clip_median() -> None:
    clip = [frame(0), frame(1), frame(2), no_head(3)]
    quality = {
        ("clip.dcm", 0): ImageQuality(0.01, 0.1),
        ("clip.dcm", 1): ImageQuality(0.02, 0.2),
        ("clip.dcm", 2): ImageQuality(0.05, 0.4),
        ("clip.dcm", 3): ImageQuality(9.0, 9.0),  # no head: left out of the medians
    }
    terms = quality_terms(clip, quality)
    assert terms == pytest.approx({0: 0.25, 1: 0.5, 2: 1.0})  # medians 0.02 and 0.2
    ranking = rank_clip(clip, quality=quality)
    plain = rank_clip(clip)
    assert ranking.best_index == 2 and plain.best_index == 0
    assert ranking.score_of(1).quality_term == pytest.approx(0.5)
    assert ranking.score_of(1).score == pytest.approx(
        (1 - QUALITY_WEIGHT) * plain.score_of(1).score + QUALITY_WEIGHT * 0.5
    )
    assert ranking.score_of(3).score is None
    # A frame with a head whose quality is unknown gets none of the term.
    assert quality_terms(clip, {("clip.dcm", 2): ImageQuality(0.05, 0.4)})[0] == 0.0


@pytest.mark.parametrize("sigma", [1.0, 2.0, 4.0, 8.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_blurred_copy_never_beats_its_sharp_original(sigma: float, seed: int) -> None:
    """Equal fits (same ellipse, confidence and fit IoU), the blurred copy first so that a tie
    would go to it: the sharp original must win, alone or among other frames."""
    phantom = make_phantom(seed=seed)
    e = phantom.ellipse_px
    images = [blurred(phantom.image, sigma), phantom.image, blurred(phantom.image, 2 * sigma)]
    clip = [frame(i, cx=e.cx, a=e.a, b=e.b).replace(ellipse_px=e) for i in range(len(images))]
    quality = {("clip.dcm", i): image_quality(px, e) for i, px in enumerate(images)}
    assert rank_clip(clip[:2], quality=quality).best_index == 1
    ranking = rank_clip(clip, quality=quality)
    assert ranking.best_index == 1
    assert ranking.score_of(0).score < ranking.score_of(1).score
    assert rank_clip(clip).best_index == 0  # without the term, the tie went to the copy
