"""Write a half-resolution copy of an HC18-layout folder (frames, outlines, pixel-size CSV).

Training at 256x384 or below never needs the 540x800 originals; a half-resolution copy is a
quarter of the size and decodes four times faster. Outlines are redrawn from the ellipse fitted to
the original outline's pixels (the reference's definition), mapped with pixel-centre geometry, and
the pixel size is scaled by the same factor, so the reference HC in mm is unchanged.

    python benchmarks/downsample_hc18.py SRC_DIR SRC_CSV OUT_DIR [--factor 2]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np
from hc_studio.core.csv_safety import safe_writer


def fit_outline(outline: np.ndarray) -> tuple[float, float, float, float, float]:
    rows, cols = np.nonzero(outline)
    points = np.stack([cols, rows], axis=1).astype(np.float32)
    (cx, cy), (w, h), angle = cv2.fitEllipse(points)
    return cx, cy, w / 2, h / 2, angle


def draw_outline(shape: tuple[int, int], cx: float, cy: float, a: float, b: float, angle: float):
    canvas = np.zeros(shape, np.uint8)
    shift = 8
    scale = 1 << shift
    centre = (round(cx * scale), round(cy * scale))
    axes = (round(a * scale), round(b * scale))
    cv2.ellipse(canvas, centre, axes, angle, 0, 360, 255, 1, cv2.LINE_8, shift)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("csv", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--factor", type=float, default=2.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    f = args.factor
    with args.csv.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    out_rows = [header]
    for row in body:
        name = row[0]
        image = cv2.imread(str(args.src / name), cv2.IMREAD_GRAYSCALE)
        if image is None:
            print(f"{name}: unreadable, skipped")
            continue
        small = (round(image.shape[1] / f), round(image.shape[0] / f))
        cv2.imwrite(str(args.out / name), cv2.resize(image, small, interpolation=cv2.INTER_AREA))
        annotation = args.src / name.replace(".png", "_Annotation.png")
        if annotation.exists():
            cx, cy, a, b, angle = fit_outline(cv2.imread(str(annotation), cv2.IMREAD_GRAYSCALE) > 0)
            centre = ((cx + 0.5) / f - 0.5, (cy + 0.5) / f - 0.5)
            outline = draw_outline((small[1], small[0]), *centre, a / f, b / f, angle)
            cv2.imwrite(str(args.out / annotation.name), outline)
        out_rows.append([name, repr(float(row[1]) * f), *row[2:]])
    with (args.out.parent / f"{args.out.name}_pixel_size.csv").open("w", newline="") as handle:
        safe_writer(handle).writerows(out_rows)
    print(f"wrote {len(out_rows) - 1} frames to {args.out}")


if __name__ == "__main__":
    main()
