"""Choose the review-flag thresholds (fit IoU, border confidence, pass disagreement) on
validation frames only.

A measured frame is flagged for review when its ellipse fit IoU or its border confidence is
below a threshold, or when its pass disagreement (relative HC difference between the first and
the refining network pass) is above one (`core.measure`); a frame without an ellipse is always
flagged, a frame without a disagreement (model without a second pass) is judged on the first
two. The disagreement is chosen together with the other two because the passes can disagree on
frames whose fit and confidence look fine, and a threshold chosen alone would spend the flag
budget on frames the others already catch. The target (issue 14): flag at least 80 % of the
frames whose |HC error| exceeds 5 mm while flagging at most 8 % of all frames. The script tries
every combination of thresholds cut between observed values (plus "never": below the smallest
IoU / confidence, above the largest disagreement), keeps those that flag at most
`--max-flagged` of the frames, and takes the one that catches the most large errors, then the
one that flags fewest, then the loosest thresholds (largest -IoU cut - confidence cut +
disagreement cut), then the first in (IoU, confidence, disagreement) order. The combinations are
counted at once with numpy (flag counts as 0/1 matrix products), not one rule at a time. When no
frame has a disagreement, only the two thresholds are chosen, as before this threshold existed;
"pass_disagreement" is null in the JSON then, and also when "never" is chosen. Whether the target
was met on validation is written beside the choice; the test side reports it again
(`protocol_eval.py --thresholds`), never to choose.

    python benchmarks/choose_review_thresholds.py PER_FRAME.csv --model NAME --json OUT.json

PER_FRAME.csv is `protocol_eval.py --per-frame` on the validation side; NAME its model column.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from hc_studio.core.atomic import atomic_write
from protocol_eval import (
    LARGE_ERROR_MM,
    FrameScore,
    flag_rates,
    read_per_frame,
    threshold_flag,
)

MAX_FLAGGED = 0.08
MIN_CATCH = 0.80


def candidate_cuts(values: Sequence[float]) -> list[float]:
    """Thresholds between consecutive distinct values (a flag below each), plus 'never'."""
    distinct = np.unique(np.asarray(values, dtype=float))
    middles = (distinct[:-1] + distinct[1:]) / 2 if distinct.size > 1 else np.array([])
    return [float(distinct[0]) - 1e-9, *(float(m) for m in middles)]


def candidate_cuts_above(values: Sequence[float]) -> list[float]:
    """Thresholds between consecutive distinct values (a flag above each), plus 'never' (last)."""
    distinct = np.unique(np.asarray(values, dtype=float))
    middles = (distinct[:-1] + distinct[1:]) / 2 if distinct.size > 1 else np.array([])
    return [*(float(m) for m in middles), float(distinct[-1]) + 1e-9]


def _disagreements(frames: Sequence[FrameScore]) -> list[float]:
    values = (f.pass_disagreement for f in frames)
    return [v for v in values if v is not None and math.isfinite(v)]


def search(
    frames: Sequence[FrameScore],
    iou_cuts: Sequence[float],
    confidence_cuts: Sequence[float],
    disagreement_cuts: Sequence[float] | None,
    max_flagged: float,
) -> tuple[int, int, int | None]:
    """Indices of the chosen cuts (disagreement None when `disagreement_cuts` is None), by the
    module's rule; the same choice as trying `threshold_flag` on every combination in turn."""
    always = np.array(
        [f.hc_diff_mm is None or f.fit_iou is None or f.confidence is None for f in frames]
    )
    large = np.array([f.hc_abs_mm is None or f.hc_abs_mm > LARGE_ERROR_MM for f in frames])
    iou = np.array([np.nan if f.fit_iou is None else f.fit_iou for f in frames], dtype=float)
    conf = np.array([np.nan if f.confidence is None else f.confidence for f in frames], dtype=float)
    dis = np.array(
        [np.nan if f.pass_disagreement is None else f.pass_disagreement for f in frames],
        dtype=float,
    )
    # kept_iou[i, f]: frame f not flagged by IoU cut i (nor always flagged); likewise the others.
    # A frame escapes the flag when it escapes every threshold, so the unflagged counts of all
    # (i, j, k) are sums over frames of products: one matrix product per disagreement cut.
    iou_cuts_a = np.asarray(iou_cuts, dtype=float)
    conf_cuts_a = np.asarray(confidence_cuts, dtype=float)
    kept_iou = ~always & ~(iou[None, :] < iou_cuts_a[:, None])
    kept_conf = ~(conf[None, :] < conf_cuts_a[:, None])
    if disagreement_cuts is None:
        dis_cuts_a = np.zeros(1)
        kept_dis = np.ones((1, len(frames)), dtype=bool)
    else:
        dis_cuts_a = np.asarray(disagreement_cuts, dtype=float)
        kept_dis = ~(dis[None, :] > dis_cuts_a[:, None])  # NaN (no disagreement): never flagged
    conf_t = kept_conf.T.astype(float)
    shape = (len(iou_cuts_a), len(conf_cuts_a), len(dis_cuts_a))
    unflagged, unflagged_large = np.empty(shape), np.empty(shape)
    for k in range(shape[2]):
        rows = (kept_iou & kept_dis[k][None, :]).astype(float)
        unflagged[:, :, k] = rows @ conf_t
        unflagged_large[:, :, k] = (rows * large[None, :]) @ conf_t
    flagged = len(frames) - np.rint(unflagged).astype(np.int64)
    caught = int(large.sum()) - np.rint(unflagged_large).astype(np.int64)
    loosest = -iou_cuts_a[:, None] - conf_cuts_a[None, :]
    if disagreement_cuts is not None:
        loosest = loosest[:, :, None] + dis_cuts_a[None, None, :]
    else:
        loosest = loosest[:, :, None]
    allowed = flagged / max(len(frames), 1) <= max_flagged
    if not allowed.any():
        raise ValueError("no thresholds flag few enough frames")
    # Most large errors caught, then fewest flags, then the loosest thresholds, then the first.
    best = allowed & (caught == caught[allowed].max())
    best &= flagged == flagged[best].min()
    best &= loosest == loosest[best].max()
    i, j, k = np.unravel_index(int(np.flatnonzero(best)[0]), shape)
    return int(i), int(j), None if disagreement_cuts is None else int(k)


