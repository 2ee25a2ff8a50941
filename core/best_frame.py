"""The best frame of a clip: rank the frames of one cine loop by head plane quality and stability.

A clip is the records of one file with several frames. Each frame gets a score in 0..1:

    score = 0.4 * confidence_term + 0.3 * fit_term + 0.3 * stability_term

* confidence_term = (confidence - 0.5) / 0.5, clipped to 0..1 (the network's certainty at the
  head border, 0.5-1 in `core.measure`);
* fit_term = (fit_iou - 0.8) / 0.2, clipped to 0..1 (how elliptical the segmentation is; good
  heads lie in 0.9-1, so the useful span is stretched);
* stability_term = exp(-change / 0.1), where `change` is the relative change of the ellipse
  (centre shift, change of each semi-axis and of HC, each divided by the frame's size: mean
  semi-axis, or HC; their mean) averaged over the `window` (2) frames before the frame, and
  over the `window` frames after it; the smaller of the two sides counts. A neighbour without
  an ellipse counts as a change of 1 (the head was lost there). A 10 % change gives 0.37, 1 %
  gives 0.90.

When the caller has the frames' pixels, an image-quality term joins (`quality`: per frame the
`core.image_quality.ImageQuality` measured at the frame's fitted ellipse): confidence and fit
barely see blur or a washed-out image (a blurred head is segmented with a smooth, confident
border), the pixels do. Each of the two measures is compared with the clip's median over its
frames with a head:

    quality_term = (relative(edge_strength) + relative(contrast)) / 2
    relative(v)  = clip(v / (2 * the clip's median of v))   (the median frame gets 0.5, twice
                                                           the median or more gets 1)

    score = 0.7 * (0.4 * confidence_term + 0.3 * fit_term + 0.3 * stability_term)
            + 0.3 * quality_term

so that a blurred or darkened copy of a frame scores below the frame itself when the fits are
equal (both would tie only if both were at twice the clip's median or more). A frame with a
head but no quality in the mapping (its skull band outside the frame) gets a quality term of 0.
Without `quality` the score is the first sum alone.

When a plane check gives a score (0..1, `plane_scores`), it joins the sum with weight 0.25 and
the others are scaled by 0.75.

Status decides first, the score second: a frame whose status is "ok" always beats a frame to
review; a frame flagged for review can be suggested only when no frame of the clip is ok; frames
without a head, unreadable, refused or with any other status never win (score None). A clip
whose frames all fail gets no best frame (every flag 0): a wrong frame is never suggested. Ties
go to the earliest frame.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .image_quality import ImageQuality
from .records import MeasurementRecord, Status

BEST_FRAME_COLUMN = "best_frame"
WEIGHTS = {"confidence": 0.4, "fit": 0.3, "stability": 0.3}
PLANE_WEIGHT = 0.25
QUALITY_WEIGHT = 0.3
QUALITY_SATURATION = 2.0  # a frame this many times the clip's median gets the full term
STABILITY_SCALE = 0.1  # mean relative change giving stability exp(-1)
LOST_NEIGHBOUR_CHANGE = 1.0
TIER_OK, TIER_REVIEW, TIER_NONE = 2, 1, 0

FrameKey = tuple[str, int]


@dataclass(frozen=True)
class FrameScore:
    """One frame's score and its parts (None where the frame cannot be suggested)."""

    frame_index: int
    tier: int  # TIER_OK, TIER_REVIEW or TIER_NONE
    score: float | None
    confidence_term: float | None = None
    fit_term: float | None = None
    stability_term: float | None = None
    plane_term: float | None = None
    quality_term: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class ClipRanking:
    """The frames of one clip in frame order, and the suggested one (None when none can be)."""

    file: str
    best_index: int | None
    scores: tuple[FrameScore, ...]

    def score_of(self, frame_index: int) -> FrameScore:
        for score in self.scores:
            if score.frame_index == frame_index:
                return score
        raise KeyError(f"{self.file}: no frame {frame_index} in the clip")


