"""Choose the review-flag thresholds (fit IoU, border confidence) on validation frames only.

A measured frame is flagged for review when its ellipse fit IoU or its border confidence is
below a threshold (`core.measure`); a frame without an ellipse is always flagged. The target
(issue 14): flag at least 80 % of the frames whose |HC error| exceeds 5 mm while flagging at most
8 % of all frames. The script tries every pair of thresholds cut between observed values, keeps
the pairs that flag at most `--max-flagged` of the frames, and takes the one that catches the
most large errors, then the one that flags fewest, then the loosest thresholds. Whether the
target was met on validation is written beside the choice; the test side reports it again
(`protocol_eval.py --thresholds`), never to choose.

    python benchmarks/choose_review_thresholds.py PER_FRAME.csv --model NAME --json OUT.json

PER_FRAME.csv is `protocol_eval.py --per-frame` on the validation side; NAME its model column.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from hc_studio.core.atomic import atomic_write
from protocol_eval import FrameScore, flag_rates, read_per_frame, threshold_flag

MAX_FLAGGED = 0.08
MIN_CATCH = 0.80


def candidate_cuts(values: Sequence[float]) -> list[float]:
    """Thresholds between consecutive distinct values (a flag below each), plus 'never'."""
    distinct = np.unique(np.asarray(values, dtype=float))
    middles = (distinct[:-1] + distinct[1:]) / 2 if distinct.size > 1 else np.array([])
    return [float(distinct[0]) - 1e-9, *(float(m) for m in middles)]


def choose(frames: Sequence[FrameScore], max_flagged: float = MAX_FLAGGED) -> dict:
    """The chosen thresholds and their rates on `frames` (see the module docstring)."""
    measured = [f for f in frames if f.fit_iou is not None and f.confidence is not None]
    if not measured:
        raise ValueError("no frame with a fit IoU and a confidence")
    iou_cuts = candidate_cuts([f.fit_iou for f in measured])
    confidence_cuts = candidate_cuts([f.confidence for f in measured])
    best_key, best = None, None
    for iou_cut in iou_cuts:
        for confidence_cut in confidence_cuts:
            rates = flag_rates(frames, threshold_flag(iou_cut, confidence_cut))
            if rates["flagged_share"] > max_flagged:
                continue
            # Most large errors caught, then fewest flags, then the loosest thresholds.
            key = (rates["large_errors_caught"], -rates["flagged"], -iou_cut - confidence_cut)
            if best_key is None or key > best_key:
                best_key, best = key, (iou_cut, confidence_cut, rates)
    assert best is not None  # the cuts below every value flag only the frames without a fit
    iou_cut, confidence_cut, rates = best
    catch = rates["catch_rate"]
    return {
        "chosen": {"fit_iou": round(iou_cut, 4), "confidence": round(confidence_cut, 4)},
        "validation": rates,
        "target": {"min_catch": MIN_CATCH, "max_flagged_share": max_flagged},
        "target_met_on_validation": catch is not None and catch >= MIN_CATCH,
        "pairs_tried": len(iou_cuts) * len(confidence_cuts),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("per_frame", type=Path, metavar="PER_FRAME.csv")
    parser.add_argument("--model", required=True, help="the model column's value to use")
    parser.add_argument("--json", type=Path, required=True, help="write the choice here")
    parser.add_argument("--max-flagged", type=float, default=MAX_FLAGGED, help="default 0.08")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        scored = read_per_frame(args.per_frame)
        if args.model not in scored:
            raise ValueError(f"{args.per_frame.name}: no model {args.model!r} ({list(scored)})")
        result = {"model": args.model, "source": args.per_frame.name}
        result.update(choose(scored[args.model], args.max_flagged))
    except (OSError, ValueError) as error:
        print(f"choose_review_thresholds: {error}", file=sys.stderr)
        return 2
    with atomic_write(args.json) as handle:
        handle.write(json.dumps(result, indent=1) + "\n")
    rates = result["validation"]
    print(
        f"fit IoU < {result['chosen']['fit_iou']} or confidence < "
        f"{result['chosen']['confidence']}: {rates['flagged']}/{rates['frames']} flagged, "
        f"{rates['large_errors_caught']}/{rates['large_errors']} large errors caught"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
