"""Does the best-frame ranking pick sensible frames on real HC18 frames?

Reproduces the figures of docs/best_frame.md. Two kinds of clips are built in memory from
HC18 training frames (their reference HC from the pixel-size CSV) and measured with a model:

* mixed: `--frames` different frames, `--degraded` of them degraded (noise, blur, low contrast
  or a shift that pushes the head half out of view); a clip of different heads, so stability
  says little and the score rests on confidence and fit;
* pseudo-cine: one frame seen through a slow probe drift (a shift and a rotation growing by a
  step per frame), `--degraded` frames of it degraded at random positions.

For each clip: the HC error (mm, against the reference) of the suggested frame, the mean error
over the clip's measured frames (what an arbitrary measured frame gives), the smallest error in
the clip (an oracle), the mean error over its undegraded frames (an arbitrary good frame), and
whether the suggested frame is an undegraded one. Writes a JSON
summary; prints one line per kind.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np
from hc_studio.core.best_frame import rank_clip
from hc_studio.core.inference import SegmentationEngine, default_model_path
from hc_studio.core.io import Frame, read_grey
from hc_studio.core.measure import measure_frame
from hc_studio.core.spacing import Spacing

DEGRADATIONS = ("noise", "blur", "low contrast", "shift")


def degrade(grey: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    h, w = grey.shape
    if kind == "noise":
        return np.clip(grey + rng.normal(0, 0.3, grey.shape), 0, 1)
    if kind == "blur":
        return cv2.GaussianBlur(grey, (0, 0), 8)
    if kind == "low contrast":
        return 0.45 + 0.1 * grey
    shift = np.float32([[1, 0, 0.4 * w * rng.choice([-1, 1])], [0, 1, 0.3 * h]])
    return cv2.warpAffine(grey, shift, (w, h))


def drift(grey: np.ndarray, step: int) -> np.ndarray:
    """The frame after `step` steps of probe drift: 6 px shift and 2 degrees per step."""
    h, w = grey.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 2.0 * step, 1.0)
    matrix[:, 2] += (6.0 * step, 3.0 * step)
    return cv2.warpAffine(grey, matrix, (w, h))


SYNTHETIC = ("noise", "blur", "low contrast", "shifted", "good", "rotated 10", "rotated -20")


def synthetic_clip(grey: np.ndarray) -> list[np.ndarray]:
    """The synthetic clip of tests/core/test_cli_dicom_outputs.py: the frame (position 4) among
    degraded, shifted and rotated versions of it, named in SYNTHETIC."""
    h, w = grey.shape
    rng = np.random.default_rng(0)

    def rotated(degrees: float) -> np.ndarray:
        return cv2.warpAffine(grey, cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1), (w, h))

    shift = np.float32([[1, 0, 0.35 * w], [0, 1, 0.25 * h]])
    return [
        np.clip(grey + rng.normal(0, 0.3, grey.shape), 0, 1),
        cv2.GaussianBlur(grey, (0, 0), 8),
        0.45 + 0.1 * grey,
        cv2.warpAffine(grey, shift, (w, h)),
        grey,
        rotated(10),
        rotated(-20),
    ]


def print_synthetic(engine, samples: Path) -> None:
    """Per-frame status, HC and score of the synthetic clip of every sample frame."""
    with (samples / "pixel_size.csv").open(newline="") as handle:
        sizes = {row["filename"]: float(row["pixel size(mm)"]) for row in csv.DictReader(handle)}
    for name, pixel_mm in sizes.items():
        frames = synthetic_clip(read_grey(samples / name))
        spacing = Spacing.square(pixel_mm, "csv")
        records, ranking = measure_clip(engine, frames, [spacing] * len(frames), name)
        print(f"{name}: suggested {SYNTHETIC[ranking.best_index]!r}")
        for version, record, score in zip(SYNTHETIC, records, ranking.scores, strict=True):
            value = "-" if score.score is None else f"{score.score:.3f}"
            hc = "-" if record.hc is None else f"{record.hc:.1f}"
            print(f"  {version:12s} score {value:6s} HC {hc:6s} {record.status}")


def measure_clip(engine, frames, spacings, name):
    records = [
        measure_frame(Frame(px.astype(np.float32), name, i, len(frames), sp), engine).record
        for i, (px, sp) in enumerate(zip(frames, spacings, strict=True))
    ]
    return records, rank_clip(records)


def clip_result(records, ranking, references, degraded):
    errors = {
        r.frame_index: abs(r.hc - references[r.frame_index])
        for r in records
        if r.hc is not None and r.ellipse_px is not None
    }
    best = ranking.best_index
    clean = [e for i, e in errors.items() if i not in degraded]
    return {
        "frame_errors_mm": {str(i): round(e, 3) for i, e in errors.items()},
        "undegraded_mean_error_mm": statistics.fmean(clean) if clean else None,
        "suggested": best,
        "suggested_error_mm": None if best is None else errors.get(best),
        "mean_error_mm": statistics.fmean(errors.values()) if errors else None,
        "oracle_error_mm": min(errors.values()) if errors else None,
        "suggested_undegraded": best is not None and best not in degraded,
        "degraded": sorted(degraded),
        "statuses": [str(r.status) for r in records],
    }


def summarise(results):
    picked = [r for r in results if r["suggested_error_mm"] is not None]

    def median(key):
        values = [r[key] for r in results if r[key] is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "clips": len(results),
        "suggested_undegraded": sum(r["suggested_undegraded"] for r in results),
        "no_suggestion": sum(r["suggested"] is None for r in results),
        "median_suggested_error_mm": median("suggested_error_mm"),
        "median_mean_error_mm": median("mean_error_mm"),
        "median_undegraded_mean_error_mm": median("undegraded_mean_error_mm"),
        "median_oracle_error_mm": median("oracle_error_mm"),
        "suggested_within_1mm_of_oracle": sum(
            r["suggested_error_mm"] - r["oracle_error_mm"] <= 1.0 for r in picked
        ),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("hc18", type=Path, help="the HC18 folder (training_set/ and its CSV)")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the shipped one)")
    parser.add_argument("--clips", type=int, default=20, help="clips of each kind (20)")
    parser.add_argument("--frames", type=int, default=6, help="frames per mixed clip (6)")
    parser.add_argument("--cine-frames", type=int, default=9, help="frames per pseudo-cine (9)")
    parser.add_argument("--degraded", type=int, default=3, help="degraded frames per clip (3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON summary (needed unless --samples)")
    parser.add_argument(
        "--samples", type=Path, help="instead: print the synthetic clips of these sample frames"
    )
    args = parser.parse_args(argv)
    if args.samples is not None:
        print_synthetic(SegmentationEngine(args.model or default_model_path(), "cpu"), args.samples)
        return 0
    if args.out is None:
        parser.error("--out is required")
    table = args.hc18 / "training_set_pixel_size_and_HC.csv"
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rng = np.random.default_rng(args.seed)
    engine = SegmentationEngine(args.model or default_model_path(), device="cpu")
    kinds = {"mixed": [], "pseudo-cine": []}
    for clip in range(args.clips):
        chosen = rng.choice(len(rows), size=args.frames, replace=False)
        degraded = set(rng.choice(args.frames, size=args.degraded, replace=False).tolist())
        frames, spacings, refs = [], [], []
        for position, row_index in enumerate(chosen):
            row = rows[row_index]
            grey = read_grey(args.hc18 / "training_set" / row["filename"])
            if position in degraded:
                grey = degrade(grey, str(rng.choice(DEGRADATIONS)), rng)
            frames.append(grey)
            spacings.append(Spacing.square(float(row["pixel size(mm)"]), "csv"))
            refs.append(float(row["head circumference (mm)"]))
        records, ranking = measure_clip(engine, frames, spacings, f"mixed{clip}")
        kinds["mixed"].append(clip_result(records, ranking, refs, degraded))

        row = rows[int(rng.integers(len(rows)))]
        grey = read_grey(args.hc18 / "training_set" / row["filename"])
        degraded = set(rng.choice(args.cine_frames, size=args.degraded, replace=False).tolist())
        frames = [drift(grey, step) for step in range(args.cine_frames)]
        frames = [
            degrade(f, str(rng.choice(DEGRADATIONS)), rng) if i in degraded else f
            for i, f in enumerate(frames)
        ]
        spacing = Spacing.square(float(row["pixel size(mm)"]), "csv")
        refs = [float(row["head circumference (mm)"])] * args.cine_frames
        records, ranking = measure_clip(engine, frames, [spacing] * len(frames), f"cine{clip}")
        kinds["pseudo-cine"].append(clip_result(records, ranking, refs, degraded))
        print(f"clip {clip + 1}/{args.clips}", file=sys.stderr)
    summary = {kind: summarise(results) for kind, results in kinds.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "clips": kinds}, indent=1))
    for kind, figures in summary.items():
        print(kind, json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
