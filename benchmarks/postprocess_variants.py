"""Measure the post-processing variants of docs/benchmarks.md on validation frames.

One network output per frame (and a second one, of the mirrored frame, for the flip), then HC
from the ellipse fitted as `hc-studio measure` fits it, for each variant:

    threshold-0.50   the shipped path (probability > 0.5)
    threshold-0.45   the ellipse of the 0.45 iso-contour
    threshold-0.55   the 0.55 iso-contour
    flip-tta         mean of the frame's and the mirrored frame's probabilities (two network calls)

For each: mean / median / 95th percentile |HC error| and bias with 95 % patient-bootstrap
intervals, and the paired difference to threshold-0.50. Variants are choices, so this runs on the
protocol's validation side (default), never to choose on test.

    python benchmarks/postprocess_variants.py HC18_DIR/training_set --model models/X.onnx \\
        --split docs/results/protocol_split.json --json docs/results/postprocess_variants.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from hc_studio.core.atomic import atomic_write
from protocol_eval import (
    BOOTSTRAP_DRAWS,
    BOOTSTRAP_SEED,
    STATISTICS,
    FrameScore,
    bootstrap,
    load_pairs,
    patient_draws,
    split_frames,
)

BASELINE = "threshold-0.50"
REPORTED = ("hc_abs_mean_mm", "hc_abs_median_mm", "hc_abs_p95_mm", "bias_mm")


def variant_maps(engine, pixels: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
    """{variant: (network-resolution probability, threshold)} for one frame."""
    prediction = engine.predict(pixels)
    mirrored = engine.predict(np.ascontiguousarray(pixels[:, ::-1])).prob[:, ::-1]
    flip_mean = (prediction.prob + mirrored) / 2
    return {
        BASELINE: (prediction.prob, 0.5),
        "threshold-0.45": (prediction.prob, 0.45),
        "threshold-0.55": (prediction.prob, 0.55),
        "flip-tta": (flip_mean, 0.5),
    }


def score_variants(engine, pair) -> dict[str, FrameScore]:
    from hc_studio.core.biometry import biometry_from_ellipse
    from hc_studio.core.ellipse import ellipse_from_probability

    spacing, pixels = pair.spacing, pair.read_image()
    reference = biometry_from_ellipse(pair.ellipse_px, spacing).hc
    scores = {}
    for name, (prob, threshold) in variant_maps(engine, pixels).items():
        fit = ellipse_from_probability(prob, pixels.shape, threshold, spacing)
        frame = FrameScore(pair.image_path.name, pair.patient, spacing.col_mm, "ok")
        if fit is not None:
            frame.hc_ref_mm = reference
            frame.hc_pred_mm = biometry_from_ellipse(fit.ellipse_px, spacing).hc
            frame.hc_diff_mm = frame.hc_pred_mm - reference
        scores[name] = frame
    return scores


def main(argv: list[str] | None = None) -> int:
    from hc_studio.core.inference import SegmentationEngine

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="HC18 training_set")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True, help="protocol_split.json")
    parser.add_argument("--side", default="validation", choices=("validation", "test"))
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    pairs = load_pairs(args.data_dir, split_frames(args.split, args.side))
    engine = SegmentationEngine(args.model, device="cpu")
    by_variant: dict[str, list[FrameScore]] = {}
    for pair in pairs:
        for name, frame in score_variants(engine, pair).items():
            by_variant.setdefault(name, []).append(frame)
    draws = patient_draws([p.patient for p in pairs], BOOTSTRAP_DRAWS, BOOTSTRAP_SEED)
    baseline = by_variant[BASELINE]
    report: dict = {"model": args.model.name, "side": args.side, "frames": len(pairs)}
    for name, frames in by_variant.items():
        report[name] = {
            "no_ellipse": sum(f.hc_diff_mm is None for f in frames),
            **{s: bootstrap(frames, STATISTICS[s], draws) for s in REPORTED},
        }
        if name != BASELINE:
            report[name]["difference_vs_" + BASELINE] = {
                s: bootstrap(frames, STATISTICS[s], draws, baseline) for s in REPORTED
            }
    with atomic_write(args.json) as handle:
        handle.write(json.dumps(report, indent=1) + "\n")
    for name in by_variant:
        mean = report[name]["hc_abs_mean_mm"]
        print(
            f"{name}: mean |HC error| {mean['value']:.2f} mm, bias "
            f"{report[name]['bias_mm']['value']:+.2f} mm"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
