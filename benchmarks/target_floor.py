"""How much HC error the training targets themselves carry, and how closely a model could fit.

The trainer turns each reference ellipse into a binary mask at the network's input size
(`core.training.data.target_mask`). A network whose output were exactly that mask, read the way
`hc-studio measure` reads a probability map (sub-pixel 0.5 iso-contour, least-squares ellipse,
mapped back to the frame), would measure the frame's HC with this script's "binary" error; the
"soft" row is the same for the mask's area coverage at that size (what a soft target would
ask for). Together they say whether the targets' pixel grid limits a model: a floor far below a
model's error on its own training frames (`protocol_eval.py --side train`) means the grid does
not explain that error.

    python benchmarks/target_floor.py HC18_DIR/training_set \\
        --split docs/results/protocol_split.json --side train --image-size 224 320 \\
        --json docs/results/target_floor.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from hc_studio.core.atomic import atomic_write
from hc_studio.core.biometry import biometry_from_ellipse
from hc_studio.core.ellipse import ellipse_from_probability, rasterize_ellipse
from hc_studio.core.training.data import target_mask
from protocol_eval import load_pairs, split_frames

TARGETS = ("binary", "soft")


def frame_errors(pair, size: tuple[int, int]) -> dict[str, float] | None:
    """HC error (mm) of each target kind of one labelled pair, or None when the pair has no
    reference ellipse or no pixel size."""
    if pair.ellipse_px is None or not pair.spacing.calibrated:
        return None
    frame_shape = pair.read_image().shape[:2]
    reference = biometry_from_ellipse(pair.ellipse_px, pair.spacing).hc
    full = rasterize_ellipse(pair.ellipse_px, frame_shape).astype(np.float32)
    maps = {
        "binary": target_mask(pair, frame_shape, size).astype(np.float64),
        "soft": cv2.resize(full, (size[1], size[0]), interpolation=cv2.INTER_AREA),
    }
    errors = {}
    for kind, target in maps.items():
        fit = ellipse_from_probability(target, frame_shape=frame_shape, spacing=pair.spacing)
        if fit is None:
            return None
        errors[kind] = biometry_from_ellipse(fit.ellipse_px, pair.spacing).hc - reference
    return errors


def summarise(errors: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, 95th percentile and maximum |HC error| and the bias of each target kind (mm)."""
    summary = {}
    for kind in TARGETS:
        signed = np.array([frame[kind] for frame in errors])
        absolute = np.abs(signed)
        summary[kind] = {
            "hc_abs_mean_mm": float(absolute.mean()),
            "hc_abs_p95_mm": float(np.percentile(absolute, 95)),
            "hc_abs_max_mm": float(absolute.max()),
            "bias_mm": float(signed.mean()),
        }
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="HC18 training_set")
    parser.add_argument("--split", type=Path, required=True, help="protocol_split.json")
    parser.add_argument("--side", default="train", choices=("train", "validation", "test"))
    parser.add_argument("--image-size", type=int, nargs=2, default=(224, 320), metavar=("H", "W"))
    parser.add_argument("--json", type=Path, required=True, help="write the summary here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = (args.image_size[0], args.image_size[1])
    pairs = load_pairs(args.data_dir, split_frames(args.split, args.side))
    errors = [e for e in (frame_errors(pair, size) for pair in pairs) if e is not None]
    if not errors:
        print(
            f"{args.data_dir}: no frame with a reference ellipse and a pixel size", file=sys.stderr
        )
        return 1
    summary = {"side": args.side, "image_size": list(size), "frames": len(errors)}
    summary |= summarise(errors)
    with atomic_write(args.json) as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    for kind in TARGETS:
        row = summary[kind]
        print(
            f"{kind}: {len(errors)} frames, mean |HC error| {row['hc_abs_mean_mm']:.3f} mm, "
            f"p95 {row['hc_abs_p95_mm']:.3f}, max {row['hc_abs_max_mm']:.3f}, "
            f"bias {row['bias_mm']:+.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