def choose(frames: Sequence[FrameScore], max_flagged: float = MAX_FLAGGED) -> dict:
    """The chosen thresholds and their rates on `frames` (see the module docstring)."""
    measured = [f for f in frames if f.fit_iou is not None and f.confidence is not None]
    if not measured:
        raise ValueError("no frame with a fit IoU and a confidence")
    iou_cuts = candidate_cuts([f.fit_iou for f in measured])
    confidence_cuts = candidate_cuts([f.confidence for f in measured])
    observed = _disagreements(measured)
    disagreement_cuts = candidate_cuts_above(observed) if observed else None
    i, j, k = search(frames, iou_cuts, confidence_cuts, disagreement_cuts, max_flagged)
    iou_cut, confidence_cut = iou_cuts[i], confidence_cuts[j]
    # The last disagreement cut is "never": no threshold, as for a model without a second pass.
    never = disagreement_cuts is None or k == len(disagreement_cuts) - 1
    disagreement_cut = None if never else disagreement_cuts[k]
    rates = flag_rates(frames, threshold_flag(iou_cut, confidence_cut, disagreement_cut))
    catch = rates["catch_rate"]
    result = {
        "chosen": {
            "fit_iou": round(iou_cut, 4),
            "confidence": round(confidence_cut, 4),
            # finer: disagreements are a few hundredths, a 4th decimal could cross a value
            "pass_disagreement": None if disagreement_cut is None else round(disagreement_cut, 6),
        },
        "validation": rates,
        "target": {"min_catch": MIN_CATCH, "max_flagged_share": max_flagged},
        "target_met_on_validation": catch is not None and catch >= MIN_CATCH,
        "pairs_tried": len(iou_cuts) * len(confidence_cuts),
    }
    if disagreement_cuts is not None:
        result["combinations_tried"] = result["pairs_tried"] * len(disagreement_cuts)
    return result


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
        f"{result['chosen']['confidence']}"
        + (
            f" or pass disagreement > {result['chosen']['pass_disagreement']}"
            if result["chosen"]["pass_disagreement"] is not None
            else ""
        )
        + f": {rates['flagged']}/{rates['frames']} flagged, "
        f"{rates['large_errors_caught']}/{rates['large_errors']} large errors caught"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