def status_tier(record: MeasurementRecord) -> int:
    """TIER_OK for "ok", TIER_REVIEW for "review..." with an ellipse, else TIER_NONE."""
    if record.ellipse_px is None or record.hc is None:
        return TIER_NONE
    if record.status is Status.OK:
        return TIER_OK
    if record.status is Status.REVIEW:
        return TIER_REVIEW
    return TIER_NONE


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def _ellipse_change(this: MeasurementRecord, other: MeasurementRecord) -> float:
    """Mean relative change between two frames' ellipses (centre, axes, HC)."""
    if status_tier(other) == TIER_NONE:
        return LOST_NEIGHBOUR_CHANGE
    e1, e2 = this.ellipse_px, other.ellipse_px
    assert e1 is not None and e2 is not None
    size = max((e1.a + e1.b) / 2, 1e-6)
    parts = (
        math.hypot(e1.cx - e2.cx, e1.cy - e2.cy) / size,
        abs(e1.a - e2.a) / max(e1.a, 1e-6),
        abs(e1.b - e2.b) / max(e1.b, 1e-6),
        abs((this.hc or 0.0) - (other.hc or 0.0)) / max(this.hc or 0.0, 1e-6),
    )
    return min(LOST_NEIGHBOUR_CHANGE, sum(parts) / len(parts))


def stability(records: Sequence[MeasurementRecord], position: int, window: int = 2) -> float:
    """Stability term of `records[position]` (records in frame order).

    The mean change to the `window` frames before it and to the `window` frames after it, the
    smaller of the two: a frame that agrees with the frames on one side is stable even when the
    probe moved on the other side (the first or last frame of a still run).
    """
    this = records[position]
    sides = (
        records[max(0, position - window) : position],
        records[position + 1 : position + 1 + window],
    )
    changes = [
        sum(_ellipse_change(this, other) for other in side) / len(side) for side in sides if side
    ]
    if not changes:
        return 0.0
    return math.exp(-min(changes) / STABILITY_SCALE)


def _relative(value: float, median: float) -> float:
    if median <= 0:  # no skull brighter than the brain in most frames: only sign counts
        return 1.0 if value > 0 else 0.0
    return _clip(value / (QUALITY_SATURATION * median))


def _quality_term(measured: ImageQuality | None, edge: float, contrast: float) -> float:
    if measured is None:
        return 0.0
    return (_relative(measured.edge_strength, edge) + _relative(measured.contrast, contrast)) / 2


def quality_terms(
    records: Sequence[MeasurementRecord], quality: Mapping[FrameKey, ImageQuality]
) -> dict[int, float]:
    """frame_index -> quality term of each frame with a head, against the clip's medians."""
    heads = [r for r in records if status_tier(r) != TIER_NONE]
    known = [quality[(r.file, r.frame_index)] for r in heads if (r.file, r.frame_index) in quality]
    if not known:
        return {r.frame_index: 0.0 for r in heads}
    edge = statistics.median(q.edge_strength for q in known)
    contrast = statistics.median(q.contrast for q in known)
    return {
        r.frame_index: _quality_term(quality.get((r.file, r.frame_index)), edge, contrast)
        for r in heads
    }


def _frame_score(
    records: Sequence[MeasurementRecord],
    position: int,
    window: int,
    plane: float | None,
    quality: float | None,
) -> FrameScore:
    record = records[position]
    tier = status_tier(record)
    if tier == TIER_NONE:
        return FrameScore(record.frame_index, tier, None, reason=str(record.status))
    confidence = _clip(((record.confidence or 0.5) - 0.5) / 0.5)
    fit = _clip(((record.fit_iou or 0.8) - 0.8) / 0.2)
    steady = stability(records, position, window)
    score = (
        WEIGHTS["confidence"] * confidence + WEIGHTS["fit"] * fit + WEIGHTS["stability"] * steady
    )
    if quality is not None:
        score = (1 - QUALITY_WEIGHT) * score + QUALITY_WEIGHT * quality
    if plane is not None:
        plane = _clip(plane)
        score = (1 - PLANE_WEIGHT) * score + PLANE_WEIGHT * plane
    return FrameScore(record.frame_index, tier, score, confidence, fit, steady, plane, quality)


