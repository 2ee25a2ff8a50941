"""Draw the figures of docs/benchmarks.md from one model's evaluation on the held-out frames.

Reproduces:

* `cases.png`: the `--cases` held-out frames with the smallest and the largest absolute HC
  difference (from the per-frame CSV of `hc-studio evaluate`), each with the measured ellipse
  (orange) drawn over the reference ellipse (blue) and labelled with its HC difference;
* `bland_altman.png`: measured against reference HC (Bland-Altman: the difference against the
  mean of the two, with the mean difference and the limits of agreement, ±1.96 SD);
* `figures.json`: the Bland-Altman numbers and the frames shown.

Images are kept under 500 KB. The plot needs matplotlib (`pip install -e .[bench]`).

    python benchmarks/figures.py --model ONNX --split-val DIR --pixel-csv CSV --per-frame CSV
        --out-dir DIR [--cases 4]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from hc_studio.core.atomic import atomic_write, atomic_write_bytes
from hc_studio.core.ellipse import Ellipse

MAX_IMAGE_BYTES = 500_000
PREDICTED_BGR = (0, 159, 230)  # orange (Okabe-Ito), readable for colour-blind viewers
REFERENCE_BGR = (233, 180, 86)  # sky blue (Okabe-Ito)
TEXT_BGR = (255, 255, 255)
LABEL_HEIGHT = 26
LEGEND_HEIGHT = 30
TILE_WIDTH = 360
SHRINK_STEP = 0.85  # tile width factor per try while the PNG is over budget


@dataclass(frozen=True)
class BlandAltman:
    """Agreement of measured and reference HC in mm: `bias` the mean difference (measured -
    reference), `sd` its sample standard deviation, limits of agreement bias ± 1.96 sd."""

    n: int
    bias: float
    sd: float
    lower: float
    upper: float
    mean_abs_difference: float


def bland_altman(measured: np.ndarray, reference: np.ndarray) -> BlandAltman:
    """Bland-Altman statistics of paired (n,) values; raises ValueError for fewer than 2 pairs."""
    measured, reference = np.asarray(measured, float), np.asarray(reference, float)
    if measured.shape != reference.shape or measured.ndim != 1:
        raise ValueError("measured and reference must be 1-D arrays of the same length")
    if measured.size < 2:
        raise ValueError(f"Bland-Altman needs at least 2 pairs, got {measured.size}")
    differences = measured - reference
    bias, sd = float(differences.mean()), float(differences.std(ddof=1))
    return BlandAltman(
        n=int(differences.size),
        bias=bias,
        sd=sd,
        lower=bias - 1.96 * sd,
        upper=bias + 1.96 * sd,
        mean_abs_difference=float(np.abs(differences).mean()),
    )


@dataclass(frozen=True)
class FrameRow:
    file: str
    hc_pred_mm: float
    hc_ref_mm: float

    @property
    def difference(self) -> float:
        return self.hc_pred_mm - self.hc_ref_mm


def read_hc_rows(path: Path) -> list[FrameRow]:
    """Frames of an evaluate per-frame CSV with both a measured and a reference HC."""
    rows = []
    with path.open(newline="") as handle:
        for record in csv.DictReader(handle):
            try:
                pred, ref = float(record["hc_pred_mm"]), float(record["hc_ref_mm"])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(pred) and math.isfinite(ref):
                rows.append(FrameRow(record["file"], pred, ref))
    return rows


def best_and_worst(rows: list[FrameRow], count: int) -> tuple[list[FrameRow], list[FrameRow]]:
    """The `count` rows with the smallest and the `count` with the largest |difference| (worst
    first); the two lists never share a frame."""
    ranked = sorted(rows, key=lambda row: (abs(row.difference), row.file))
    best = ranked[: min(count, len(ranked) // 2 or len(ranked))]
    worst = [row for row in reversed(ranked) if row not in best][:count]
    return best, worst


# --- the case grid ---------------------------------------------------------------------------


def _draw_ellipse(canvas: np.ndarray, ellipse: Ellipse, scale: float, colour, thickness: int):
    """Draw a frame-pixel ellipse on a canvas that is the frame scaled by `scale`."""
    shift = 4
    unit = 1 << shift
    centre = ((ellipse.cx + 0.5) * scale - 0.5, (ellipse.cy + 0.5) * scale - 0.5)
    cv2.ellipse(
        canvas,
        (round(centre[0] * unit), round(centre[1] * unit)),
        (round(ellipse.a * scale * unit), round(ellipse.b * scale * unit)),
        math.degrees(ellipse.angle),
        0,
        360,
        colour,
        thickness,
        cv2.LINE_AA,
        shift,
    )


def draw_tile(
    image: np.ndarray,
    reference: Ellipse | None,
    predicted: Ellipse | None,
    label: str,
    width: int,
) -> np.ndarray:
    """(h + LABEL_HEIGHT, width, 3) uint8: the grey frame (H, W) in 0..1, scaled to `width`,
    the reference and measured ellipses, and `label` below it."""
    scale = width / image.shape[1]
    height = round(image.shape[0] * scale)
    grey = cv2.resize(
        (np.clip(image, 0, 1) * 255).astype(np.uint8), (width, height), cv2.INTER_AREA
    )
    tile = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if reference is not None:
        _draw_ellipse(tile, reference, scale, REFERENCE_BGR, 2)
    if predicted is not None:
        _draw_ellipse(tile, predicted, scale, PREDICTED_BGR, 2)
    bar = np.zeros((LABEL_HEIGHT, width, 3), np.uint8)
    cv2.putText(bar, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT_BGR, 1, cv2.LINE_AA)
    return np.vstack([tile, bar])


def legend_bar(width: int) -> np.ndarray:
    bar = np.full((LEGEND_HEIGHT, width, 3), 32, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.line(bar, (10, 15), (40, 15), REFERENCE_BGR, 2, cv2.LINE_AA)
    cv2.putText(bar, "reference", (46, 20), font, 0.5, TEXT_BGR, 1, cv2.LINE_AA)
    cv2.line(bar, (150, 15), (180, 15), PREDICTED_BGR, 2, cv2.LINE_AA)
    cv2.putText(bar, "measured", (186, 20), font, 0.5, TEXT_BGR, 1, cv2.LINE_AA)
    text = "top: smallest |HC diff|, bottom: largest"
    cv2.putText(bar, text, (290, 20), font, 0.5, TEXT_BGR, 1, cv2.LINE_AA)
    return bar


def assemble_grid(rows_of_tiles: list[list[np.ndarray]]) -> np.ndarray:
    """Tiles (same size) in rows, rows padded with black to the longest, a legend on top."""
    tile_h, tile_w = rows_of_tiles[0][0].shape[:2]
    columns = max(len(row) for row in rows_of_tiles)
    blank = np.zeros((tile_h, tile_w, 3), np.uint8)
    lines = [np.hstack(row + [blank] * (columns - len(row))) for row in rows_of_tiles if row]
    grid = np.vstack(lines)
    return np.vstack([legend_bar(grid.shape[1]), grid])


def encode_png_under(render, max_bytes: int = MAX_IMAGE_BYTES, width: int = TILE_WIDTH) -> bytes:
    """PNG bytes of `render(tile_width)`, shrinking the tiles until the file fits `max_bytes`."""
    while True:
        ok, encoded = cv2.imencode(".png", render(width), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise ValueError("could not encode the PNG")
        if encoded.nbytes <= max_bytes or width < 64:
            return encoded.tobytes()
        width = int(width * SHRINK_STEP)


def case_tiles_source(args: argparse.Namespace, chosen: list[FrameRow]) -> dict[str, tuple]:
    """{file: (image, reference ellipse, measured ellipse)} for the chosen frames."""
    from hc_studio.core.dataset import import_labelled_folder
    from hc_studio.core.inference import SegmentationEngine
    from hc_studio.core.io import Frame
    from hc_studio.core.measure import measure_frame

    wanted = {row.file for row in chosen}
    imported = import_labelled_folder(args.split_val, args.pixel_csv, load_pixels=False)
    engine = SegmentationEngine(args.model, device=args.device)
    sources = {}
    for pair in imported.pairs:
        if pair.image_path.name not in wanted:
            continue
        image = pair.read_image()
        frame = Frame(image, str(pair.image_path), 0, 1, pair.spacing)
        predicted = measure_frame(frame, engine).record.ellipse_px
        sources[pair.image_path.name] = (image, pair.ellipse_px, predicted)
    missing = wanted - sources.keys()
    if missing:
        raise ValueError(f"{args.split_val}: cannot read {', '.join(sorted(missing))}")
    return sources


def render_cases(best: list[FrameRow], worst: list[FrameRow], sources: dict) -> bytes:
    def render(width: int) -> np.ndarray:
        rows = []
        for group in (best, worst):
            tiles = []
            for row in group:
                image, reference, predicted = sources[row.file]
                label = f"{row.file}  HC diff {row.difference:+.2f} mm"
                tiles.append(draw_tile(image, reference, predicted, label, width))
            rows.append(tiles)
        return assemble_grid(rows)

    return encode_png_under(render)


# --- Bland-Altman ----------------------------------------------------------------------------


def _signed(value: float) -> str:
    """+1.23 / −1.23 (a true minus sign, as in the axis labels)."""
    return f"{value:+.2f}".replace("-", "−")


def render_bland_altman(rows: list[FrameRow], stats: BlandAltman) -> bytes:
    try:
        import matplotlib
    except ImportError:
        raise ValueError("the plot needs matplotlib: pip install -e .[bench]") from None
    matplotlib.use("Agg")
    import io

    from matplotlib import pyplot as plt

    measured = np.array([row.hc_pred_mm for row in rows])
    reference = np.array([row.hc_ref_mm for row in rows])
    figure, axes = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    axes.scatter((measured + reference) / 2, measured - reference, s=10, alpha=0.6, lw=0)
    for value, style, text in (
        (stats.bias, "-", f"mean difference {_signed(stats.bias)} mm"),
        (stats.upper, "--", f"mean + 1.96 SD: {_signed(stats.upper)} mm"),
        (stats.lower, "--", f"mean − 1.96 SD: {_signed(stats.lower)} mm"),
    ):
        axes.axhline(value, color="0.3", linestyle=style, linewidth=1)
        axes.annotate(text, (1.0, value), xycoords=("axes fraction", "data"), ha="right",
                      va="bottom", fontsize=8)  # fmt: skip
    axes.set_xlabel("mean of measured and reference HC (mm)")
    axes.set_ylabel("measured − reference HC (mm)")
    axes.set_title(f"Bland-Altman, HC on {stats.n} held-out frames", fontsize=10)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--model", type=Path, required=True, metavar="ONNX")
    add("--split-val", type=Path, required=True, metavar="DIR", help="the held-out frames")
    add("--pixel-csv", type=Path, required=True, metavar="CSV", help="their pixel sizes")
    add("--per-frame", type=Path, required=True, metavar="CSV", help="from hc-studio evaluate")
    add("--out-dir", type=Path, required=True, metavar="DIR")
    add("--cases", type=int, default=4, help="frames per row (best, worst); default 4")
    add("--device", choices=("auto", "cpu", "cuda"), default="auto")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        rows = read_hc_rows(args.per_frame)
        stats = bland_altman(
            np.array([r.hc_pred_mm for r in rows]), np.array([r.hc_ref_mm for r in rows])
        )
        best, worst = best_and_worst(rows, args.cases)
        sources = case_tiles_source(args, best + worst)
        cases_png = render_cases(best, worst, sources)
        plot_png = render_bland_altman(rows, stats)
    except (ValueError, OSError) as error:
        print(f"figures: {error}", file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out_dir / "cases.png", cases_png)
    atomic_write_bytes(args.out_dir / "bland_altman.png", plot_png)
    summary = {
        "bland_altman_mm": asdict(stats),
        "best": [asdict(row) for row in best],
        "worst": [asdict(row) for row in worst],
    }
    with atomic_write(args.out_dir / "figures.json") as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    print(
        f"Bland-Altman on {stats.n} frames: mean difference {stats.bias:+.2f} mm, limits of "
        f"agreement {stats.lower:+.2f} to {stats.upper:+.2f} mm -> {args.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
