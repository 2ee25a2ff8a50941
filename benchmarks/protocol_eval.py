"""Score models on one side of the protocol split, with patient-bootstrap intervals.

Each frame goes through `hc_studio.core.measure.measure_frame`, the path of `hc-studio measure`
and `hc-studio evaluate`, at full resolution; the scores are those of `hc-studio evaluate`
(Dice and HD95 of the largest probability component, holes filled; HC of the fitted ellipse
against the Ramanujan perimeter of the reference ellipse). Per model the summary holds:

- Dice, HD95, mean / median / 95th percentile |HC error|, bias (mean signed error) and the
  Bland-Altman limits (bias +- 1.96 SD), each with a 95 % bootstrap interval that resamples
  patients (a patient's frames stay together, so two frames of one head do not count twice);
- mean |HC error| by pixel-size tercile (cut points from the scored frames);
- the review flag: the current thresholds' catch of frames over 5 mm and the share flagged,
  and, with `--thresholds` (from `choose_review_thresholds.py`), the same for those. The flag
  has up to three thresholds: fit IoU below, border confidence below and, for a model with a
  refining second pass, the pass disagreement above (relative HC difference between the two
  passes, `MeasurementRecord.pass_disagreement`: two passes that disagree point at a doubtful
  border that fit IoU and confidence can miss). A thresholds JSON without a disagreement
  threshold (older, or a model without a second pass) flags on the first two only.

With `--baseline`, the baseline is scored on the same frames and every figure gets a paired
bootstrap interval of the difference (candidate - baseline, same patient draws). The difference
is taken over the frames where BOTH models have the value (`common_frames`): a frame one model
refuses (no HC: no head found, or not a fetal head) would otherwise leave one mean and not the
other, and a model that refuses its hardest frames would look better by refusing them. Each
model's own figures keep all of its frames, and `common` says how many frames the differences
rest on.

    python benchmarks/protocol_eval.py DATA_DIR --split docs/results/protocol_split.json \\
        --side test --model NEW.onnx --baseline models/hc_head_ersr_v3.onnx --json OUT.json

DATA_DIR is the HC18 `training_set` (full resolution); its CSV is found beside it.
`--per-frame OUT.csv` writes every frame's values (model, frame, ..., pass_disagreement); a
per-frame CSV written before that column existed still reads (no disagreement).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from hc_studio.core.atomic import atomic_write
from hc_studio.core.csv_safety import SafeDictWriter

BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 0
LARGE_ERROR_MM = 5.0  # the frames the review flag must catch (issue's goal)
CURRENT_FIT_IOU, CURRENT_CONFIDENCE = 0.90, 0.85  # core.measure's REVIEW_* at the time of writing
CURRENT_PASS_DISAGREEMENT = 0.10  # core.measure's REVIEW_PASS_DISAGREEMENT at the time of writing


@dataclass
class FrameScore:
    """One frame scored; None where a value does not exist (no ellipse, no calibration)."""

    file: str
    patient: str
    pixel_mm: float | None
    status: str
    dice: float | None = None
    hd95_mm: float | None = None
    hc_pred_mm: float | None = None
    hc_ref_mm: float | None = None
    hc_diff_mm: float | None = None
    fit_iou: float | None = None
    confidence: float | None = None
    # Relative HC difference between the first and the refining pass; None without a second pass.
    pass_disagreement: float | None = None

    @property
    def hc_abs_mm(self) -> float | None:
        return None if self.hc_diff_mm is None else abs(self.hc_diff_mm)

    @property
    def flagged_now(self) -> bool:
        """Flagged by the measurement itself (review status, or no head)."""
        return self.hc_diff_mm is None or "review" in self.status.lower()


def score_frame(pair, engine) -> FrameScore:
    """`pair` (a core.dataset LabelledPair) measured with `engine` and scored as `evaluate` does."""
    from hc_studio.core.biometry import biometry_from_ellipse
    from hc_studio.core.ellipse import largest_component
    from hc_studio.core.io import Frame
    from hc_studio.core.measure import measure_frame
    from hc_studio.core.metrics import score_masks

    spacing = pair.spacing
    image, reference = pair.read_image(), pair.read_mask()
    measured = measure_frame(Frame(image, str(pair.image_path), 0, 1, spacing), engine)
    record = measured.record
    scores = score_masks(largest_component(measured.prob > 0.5), reference, spacing)
    result = FrameScore(
        file=pair.image_path.name,
        patient=pair.patient,
        pixel_mm=spacing.col_mm if spacing.calibrated else None,
        status=str(getattr(record.status, "value", record.status)),
        dice=float(scores.dice),
        hd95_mm=float(scores.hd95) if math.isfinite(scores.hd95) else None,
        fit_iou=record.fit_iou,
        confidence=record.confidence,
        pass_disagreement=record.pass_disagreement,
    )
    if spacing.calibrated and pair.ellipse_px is not None:
        result.hc_ref_mm = biometry_from_ellipse(pair.ellipse_px, spacing).hc
        if record.hc is not None:
            result.hc_pred_mm = float(record.hc)
            result.hc_diff_mm = result.hc_pred_mm - result.hc_ref_mm
    return result


def split_frames(split_path: Path, side: str) -> list[str]:
    """The frame names of `side` in the recorded protocol split."""
    split = json.loads(split_path.read_text())
    if side not in split:
        raise ValueError(f"{split_path.name}: no side {side!r} (has {', '.join(split)})")
    return list(split[side]["frames"])


def load_pairs(data_dir: Path, names: Sequence[str]) -> list:
    """The labelled pairs of `names` in `data_dir` (HC18 layout, CSV beside it), in that order."""
    from hc_studio.core.dataset import import_labelled_folder

    imported = import_labelled_folder(data_dir, None, None, False)
    by_name = {pair.image_path.name: pair for pair in imported.pairs}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(f"{data_dir}: {len(missing)} split frames not usable ({missing[:3]})")
    return [by_name[name] for name in names]


def score_model(model: Path, pairs: Sequence, progress: bool = True) -> list[FrameScore]:
    from hc_studio.core.inference import SegmentationEngine

    engine = SegmentationEngine(model, device="cpu")
    results = []
    for position, pair in enumerate(pairs, start=1):
        results.append(score_frame(pair, engine))
        if progress and position % 20 == 0:
            print(f"{model.name}: {position}/{len(pairs)}", file=sys.stderr)
    return results


# ------------------------------------------------------------------ statistics


def _values(frames: Sequence[FrameScore], metric: str) -> np.ndarray:
    values = [getattr(frame, metric) for frame in frames]
    return np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def _mean(metric: str) -> Callable[[Sequence[FrameScore]], float]:
    return lambda frames: float(np.mean(_values(frames, metric)))


def _percentile(metric: str, q: float) -> Callable[[Sequence[FrameScore]], float]:
    return lambda frames: float(np.percentile(_values(frames, metric), q))


def _limit(sign: float) -> Callable[[Sequence[FrameScore]], float]:
    def limit(frames: Sequence[FrameScore]) -> float:
        diffs = _values(frames, "hc_diff_mm")
        return float(diffs.mean() + sign * 1.96 * diffs.std(ddof=1))

    return limit


STATISTICS: dict[str, Callable[[Sequence[FrameScore]], float]] = {
    "dice": _mean("dice"),
    "hd95_mm": _mean("hd95_mm"),
    "hc_abs_mean_mm": _mean("hc_abs_mm"),
    "hc_abs_median_mm": _percentile("hc_abs_mm", 50),
    "hc_abs_p95_mm": _percentile("hc_abs_mm", 95),
    "bias_mm": _mean("hc_diff_mm"),
    "loa_low_mm": _limit(-1.0),
    "loa_high_mm": _limit(+1.0),
}


def patient_draws(patients: Sequence[str], draws: int, seed: int) -> list[np.ndarray]:
    """`draws` bootstrap resamples of the patients (indices into the sorted unique list)."""
    count = len(sorted(set(patients)))
    rng = np.random.default_rng(seed)
    return [rng.integers(0, count, count) for _ in range(draws)]


def _resample(frames: Sequence[FrameScore], draw: np.ndarray, order: list[str]) -> list:
    by_patient: dict[str, list[FrameScore]] = {}
    for frame in frames:
        by_patient.setdefault(frame.patient, []).append(frame)
    return [frame for index in draw for frame in by_patient[order[index]]]


def bootstrap(
    frames: Sequence[FrameScore],
    statistic: Callable[[Sequence[FrameScore]], float],
    draws: list[np.ndarray],
    baseline: Sequence[FrameScore] | None = None,
) -> dict[str, float]:
    """{"value", "low", "high"}: the statistic and its 95 % percentile interval over patient
    resamples; with `baseline` (same frames, same order), of the difference frames - baseline."""
    order = sorted({frame.patient for frame in frames})

    def value(sample: Sequence[FrameScore], base: Sequence[FrameScore] | None) -> float:
        return statistic(sample) - (statistic(base) if base is not None else 0.0)

    point = value(frames, baseline)
    samples = [
        value(
            _resample(frames, draw, order),
            _resample(baseline, draw, order) if baseline is not None else None,
        )
        for draw in draws
    ]
    low, high = np.percentile(samples, [2.5, 97.5])
    return {"value": point, "low": float(low), "high": float(high)}


def print_intervals(statistics: dict[str, dict[str, float]], width: int = 22) -> None:
    """One line per statistic of `bootstrap` results: name, value [low, high]."""
    for name, value in statistics.items():
        print(f"{name:{width}s} {value['value']:8.3f}  [{value['low']:.3f}, {value['high']:.3f}]")


def write_summary(path: Path, summary: dict) -> None:
    """A summary as indented JSON, written atomically."""
    with atomic_write(path) as handle:
        json.dump(summary, handle, indent=1)
        handle.write("\n")


def tercile_edges(frames: Sequence[FrameScore]) -> list[float]:
    """The pixel sizes that cut the frames into three equal groups."""
    sizes = _values(frames, "pixel_mm")
    return [float(x) for x in np.percentile(sizes, [100 / 3, 200 / 3])]


def by_tercile(frames: Sequence[FrameScore], edges: Sequence[float], draws_seed: int) -> list:
    rows = []
    bounds = [-math.inf, *edges, math.inf]
    for low, high in zip(bounds[:-1], bounds[1:], strict=True):
        group = [f for f in frames if f.pixel_mm is not None and low < f.pixel_mm <= high]
        draws = patient_draws([f.patient for f in group], BOOTSTRAP_DRAWS // 4, draws_seed)
        rows.append(
            {
                "pixel_mm_range": [_finite_or_none(low), _finite_or_none(high)],
                "frames": len(group),
                "hc_abs_mean_mm": bootstrap(group, STATISTICS["hc_abs_mean_mm"], draws),
            }
        )
    return rows


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def flag_rates(frames: Sequence[FrameScore], flagged: Callable[[FrameScore], bool]) -> dict:
    """Share of frames flagged, and of the frames over LARGE_ERROR_MM how many are flagged.

    A frame without an ellipse counts as a large error that is flagged (it gives no number)."""
    large = [f for f in frames if f.hc_abs_mm is None or f.hc_abs_mm > LARGE_ERROR_MM]
    return {
        "frames": len(frames),
        "flagged": sum(flagged(f) for f in frames),
        "flagged_share": sum(flagged(f) for f in frames) / max(len(frames), 1),
        "large_errors": len(large),
        "large_errors_caught": sum(flagged(f) for f in large),
        "catch_rate": sum(flagged(f) for f in large) / len(large) if large else None,
        "threshold_mm": LARGE_ERROR_MM,
    }


def threshold_flag(
    fit_iou: float, confidence: float, pass_disagreement: float | None = None
) -> Callable[[FrameScore], bool]:
    """The review rule: fit IoU below `fit_iou`, confidence below `confidence` or (when given) a
    pass disagreement above `pass_disagreement`; a frame without an ellipse is always flagged, a
    frame without a disagreement (no second pass) is judged on the first two."""

    def flagged(frame: FrameScore) -> bool:
        if frame.hc_diff_mm is None or frame.fit_iou is None or frame.confidence is None:
            return True
        if frame.fit_iou < fit_iou or frame.confidence < confidence:
            return True
        disagreement = frame.pass_disagreement
        return (
            pass_disagreement is not None
            and disagreement is not None
            and disagreement > pass_disagreement
        )

    return flagged


def summarise(
    frames: Sequence[FrameScore],
    baseline: Sequence[FrameScore] | None = None,
    thresholds: dict | None = None,
    edges: Sequence[float] | None = None,
) -> dict:
    draws = patient_draws([f.patient for f in frames], BOOTSTRAP_DRAWS, BOOTSTRAP_SEED)
    summary: dict = {
        "frames": len(frames),
        "patients": len({f.patient for f in frames}),
        "no_ellipse": sum(f.hc_diff_mm is None for f in frames),
        "statistics": {n: bootstrap(frames, s, draws) for n, s in STATISTICS.items()},
        "by_pixel_tercile": by_tercile(frames, edges or tercile_edges(frames), BOOTSTRAP_SEED),
        "review_current": flag_rates(frames, lambda f: f.flagged_now),
    }
    if thresholds:
        rule = threshold_flag(
            thresholds["fit_iou"], thresholds["confidence"], thresholds.get("pass_disagreement")
        )
        summary["review_chosen"] = {"thresholds": thresholds, **flag_rates(frames, rule)}
    if baseline is not None:
        paired, paired_baseline = common_frames(frames, baseline)
        summary["difference_vs_baseline"] = {
            n: bootstrap(paired, s, draws, paired_baseline) for n, s in STATISTICS.items()
        }
        summary["common"] = {
            "hc": sum(f.hc_diff_mm is not None for f in paired),
            "dice": sum(f.dice is not None for f in paired),
            "hd95": sum(f.hd95_mm is not None for f in paired),
        }
    return summary


# Values that exist together or not at all: a refused frame has no HC, and no difference.
_PAIRED_FIELDS = (("hc_diff_mm", "hc_pred_mm"), ("dice",), ("hd95_mm",))


def common_frames(
    frames: Sequence[FrameScore], baseline: Sequence[FrameScore]
) -> tuple[list[FrameScore], list[FrameScore]]:
    """Copies of both lists (the same frames in the same order) with each value kept only where
    both models have it: a paired difference then compares the two models on the same frames.

    Raises ValueError when the lists do not hold the same frames in the same order.
    """
    if [f.file for f in frames] != [f.file for f in baseline]:
        raise ValueError("the candidate and the baseline were not scored on the same frames")
    paired, paired_baseline = [], []
    for own, other in zip(frames, baseline, strict=True):
        own_missing, other_missing = {}, {}
        for group in _PAIRED_FIELDS:
            lead = group[0]
            if getattr(own, lead) is None or getattr(other, lead) is None:
                cleared = dict.fromkeys(group)
                own_missing.update(cleared)
                other_missing.update(cleared)
        paired.append(replace(own, **own_missing))
        paired_baseline.append(replace(other, **other_missing))
    return paired, paired_baseline


def write_per_frame(path: Path, scored: dict[str, list[FrameScore]]) -> None:
    fields = ["model", *asdict(next(iter(scored.values()))[0])]
    with atomic_write(path, newline="") as handle:
        writer = SafeDictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for model, frames in scored.items():
            for frame in frames:
                writer.writerow({"model": model, **asdict(frame)})


def read_per_frame(path: Path) -> dict[str, list[FrameScore]]:
    """The per-frame CSV written by `write_per_frame`, by model. A column missing from an older
    CSV (pass_disagreement) is left at its default, None."""
    floats = {"pixel_mm", "dice", "hd95_mm", "hc_pred_mm", "hc_ref_mm", "hc_diff_mm"}
    floats |= {"fit_iou", "confidence", "pass_disagreement"}  # a CSV may lack the last (older)
    scored: dict[str, list[FrameScore]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            model = row.pop("model")
            values = {k: (float(v) if v else None) if k in floats else v for k, v in row.items()}
            scored.setdefault(model, []).append(FrameScore(**values))
    return scored


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="HC18 training_set")
    parser.add_argument("--split", type=Path, required=True, help="protocol_split.json")
    parser.add_argument(
        "--side",
        default="test",
        choices=("validation", "test", "train"),
        help="the frames to score; train: how closely a model fits the frames that trained it "
        "(a diagnostic of under- or overfitting, never a test)",
    )
    parser.add_argument("--model", type=Path, required=True, help="the candidate ONNX model")
    parser.add_argument("--baseline", type=Path, help="ONNX model scored beside it")
    parser.add_argument("--thresholds", type=Path, help="review thresholds JSON to report")
    parser.add_argument("--json", type=Path, required=True, help="write the summary here")
    parser.add_argument("--per-frame", type=Path, help="write every frame's values here (CSV)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        names = split_frames(args.split, args.side)
        pairs = load_pairs(args.data_dir, names)
        thresholds = json.loads(args.thresholds.read_text())["chosen"] if args.thresholds else None
    except (OSError, ValueError, KeyError) as error:
        print(f"protocol_eval: {error}", file=sys.stderr)
        return 2
    scored = {args.model.name: score_model(args.model, pairs)}
    baseline = None
    if args.baseline is not None:
        baseline = score_model(args.baseline, pairs)
        scored[f"baseline:{args.baseline.name}"] = baseline
    candidate = scored[args.model.name]
    report = {
        "side": args.side,
        "split": args.split.name,
        "model": args.model.name,  # names only: the report must not carry this machine's paths
        "baseline": args.baseline.name if args.baseline else None,
        "bootstrap": {"draws": BOOTSTRAP_DRAWS, "seed": BOOTSTRAP_SEED, "unit": "patient"},
        "candidate": summarise(candidate, baseline, thresholds),
    }
    if baseline is not None:
        report["baseline_summary"] = summarise(baseline, None, thresholds)
    with atomic_write(args.json) as handle:
        handle.write(json.dumps(report, indent=1) + "\n")
    if args.per_frame:
        write_per_frame(args.per_frame, scored)
    stats = report["candidate"]["statistics"]
    print(
        f"{args.side}: {len(candidate)} frames, Dice {stats['dice']['value']:.4f}, "
        f"mean |HC error| {stats['hc_abs_mean_mm']['value']:.2f} mm "
        f"[{stats['hc_abs_mean_mm']['low']:.2f}, {stats['hc_abs_mean_mm']['high']:.2f}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