def rank_clip(
    records: Iterable[MeasurementRecord],
    *,
    window: int = 2,
    plane_scores: Mapping[FrameKey, float] | None = None,
    quality: Mapping[FrameKey, ImageQuality] | None = None,
) -> ClipRanking:
    """Score every frame of ONE clip (records of one file) and pick the best.

    `plane_scores`: optional (file, frame_index) -> 0..1 from a head-plane check.
    `quality`: optional (file, frame_index) -> the frame's `ImageQuality` at its ellipse
    (`core.image_quality.image_quality`), from the pixels the records were measured on.
    """
    ordered = sorted(records, key=lambda r: r.frame_index)
    files = {r.file for r in ordered}
    if len(files) != 1:
        raise ValueError(f"a clip is the frames of one file, got {len(files)} file(s)")
    planes = plane_scores or {}
    terms = {} if quality is None else quality_terms(ordered, quality)
    scores = tuple(
        _frame_score(
            ordered, i, window, planes.get((r.file, r.frame_index)), terms.get(r.frame_index)
        )
        for i, r in enumerate(ordered)
    )
    candidates = [s for s in scores if s.score is not None]
    best = None
    if candidates:
        # max over (tier, score); on ties, the earliest frame (smallest index) wins.
        best = max(candidates, key=lambda s: (s.tier, s.score, -s.frame_index)).frame_index
    return ClipRanking(ordered[0].file, best, scores)


def rank_clips(
    records: Iterable[MeasurementRecord],
    *,
    window: int = 2,
    plane_scores: Mapping[FrameKey, float] | None = None,
    quality: Mapping[FrameKey, ImageQuality] | None = None,
) -> dict[str, ClipRanking]:
    """A ranking per clip (file with more than one frame); single frames are left out."""
    by_file: dict[str, list[MeasurementRecord]] = {}
    for record in records:
        by_file.setdefault(record.file, []).append(record)
    return {
        file: rank_clip(frames, window=window, plane_scores=plane_scores, quality=quality)
        for file, frames in by_file.items()
        if len({r.frame_index for r in frames}) > 1
    }


def best_frame_flags(
    records: Iterable[MeasurementRecord],
    *,
    window: int = 2,
    plane_scores: Mapping[FrameKey, float] | None = None,
    quality: Mapping[FrameKey, ImageQuality] | None = None,
) -> dict[FrameKey, int]:
    """(file, frame_index) -> 1 on the best frame of each clip, 0 on its other frames.

    Frames of single-frame files are absent (their column stays empty).
    """
    flags: dict[FrameKey, int] = {}
    rankings = rank_clips(records, window=window, plane_scores=plane_scores, quality=quality)
    for file, ranking in rankings.items():
        for score in ranking.scores:
            flags[(file, score.frame_index)] = int(score.frame_index == ranking.best_index)
    return flags


def best_frame_column(
    records: Sequence[MeasurementRecord],
    quality: Mapping[FrameKey, ImageQuality] | None = None,
) -> list[str]:
    """The `best_frame` column aligned with `records`: "1", "0", or "" for single frames."""
    flags = best_frame_flags(records, quality=quality)
    return [
        str(flags[(r.file, r.frame_index)]) if (r.file, r.frame_index) in flags else ""
        for r in records
    ]


def add_best_frame_column(
    rows: list[dict[str, str]],
    flags: Mapping[FrameKey, int],
    *,
    file_key: str = "file",
    index_key: str = "frame_index",
) -> list[dict[str, str]]:
    """CSV row dicts with a `best_frame` cell added (new dicts; "" for single frames)."""
    out = []
    for row in rows:
        key = (row[file_key], int(row[index_key]))
        out.append({**row, BEST_FRAME_COLUMN: str(flags[key]) if key in flags else ""})
    return out
