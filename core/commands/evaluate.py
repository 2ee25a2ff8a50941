"""`hc-studio evaluate DIR`: a model's segmentations and HC against a labelled folder.

Every image of the folder (HC18 layout or `images/` + `masks/`, see `core.dataset`) goes through
the same engine and measurement path as `hc-studio measure`. Per frame:

* dice, iou, hd95_mm, asd_mm: the predicted head mask against the reference mask. The predicted
  mask is what the measurement fits its ellipse to: the largest component of the frame-size
  probability > 0.5, holes filled. `ellipse_dice` compares the rasterised predicted ellipse.
* hc_pred_mm (measured), hc_ref_mm (Ramanujan perimeter of the reference ellipse: for HC18 the
  least-squares fit to the annotation ring, which reproduces the CSV within 0.1 mm), hc_diff_mm
  (pred - ref) and hc_abs_diff_mm.

Summary statistics (mean, population std, median; p95 for hc_abs_diff_mm) are over the frames
where a value exists and is finite; `n` says how many. Frames with no ellipse are listed under
`failures` with the reason; their overlap scores still count (an empty prediction scores 0).
Distances and HC are left out for frames without a calibrated pixel size.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from .common import (
    add_mask_label_argument,
    add_spacing_arguments,
    batch_stopped,
    save_partial,
    say,
    sigterm_as_interrupt,
)

HELP = "compare a model's head segmentations and HC with the annotations of a labelled folder"

EXIT_OK, EXIT_SOME_FAILED = 0, 1
METRICS = ("dice", "iou", "hd95_mm", "asd_mm", "ellipse_dice", "hc_abs_diff_mm", "hc_diff_mm")
WITH_P95 = ("hc_abs_diff_mm",)


@dataclass
class FrameResult:
    """One evaluated frame; None where a value does not exist (no ellipse, no calibration).

    `status` is the measurement's status text ("ok", "review: ...", "error: ..."); `failed` says
    whether the frame gave no head ellipse (it is not a column of the per-frame CSV).
    """

    file: str
    patient: str
    status: str
    pixel_mm: float | None = None
    dice: float | None = None
    iou: float | None = None
    hd95_mm: float | None = None
    asd_mm: float | None = None
    ellipse_dice: float | None = None
    hc_pred_mm: float | None = None
    hc_ref_mm: float | None = None
    hc_diff_mm: float | None = None
    hc_abs_diff_mm: float | None = None
    failed: bool = field(default=False, metadata={"column": False})


PER_FRAME_COLUMNS = [f.name for f in fields(FrameResult) if f.metadata.get("column", True)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder",
        type=Path,
        metavar="DIR",
        help="labelled folder: HC18 (NNN_HC.png + NNN_HC_Annotation.png) or images/ + masks/",
    )
    parser.add_argument(
        "--model",
        type=Path,
        metavar="ONNX",
        help="segmentation model (default: the model installed with HC Studio)",
    )
    add_spacing_arguments(parser)
    add_mask_label_argument(parser)
    parser.add_argument(
        "--json",
        type=Path,
        metavar="OUT",
        help="write the summary as JSON into this file (default: print it on stdout)",
    )
    parser.add_argument(
        "--per-frame",
        type=Path,
        metavar="CSV",
        help="write one CSV row per evaluated frame into this file (default: none)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the model runs; auto uses CUDA when it works, else the CPU "
        "(default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate; 0 when every frame was evaluated, 1 when some failed or were not imported."""
    from ..dataset import import_labelled_folder
    from ..inference import SegmentationEngine
    from ..output_paths import check_outputs, labelled_folder_inputs, partial_path

    model = _model_path(args.model)
    inputs = [*labelled_folder_inputs(args.folder), model]
    inputs += [args.pixel_csv] if args.pixel_csv else []
    partial = partial_path(args.per_frame) if args.per_frame else None
    outputs = {"--json": args.json, "--per-frame": args.per_frame}
    check_outputs({**outputs, "the partial file of --per-frame": partial}, inputs)
    engine = SegmentationEngine(model, device=args.device)
    imported = import_labelled_folder(
        args.folder, args.pixel_csv, args.pixel_size, False, mask_label=args.mask_label
    )
    for line in imported.report_lines():
        say(line)
    if not imported.pairs:
        raise ValueError(f"{args.folder}: no usable image/annotation pairs")
    say(f"evaluating {len(imported.pairs)} frames with {engine.name} ({engine.provider})")
    results: list[FrameResult] = []
    # A stopped evaluation writes no summary; the frames done go beside --per-frame.
    with sigterm_as_interrupt():
        try:
            for position, pair in enumerate(imported.pairs, start=1):
                result = evaluate_pair(pair, engine)
                say(f"[{position}/{len(imported.pairs)}] {_progress_line(result)}")
                results.append(result)
        except (KeyboardInterrupt, Exception) as stop:

            def save(why: str) -> str:
                write = functools.partial(_write_per_frame, results)
                return save_partial("evaluation", len(results), args.per_frame, why, write)

            return batch_stopped(stop, save, getattr(args, "debug", False))
    report = build_report(results, imported.problems, engine.name, str(args.model or ""))
    _write_outputs(report, results, args)
    say(_summary_line(report))
    failed = report["failures"] or report["import_problems"]
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _model_path(model: Path | None) -> Path:
    if model is not None:
        return model
    from ..inference import default_model_path

    found = default_model_path()
    if found is None:
        raise ValueError("no model given and none is installed: pass --model ONNX")
    return found


