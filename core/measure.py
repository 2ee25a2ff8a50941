"""Frame -> head probability -> ellipse -> `MeasurementRecord`.

Status of a record (`core.records.Status`, with its `reasons`): OK; REVIEW (measured, but the fit
or the network looks doubtful: the values are kept and a person should look); NO_HEAD; NOT_A_HEAD
(an ellipse was found but the frame fails `core.plane_check`: no values are given, the reasons say
why); ERROR (the file or frame could not be read or processed, the problem is the one reason).

Confidence (0.5-1): the network's certainty around the head border, the mean of max(p, 1 - p)
over the frame pixels whose normalised ellipse radius lies in 0.75-1.25 (a band a quarter of the
head's size inside and outside the fitted ellipse). A crisp, decided segmentation gives ~0.95+;
hesitant or patchy probabilities near the head pull it towards 0.5.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .biometry import biometry_from_ellipse
from .ellipse import Ellipse, ellipse_from_probability
from .ellipse_field import EllipseField, field_for
from .gestational_age import ga_hadlock, ga_intergrowth, hc_centile, hc_z_score
from .image_quality import ImageQuality, image_quality
from .inference import Prediction, SegmentationEngine
from .io import Frame, FrameReadError, find_broken_links, find_frame_files, load_frames
from .plane_check import FIELD_LIMIT, head_plane_reasons
from .records import MeasurementRecord, Status
from .refine import Refinement, refine
from .spacing import Spacing, SpacingPolicy

REVIEW_FIT_IOU = 0.90  # below: the segmentation is far from elliptical
REVIEW_CONFIDENCE = 0.85
REVIEW_MIN_AREA_FRACTION = 0.01  # a "head" covering under 1 % of the frame is suspicious
# Two passes whose HC differ by more than this share followed different structures. A net for
# gross failures only: on validation, no cut of the disagreement caught frames over 5 mm (the
# refining pass is usually the one that is right; docs/benchmarks.md, section 3c).
REVIEW_PASS_DISAGREEMENT = 0.10
_CONFIDENCE_BAND = (0.75**2, 1.25**2)  # on the normalised radius squared

ProgressCallback = Callable[[int, int, MeasurementRecord], None]


@dataclass(frozen=True)
class MeasuredFrame:
    """A frame's record and the network output it came from (None on error).

    `prob` is the head probability at frame size, (H, W) float32, resized on first use: a batch
    that only writes the CSV never pays for it. `quality`: the image quality at the fitted
    ellipse (`core.image_quality`), for ranking the frames of a clip, also worked out on first
    use (a few ms a frame that only clip outputs need); None without an ellipse.
    """

    record: MeasurementRecord
    prediction: Prediction | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)  # for `quality`, when measured
    refinement: Refinement | None = field(default=None, repr=False)

    @functools.cached_property
    def prob(self) -> np.ndarray | None:
        """The first pass's probability, with the refining pass's window pasted over it."""
        if self.prediction is None:
            return None
        frame_prob = self.prediction.frame_prob()
        if self.refinement is not None:
            return self.refinement.paste_into(frame_prob)
        return frame_prob

    @functools.cached_property
    def quality(self) -> ImageQuality | None:
        ellipse = self.record.ellipse_px
        if self.pixels is None or ellipse is None:
            return None
        return image_quality(self.pixels, ellipse)


def is_failure(record: MeasurementRecord) -> bool:
    """True for frames that gave no measurement (no head, not a head, or an error)."""
    return record.status.is_failure


def record_from_ellipse(
    frame_path: str,
    frame_index: int,
    spacing: Spacing,
    ellipse_px: Ellipse,
    model: str,
    origin: str = "edited",
    base: MeasurementRecord | None = None,
    ga_weeks: float | None = None,
) -> MeasurementRecord:
    """A record with HC/BPD/OFD/area, GA and (when `ga_weeks` is known) z-score and centile.

    Used for automatic measurements and when a person edits the ellipse. `base`, when given,
    keeps its fit_iou, confidence and accepted flag (they describe the automatic result).
    Uncalibrated frames get lengths in pixels and no GA.
    """
    biometry = biometry_from_ellipse(ellipse_px, spacing)
    values: dict[str, object] = dict(
        file=frame_path,
        frame_index=frame_index,
        spacing=spacing,
        status=Status.OK,
        ellipse_px=ellipse_px,
        biometry=biometry,
        model=model,
        origin=origin,
    )
    values.update(_gestational_age_values(biometry.hc, spacing, ga_weeks))
    if base is not None:
        values.update(fit_iou=base.fit_iou, confidence=base.confidence, accepted=base.accepted)
    return MeasurementRecord(**values)  # type: ignore[arg-type]


def _gestational_age_values(
    hc: float, spacing: Spacing, ga_weeks: float | None
) -> dict[str, object]:
    if not spacing.calibrated:
        note = "uncalibrated frame: no gestational age from pixels"
        return {"ga_hadlock_note": note, "ga_intergrowth_note": note}
    hadlock, intergrowth = ga_hadlock(hc), ga_intergrowth(hc)
    values: dict[str, object] = {
        "ga_hadlock_weeks": hadlock.weeks,
        "ga_hadlock_note": hadlock.note,
        "ga_intergrowth_weeks": intergrowth.weeks,
        "ga_intergrowth_note": intergrowth.note,
    }
    if ga_weeks is not None:
        values["z_score"] = hc_z_score(hc, ga_weeks)[0]
        values["centile"] = hc_centile(hc, ga_weeks)[0]
    return values


def border_confidence(
    prob: np.ndarray, ellipse_px: Ellipse, map_field: EllipseField | None = None
) -> float:
    """Mean of max(p, 1 - p) over the pixels of `prob` (h, w) near the ellipse's border
    (`ellipse_px` in the coordinates of `prob`'s grid; `map_field` its `EllipseField` there,
    when the caller has it)."""
    near = field_for(ellipse_px, prob.shape, _CONFIDENCE_BAND[1], map_field)
    if near.window is None:
        return 0.5
    radius_sq = near.radius_sq
    band = (radius_sq >= _CONFIDENCE_BAND[0]) & (radius_sq <= _CONFIDENCE_BAND[1])
    if not band.any():
        return 0.5
    values = prob[near.window][band]
    return float(np.maximum(values, 1.0 - values).mean())


def _review_reasons(record: MeasurementRecord, frame_shape: tuple[int, int]) -> tuple[str, ...]:
    reasons = []
    if record.fit_iou is not None and record.fit_iou < REVIEW_FIT_IOU:
        reasons.append(f"fit IoU {record.fit_iou:.2f}")
    if record.confidence is not None and record.confidence < REVIEW_CONFIDENCE:
        reasons.append(f"low confidence {record.confidence:.2f}")
    disagreement = record.pass_disagreement
    if disagreement is not None and disagreement > REVIEW_PASS_DISAGREEMENT:
        reasons.append(f"two passes differ by {100 * disagreement:.1f} % in HC")
    ellipse = record.ellipse_px
    if ellipse is not None:
        area_fraction = np.pi * ellipse.a * ellipse.b / (frame_shape[0] * frame_shape[1])
        if area_fraction < REVIEW_MIN_AREA_FRACTION:
            reasons.append("very small head")
    return tuple(reasons)


def measure_frame(
    frame: Frame, engine: SegmentationEngine, ga_weeks: float | None = None
) -> MeasuredFrame:
    """Segment and measure one frame.

    The ellipse is fitted to the sub-pixel contour of the NETWORK-resolution probability,
    mapped to the frame axis by axis (no bias from resizing the map first).
    """
    prediction = engine.predict(frame.pixels)
    # The fit works out the ellipse's field on the map as far as the plane check's bands reach:
    # the IoU, the border confidence and the bands then read one field.
    fit = ellipse_from_probability(
        prediction.prob,
        frame_shape=prediction.frame_shape,
        spacing=frame.spacing,
        field_limit=FIELD_LIMIT,
    )
    if fit is None:
        record = MeasurementRecord(
            file=frame.path,
            frame_index=frame.index,
            spacing=frame.spacing,
            status=Status.NO_HEAD,
            model=engine.name,
        )
        return MeasuredFrame(record, prediction)

    def auto_record(ellipse_px: Ellipse) -> MeasurementRecord:
        return record_from_ellipse(
            frame.path,
            frame.index,
            frame.spacing,
            ellipse_px,
            engine.name,
            origin="auto",
            ga_weeks=ga_weeks,
        )

    record = auto_record(fit.ellipse_px)
    record = record.replace(
        fit_iou=float(fit.fit_iou),
        confidence=border_confidence(prediction.prob, fit.ellipse_on_map, fit.map_field),
    )
    not_a_head = head_plane_reasons(
        frame.pixels,
        prediction.prob,
        fit.ellipse_px,
        record.fit_iou,
        record.confidence,
        frame.spacing,
        frame_on_grid=prediction.frame_on_grid,
        ellipse_on_map=fit.ellipse_on_map,
        component_areas=fit.component_areas,
        map_field=fit.map_field,
    )
    if not_a_head:
        # No ellipse, HC or GA: a number from a frame without a head would be a wrong number.
        refused = MeasurementRecord(
            file=frame.path,
            frame_index=frame.index,
            spacing=frame.spacing,
            status=Status.NOT_A_HEAD,
            reasons=tuple(not_a_head),
            fit_iou=record.fit_iou,
            confidence=record.confidence,
            model=engine.name,
        )
        return MeasuredFrame(refused, prediction)
    refinement = None
    if engine.refiner is not None:
        refinement = refine(
            frame.pixels, fit.ellipse_px, engine.refiner, engine.info.refine_margin, frame.spacing
        )
        if refinement is not None:
            record = auto_record(refinement.ellipse_px).replace(
                fit_iou=record.fit_iou,
                confidence=record.confidence,
                pass_disagreement=refinement.disagreement,
            )
    reasons = _review_reasons(record, frame.pixels.shape)
    if engine.refiner is not None and refinement is None:
        reasons += ("the refining pass found no head",)
    if reasons:
        record = record.replace(status=Status.REVIEW, reasons=reasons)
    return MeasuredFrame(record, prediction, frame.pixels, refinement)


def error_record(
    path: str | Path,
    frame_index: int,
    problem: str,
    model: str = "",
    spacing: Spacing | None = None,
) -> MeasurementRecord:
    """The record of a frame (or of the rest of a file) that could not be measured."""
    return MeasurementRecord(
        file=str(path),
        frame_index=frame_index,
        spacing=spacing or Spacing.uncalibrated(),
        status=Status.ERROR,
        reasons=(problem,),
        model=model,
    )


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files to measure: folders expanded to their frame files; other paths kept as given
    (a missing file then gives an error record naming it)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            # A dangling link in a folder gives an error record naming it, not silence.
            files.extend(sorted(find_frame_files([path]) + find_broken_links(path)))
        else:
            files.append(path)
    return files


def _measure_file(
    path: Path,
    engine: SegmentationEngine,
    spacing: Spacing | None,
    cancel: Callable[[], bool] | None,
    ga_weeks: float | None,
) -> Iterator[MeasuredFrame]:
    """Every frame of one file; a read failure ends the file with an error record."""
    next_index = 0
    try:
        for frame in load_frames(path, spacing_override=spacing):
            if cancel is not None and cancel():
                return
            next_index = frame.index + 1
            try:
                yield measure_frame(frame, engine, ga_weeks)
            except (ValueError, ArithmeticError, cv2.error) as error:
                failed = error_record(path, frame.index, str(error), engine.name, frame.spacing)
                yield MeasuredFrame(failed, None)
    except FrameReadError as error:
        yield MeasuredFrame(
            error_record(path, next_index, error.problem, engine.name, spacing), None
        )
    except OSError as error:
        problem = error.strerror or str(error)
        yield MeasuredFrame(error_record(path, next_index, problem, engine.name, spacing), None)


def measure_file_frames(
    paths: Iterable[str | Path],
    engine: SegmentationEngine,
    spacing_override: Spacing | None = None,
    pixel_csv_sizes: dict[str, float] | None = None,
    cancel: Callable[[], bool] | None = None,
    ga_weeks: float | None = None,
    spacing_policy: SpacingPolicy | None = None,
) -> Iterator[tuple[int, MeasuredFrame]]:
    """Like `measure_paths`, with each frame's probability: yields (file position from 1,
    MeasuredFrame)."""
    paths = list(paths)
    policy = spacing_policy or SpacingPolicy.for_batch(paths, spacing_override, pixel_csv_sizes)
    for position, path in enumerate(expand_paths(paths), start=1):
        if cancel is not None and cancel():
            return
        spacing = policy.override_for(path)
        for measured in _measure_file(path, engine, spacing, cancel, ga_weeks):
            yield position, measured


def measure_paths(
    paths: Iterable[str | Path],
    engine: SegmentationEngine,
    spacing_override: Spacing | None = None,
    pixel_csv_sizes: dict[str, float] | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    ga_weeks: float | None = None,
    spacing_policy: SpacingPolicy | None = None,
) -> Iterator[MeasurementRecord]:
    """Measure every frame of every file (folders expanded); yields one record per frame.

    Spacing per file: `spacing_policy`, else one made of `spacing_override` and
    `pixel_csv_sizes` (applying to `paths`); see `core.spacing.SpacingPolicy`. A file that
    cannot be read gives an ERROR record and the batch goes on. `on_progress(i, n,
    record)` is called after each record with the file's 1-based position `i` of `n` files;
    `cancel()` returning True stops before the next frame.
    """
    paths = list(paths)
    files = expand_paths(paths)
    policy = spacing_policy or SpacingPolicy.for_batch(paths, spacing_override, pixel_csv_sizes)
    frames = measure_file_frames(
        files, engine, cancel=cancel, ga_weeks=ga_weeks, spacing_policy=policy
    )
    for position, measured in frames:
        if on_progress is not None:
            on_progress(position, len(files), measured.record)
        yield measured.record
