"""Write the training crops of the head-refinement network (`core.refine`) for one protocol side.

Each HC18 frame of the side gives `--per-frame` square windows around its reference ellipse, moved
and scaled at random (`core.head_crop.jittered_window`), resized to SIZE x SIZE, with the reference
ellipse rasterised on the same grid as the mask (an unbiased target, see docs/benchmarks.md).
The output is an `images/` + `masks/` labelled folder that `hc-studio train` reads as it is, with
a `crops_pixel_size.csv` (the frame's pixel size times the window's scale) and a `patients.csv`
so that the crops of one patient stay together.

    python benchmarks/make_head_crops.py $HC18/training_set \\
        --split docs/results/protocol_split.json --side train --out $WORK/crops/train \\
        --size 256 --per-frame 3
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from hc_studio.core.csv_safety import SafeDictWriter
from hc_studio.core.ellipse import fit_outline_mask, rasterize_ellipse
from hc_studio.core.head_crop import jittered_window
from hc_studio.core.split import patient_id


def _sizes(csv_path: Path) -> dict[str, float]:
    with csv_path.open(newline="") as handle:
        return {row["filename"]: float(row["pixel size(mm)"]) for row in csv.DictReader(handle)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="HC18 training_set folder (full resolution).")
    parser.add_argument("--split", type=Path, required=True, help="protocol_split.json.")
    parser.add_argument("--side", required=True, help="train, validation or test.")
    parser.add_argument("--out", type=Path, required=True, help="Output folder (new).")
    parser.add_argument("--size", type=int, default=256, help="Crop side in pixels (256).")
    parser.add_argument("--per-frame", type=int, default=3, help="Crops per frame (3).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the jitter (0).")
    args = parser.parse_args(argv)

    frames = json.loads(args.split.read_text())[args.side]["frames"]
    sizes = _sizes(args.data.parent / "training_set_pixel_size_and_HC.csv")
    rng = np.random.default_rng(args.seed)
    (args.out / "images").mkdir(parents=True, exist_ok=False)
    (args.out / "masks").mkdir()
    rows, patients = [], []
    for name in frames:
        image = cv2.imread(str(args.data / name), cv2.IMREAD_GRAYSCALE)
        outline = cv2.imread(str(args.data / name.replace(".png", "_Annotation.png")), 0) > 127
        if image is None:
            print(f"{name}: cannot be read, skipped", file=sys.stderr)
            continue
        reference = fit_outline_mask(outline)
        frame = image.astype(np.float32) / 255.0
        for k in range(args.per_frame):
            window = jittered_window(reference, rng)
            crop = window.cut(frame, args.size)
            mask = rasterize_ellipse(window.ellipse_on_crop(reference, args.size), crop.shape)
            stem = f"{Path(name).stem}_c{k}"
            cv2.imwrite(
                str(args.out / "images" / f"{stem}.png"), np.round(crop * 255).astype(np.uint8)
            )
            cv2.imwrite(str(args.out / "masks" / f"{stem}.png"), mask.astype(np.uint8) * 255)
            rows.append(
                {"filename": f"{stem}.png", "pixel size(mm)": sizes[name] * window.scale(args.size)}
            )
            patients.append({"filename": f"{stem}.png", "patient": patient_id(name)})
    with (args.out / "crops_pixel_size.csv").open("w", newline="") as handle:
        writer = SafeDictWriter(handle, ["filename", "pixel size(mm)"])
        writer.writeheader()
        writer.writerows(rows)
    with (args.out / "patients.csv").open("w", newline="") as handle:
        writer = SafeDictWriter(handle, ["filename", "patient"])
        writer.writeheader()
        writer.writerows(patients)
    print(f"{args.side}: {len(rows)} crops of {len(frames)} frames in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
