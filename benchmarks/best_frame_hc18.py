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
whether the suggested frame is an undegraded one. Every clip is ranked twice: with the
image-quality term (`rank_clip(..., quality=...)`, what `hc-studio measure --best-frame` and the
app do) and without it (the ranking before that term, kept to compare). Writes a JSON summary;
prints one line per kind and ranking.

`--samples DIR` instead prints the synthetic clip of every sample frame, and `--readme-cine
SAMPLE` the README's cine (`core.phantom_dicom.probe_sweep`: a probe sweep over one frame, the
outer frames shifted, rotated, blurred and darker), per frame, under both rankings.
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
from hc_studio.core.best_frame import ClipRanking, rank_clip
from hc_studio.core.inference import SegmentationEngine, default_model_path
from hc_studio.core.io import Frame, read_grey
from hc_studio.core.measure import measure_frame
from hc_studio.core.phantom_dicom import DEGRADED_VERSIONS, degraded_versions, probe_sweep
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


def print_clip(name: str, versions, records, rankings: dict[str, ClipRanking]) -> None:
    """Per-frame status, HC, quality term and score under both rankings."""
    for kind, ranking in rankings.items():
        best = ranking.best_index
        print(f"{name} ({kind}): suggested {'-' if best is None else versions[best]!r}")
    new, old = rankings["quality"], rankings["no quality"]
    for version, record, score, before in zip(
        versions, records, new.scores, old.scores, strict=True
    ):
        value = "-" if score.score is None else f"{score.score:.3f}"
        was = "-" if before.score is None else f"{before.score:.3f}"
        quality = "-" if score.quality_term is None else f"{score.quality_term:.2f}"
        hc = "-" if record.hc is None else f"{record.hc:.1f}"
        print(
            f"  {version:12s} score {value:6s} (no quality {was:6s}) quality {quality:4s} "
            f"conf {record.confidence or 0:.3f} fit {record.fit_iou or 0:.3f} HC {hc:6s} "
            f"{record.status}"
        )


def print_synthetic(engine, samples: Path) -> None:
    """The synthetic clip of every sample frame, frame by frame."""
    with (samples / "pixel_size.csv").open(newline="") as handle:
        sizes = {row["filename"]: float(row["pixel size(mm)"]) for row in csv.DictReader(handle)}
    for name, pixel_mm in sizes.items():
        frames = degraded_versions(read_grey(samples / name))
        spacing = Spacing.square(pixel_mm, "csv")
        records, rankings = measure_clip(engine, frames, [spacing] * len(frames), name)
        print_clip(name, DEGRADED_VERSIONS, records, rankings)


def print_readme_cine(engine, sample: Path, pixel_mm: float) -> None:
    """The README's cine (`core.phantom_dicom.probe_sweep`), frame by frame."""
    image = cv2.imread(str(sample), cv2.IMREAD_GRAYSCALE)
    frames = [f.astype(np.float32) / 255.0 for f in probe_sweep(image)]
    spacing = Spacing.square(pixel_mm, "user")
    records, rankings = measure_clip(engine, frames, [spacing] * len(frames), sample.name)
    versions = [f"frame {i}" for i in range(len(frames))]
    print_clip(f"README cine of {sample.name}", versions, records, rankings)


def measure_clip(engine, frames, spacings, name):
    """The records of a clip and its rankings with and without the image-quality term."""
    measured = [
        measure_frame(Frame(px.astype(np.float32), name, i, len(frames), sp), engine)
        for i, (px, sp) in enumerate(zip(frames, spacings, strict=True))
    ]
    records = [m.record for m in measured]
    quality = {(name, m.record.frame_index): m.quality for m in measured if m.quality}
    rankings = {"quality": rank_clip(records, quality=quality), "no quality": rank_clip(records)}
    return records, rankings


def clip_result(records, ranking, references, degraded: dict[int, str]):
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
        "degraded": {str(i): kind for i, kind in sorted(degraded.items())},
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
    parser.add_argument(
        "--readme-cine",
        type=Path,
        metavar="SAMPLE",
        help="instead: print the README's cine built from this sample frame",
    )
    parser.add_argument(
        "--pixel-mm", type=float, default=0.103654762, help="pixel size for --readme-cine"
    )
    args = parser.parse_args(argv)
    if args.samples is not None or args.readme_cine is not None:
        engine = SegmentationEngine(args.model or default_model_path(), "cpu")
        if args.samples is not None:
            print_synthetic(engine, args.samples)
        if args.readme_cine is not None:
            print_readme_cine(engine, args.readme_cine, args.pixel_mm)
        return 0
    if args.out is None:
        parser.error("--out is required")
    table = args.hc18 / "training_set_pixel_size_and_HC.csv"
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rng = np.random.default_rng(args.seed)
    engine = SegmentationEngine(args.model or default_model_path(), device="cpu")
    kinds = {f"{k} ({r})": [] for k in ("mixed", "pseudo-cine") for r in ("quality", "no quality")}
    for clip in range(args.clips):
        chosen = rng.choice(len(rows), size=args.frames, replace=False)
        degraded = dict.fromkeys(
            rng.choice(args.frames, size=args.degraded, replace=False).tolist()
        )
        frames, spacings, refs = [], [], []
        for position, row_index in enumerate(chosen):
            row = rows[row_index]
            grey = read_grey(args.hc18 / "training_set" / row["filename"])
            if position in degraded:
                degraded[position] = str(rng.choice(DEGRADATIONS))
                grey = degrade(grey, degraded[position], rng)
            frames.append(grey)
            spacings.append(Spacing.square(float(row["pixel size(mm)"]), "csv"))
            refs.append(float(row["head circumference (mm)"]))
        records, rankings = measure_clip(engine, frames, spacings, f"mixed{clip}")
        for how, ranking in rankings.items():
            kinds[f"mixed ({how})"].append(clip_result(records, ranking, refs, degraded))

        row = rows[int(rng.integers(len(rows)))]
        grey = read_grey(args.hc18 / "training_set" / row["filename"])
        positions = rng.choice(args.cine_frames, size=args.degraded, replace=False).tolist()
        degraded = dict.fromkeys(positions)
        frames = [drift(grey, step) for step in range(args.cine_frames)]
        for i in range(args.cine_frames):  # in frame order, as the random draws always were
            if i in degraded:
                degraded[i] = str(rng.choice(DEGRADATIONS))
                frames[i] = degrade(frames[i], degraded[i], rng)
        spacing = Spacing.square(float(row["pixel size(mm)"]), "csv")
        refs = [float(row["head circumference (mm)"])] * args.cine_frames
        records, rankings = measure_clip(engine, frames, [spacing] * len(frames), f"cine{clip}")
        for how, ranking in rankings.items():
            kinds[f"pseudo-cine ({how})"].append(clip_result(records, ranking, refs, degraded))
        print(f"clip {clip + 1}/{args.clips}", file=sys.stderr)
    summary = {kind: summarise(results) for kind, results in kinds.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "clips": kinds}, indent=1))
    for kind, figures in summary.items():
        print(kind, json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
