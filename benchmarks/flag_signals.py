"""Which per-frame signals could flag the frames whose HC error exceeds 5 mm?

Issue 14's review flag must catch at least 80 % of the frames over 5 mm while flagging at most
8 % of all frames. `choose_review_thresholds.py` picks thresholds on validation, which holds
only one or two such frames; this script asks the prior question on any side of the split (the
train side holds a dozen): can any signal, or any pair of signals, do it at all? For every
frame it measures, with one model:

- `fit_iou`, `confidence`: the review flag's own signals (`core.measure`);
- `band_mm`: the HC of the probability map's 0.3 iso-contour minus that of its 0.7 one, a
  boundary uncertainty in millimetres;
- `mirror_mm`: |HC of the frame - HC of its mirror image (measured, mirrored back)|; zero for
  a model that already averages the mirror in its graph (`export --flip-average`);
- `pixel_mm` and `hc_mm`: how large a network pixel and the head are (the error is in mm).

For each signal (oriented so that higher is more doubtful) it reports the ROC AUC for "error
over 5 mm" and the ORACLE catch at the flag budget: the best a threshold chosen on these very
frames could do. The best oracle pair of signals (a frame flagged when either is over its
threshold) is reported too. An oracle catch below the target on a side means no threshold
chosen on other frames reaches it there either.

    python benchmarks/flag_signals.py HC18_DIR/training_set \\
        --split docs/results/protocol_split.json --side train \\
        --model models/hc_head_ersr_v3.onnx --json docs/results/flag_signals_v3_train.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from hc_studio.core.atomic import atomic_write
from protocol_eval import LARGE_ERROR_MM, load_pairs, split_frames

FLAG_BUDGET = 0.08
# Each signal with the sign that makes a larger value more doubtful.
SIGNALS = {
    "fit_iou": -1.0,
    "confidence": -1.0,
    "band_mm": 1.0,
    "mirror_mm": 1.0,
    "pixel_mm": 1.0,
    "hc_mm": 1.0,
}


def frame_signals(pair, engine) -> dict[str, float] | None:
    """The signals and the HC error (mm) of one labelled pair measured with `engine`, or None
    when the frame has no reference, no pixel size or no measured HC."""
    from hc_studio.core.biometry import biometry_from_ellipse
    from hc_studio.core.ellipse import ellipse_from_probability
    from hc_studio.core.io import Frame
    from hc_studio.core.measure import measure_frame

    spacing = pair.spacing
    if pair.ellipse_px is None or not spacing.calibrated:
        return None
    image = pair.read_image()
    measured = measure_frame(Frame(image, str(pair.image_path), 0, 1, spacing), engine)
    record = measured.record
    if record.hc is None or record.fit_iou is None or record.confidence is None:
        return None

    def hc_at(prob: np.ndarray, level: float) -> float | None:
        fit = ellipse_from_probability(prob, image.shape, level, spacing)
        return None if fit is None else biometry_from_ellipse(fit.ellipse_px, spacing).hc

    mirrored = engine.predict(np.ascontiguousarray(image[:, ::-1])).prob[:, ::-1]
    outer, inner = hc_at(measured.prob, 0.3), hc_at(measured.prob, 0.7)
    mirror = hc_at(mirrored, 0.5)
    if outer is None or inner is None or mirror is None:
        return None
    reference = biometry_from_ellipse(pair.ellipse_px, spacing).hc
    return {
        "file": pair.image_path.name,
        "error_mm": float(record.hc) - reference,
        "fit_iou": float(record.fit_iou),
        "confidence": float(record.confidence),
        "band_mm": outer - inner,
        "mirror_mm": abs(float(record.hc) - mirror),
        "pixel_mm": float(spacing.col_mm),
        "hc_mm": float(record.hc),
    }


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """P(a positive frame scores above a negative one), ties counted half; None without both."""
    pos, neg = scores[positive], scores[~positive]
    if pos.size == 0 or neg.size == 0:
        return None
    above = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(above + 0.5 * ties)


def _threshold_masks(scores: np.ndarray, budget: int) -> list[np.ndarray]:
    """The flag masks `scores >= t` for every threshold t that flags at most `budget` frames
    (the empty flag first)."""
    masks = [np.zeros(scores.size, dtype=bool)]
    for value in np.unique(scores)[::-1]:
        mask = scores >= value
        if mask.sum() > budget:
            break
        masks.append(mask)
    return masks


def oracle_catch(signals: Sequence[np.ndarray], positive: np.ndarray, budget: int) -> dict:
    """The most positives any thresholds on `signals` (a frame flagged when any is at or over
    its threshold) catch while flagging at most `budget` frames; ties: fewest flagged."""
    best = (-1, 0)
    for masks in itertools.product(*(_threshold_masks(s, budget) for s in signals)):
        flagged = np.logical_or.reduce(masks)
        count = int(flagged.sum())
        if count > budget:
            continue
        caught = int((flagged & positive).sum())
        if caught > best[0] or (caught == best[0] and count < best[1]):
            best = (caught, count)
    return {"caught": best[0], "flagged": best[1]}


def summarise(rows: Sequence[dict], budget_share: float, large_error: float) -> dict:
    errors = np.abs(np.array([row["error_mm"] for row in rows], dtype=float))
    positive = errors > large_error
    budget = int(np.floor(budget_share * len(rows)))
    oriented = {
        name: sign * np.array([row[name] for row in rows], dtype=float)
        for name, sign in SIGNALS.items()
    }
    singles = {
        name: {"auc": roc_auc(values, positive), **oracle_catch([values], positive, budget)}
        for name, values in oriented.items()
    }
    pairs = {
        f"{a}+{b}": oracle_catch([oriented[a], oriented[b]], positive, budget)
        for a, b in itertools.combinations(oriented, 2)
    }
    best_pair = max(pairs, key=lambda key: (pairs[key]["caught"], -pairs[key]["flagged"]))
    best_single = max(singles, key=lambda key: (singles[key]["caught"], -singles[key]["flagged"]))
    return {
        "frames": len(rows),
        "large_error_mm": large_error,
        "large_errors": int(positive.sum()),
        "flag_budget": budget,
        "hc_abs_mean_mm": float(errors.mean()) if rows else None,
        "signals": singles,
        "best_single": best_single,
        # What a second signal adds to the best one alone (0: no pair helps).
        "best_pair": {
            "signals": best_pair,
            **pairs[best_pair],
            "gain_over_best_single": pairs[best_pair]["caught"] - singles[best_single]["caught"],
        },
        "pairs": pairs,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="HC18 training_set (full resolution)")
    parser.add_argument("--split", type=Path, required=True, help="make_protocol_split.py JSON")
    parser.add_argument("--side", default="train", help="side of the split (default: train)")
    parser.add_argument("--model", type=Path, required=True, help="the ONNX model")
    parser.add_argument("--budget", type=float, default=FLAG_BUDGET, help="share flagged at most")
    parser.add_argument("--large-error", type=float, default=LARGE_ERROR_MM, help="mm")
    parser.add_argument("--json", type=Path, help="write the summary and the per-frame signals")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from hc_studio.core.inference import SegmentationEngine

    args = parse_args(argv)
    pairs = load_pairs(args.data, split_frames(args.split, args.side))
    engine = SegmentationEngine(args.model, device="cpu")
    rows = []
    for position, pair in enumerate(pairs, start=1):
        row = frame_signals(pair, engine)
        if row is not None:
            rows.append(row)
        if position % 50 == 0:
            print(f"{position}/{len(pairs)}", file=sys.stderr)
    summary = {
        "model": args.model.name,
        "side": args.side,
        **summarise(rows, args.budget, args.large_error),
    }
    for name, values in summary["signals"].items():
        auc = "n/a" if values["auc"] is None else f"{values['auc']:.3f}"
        print(
            f"{name:12s} AUC {auc}  oracle catch {values['caught']}/{summary['large_errors']}"
            f" flagging {values['flagged']}/{summary['frames']}"
        )
    best = summary["best_pair"]
    print(
        f"best pair {best['signals']}: {best['caught']}/{summary['large_errors']}"
        f" flagging {best['flagged']}/{summary['frames']};"
        f" {best['gain_over_best_single']:+d} over the best single signal, {summary['best_single']}"
    )
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump({**summary, "per_frame": rows}, handle, indent=1)
            handle.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