def evaluate_pair(pair, engine) -> FrameResult:
    """Measure one `LabelledPair` with `engine` and score it against its reference."""
    from ..ellipse import largest_component, rasterize_ellipse
    from ..io import Frame, FrameReadError
    from ..measure import measure_frame
    from ..metrics import dice
    from ..records import Status, status_text

    spacing = pair.spacing
    result = FrameResult(
        file=pair.image_path.name,
        patient=pair.patient,
        status="",
        pixel_mm=spacing.col_mm if spacing.calibrated else None,
    )
    try:
        image, reference = pair.read_image(), pair.read_mask()
        frame = Frame(image, str(pair.image_path), 0, 1, spacing)
        measured = measure_frame(frame, engine)
    except (FrameReadError, OSError, ValueError, ArithmeticError) as error:
        problem = getattr(error, "problem", None) or str(error)
        result.status, result.failed = status_text(Status.ERROR, (problem,)), True
        return result
    record = measured.record
    result.status, result.failed = record.status_text, record.status.is_failure
    predicted = largest_component(measured.prob > 0.5)
    _score_masks(result, predicted, reference, spacing)
    if record.ellipse_px is not None:
        ellipse_mask = rasterize_ellipse(record.ellipse_px, reference.shape)
        result.ellipse_dice = dice(ellipse_mask, reference)
    _score_hc(result, record.hc, pair.ellipse_px, spacing)
    return result


def _score_masks(result: FrameResult, predicted, reference, spacing) -> None:
    from ..metrics import score_masks

    scores = score_masks(predicted, reference, spacing)
    result.dice, result.iou = scores.dice, scores.iou
    if spacing.calibrated:
        result.hd95_mm, result.asd_mm = _finite(scores.hd95), _finite(scores.asd)


def _score_hc(result: FrameResult, hc_pred: float | None, reference_ellipse, spacing) -> None:
    from ..biometry import biometry_from_ellipse
    from ..metrics import hc_difference

    if not spacing.calibrated or reference_ellipse is None:
        return
    result.hc_ref_mm = biometry_from_ellipse(reference_ellipse, spacing).hc
    if hc_pred is not None:
        result.hc_pred_mm = hc_pred
        result.hc_diff_mm, result.hc_abs_diff_mm = hc_difference(hc_pred, result.hc_ref_mm)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def summarise(values: list[float | None], with_p95: bool = False) -> dict[str, float | int | None]:
    """mean, population std, median (and p95) of the finite values; `n` counts them."""
    import numpy as np

    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    keys = ("mean", "std", "median", "p95") if with_p95 else ("mean", "std", "median")
    if finite.size == 0:
        return {"n": 0, **dict.fromkeys(keys)}
    stats = {
        "n": int(finite.size),
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "median": float(np.median(finite)),
    }
    if with_p95:
        stats["p95"] = float(np.percentile(finite, 95))
    return stats


def build_report(results: list[FrameResult], problems, model_name: str, model_path: str) -> dict:
    """The JSON summary (see the module docstring)."""
    report: dict = {"model": model_name, "model_path": model_path, "frames": len(results)}
    for metric in METRICS:
        report[metric] = summarise([getattr(r, metric) for r in results], metric in WITH_P95)
    report["failures"] = [{"file": r.file, "reason": r.status} for r in results if r.failed]
    report["uncalibrated"] = [r.file for r in results if r.pixel_mm is None]
    report["import_problems"] = [
        {"file": problem.path.name, "problem": problem.problem} for problem in problems
    ]
    return report


def _write_outputs(report: dict, results: list[FrameResult], args: argparse.Namespace) -> None:
    from ..atomic import atomic_write

    text = json.dumps(report, indent=2) + "\n"
    if args.json is None:
        print(text, end="")
    else:
        with atomic_write(args.json) as handle:
            handle.write(text)
        say(f"summary written to {args.json}")
    if args.per_frame is not None:
        _write_per_frame(results, args.per_frame)
        say(f"per-frame results written to {args.per_frame}")


def _write_per_frame(results: list[FrameResult], path: Path) -> None:
    from ..atomic import atomic_write
    from ..csv_safety import SafeDictWriter

    with atomic_write(path, newline="") as handle:
        writer = SafeDictWriter(handle, fieldnames=PER_FRAME_COLUMNS)
        writer.writeheader()
        writer.writerows(_csv_row(result) for result in results)


def _csv_row(result: FrameResult) -> dict[str, str]:
    values = {name: getattr(result, name) for name in PER_FRAME_COLUMNS}
    return {
        key: "" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))
        for key, value in values.items()
    }


def _progress_line(result: FrameResult) -> str:
    from ..records import Status

    parts = [result.file]
    if result.dice is not None:
        parts.append(f"dice {result.dice:.3f}")
    if result.hc_diff_mm is not None:
        parts.append(f"HC diff {result.hc_diff_mm:+.2f} mm")
    if result.status != Status.OK:
        parts.append(result.status)
    return ", ".join(parts)


def _summary_line(report: dict) -> str:
    def fmt(metric: str, digits: int) -> str:
        stats = report[metric]
        if stats["mean"] is None:
            return f"{metric} -"
        return f"{metric} {stats['mean']:.{digits}f} +- {stats['std']:.{digits}f}"

    return (
        f"{report['frames']} frames: {fmt('dice', 4)}, {fmt('hd95_mm', 2)}, "
        f"{fmt('hc_abs_diff_mm', 2)}; {len(report['failures'])} without a head ellipse, "
        f"{len(report['import_problems'])} not imported"
    )
