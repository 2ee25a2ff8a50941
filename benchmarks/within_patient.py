"""Whose error is it? The reference's and a model's frame-level error, from frames of one patient.

HC18 has two or three frames of many patients, from one examination. Between two frames i and j
of one patient, the reference's HC difference and the model's are

    d_ref = T_i - T_j + a_i - a_j        d_model = T_i - T_j + m_i - m_j

where T is what the frame really shows (the plane differs a little between frames), a the
reference's own error on the frame and m the model's. Whatever is the same on both frames (a
patient's head shape, an annotator's habit, a model's bias on that head) cancels. When a and m
are independent of each other and between frames (the method comparison of Grubbs, 1948):

    E[d_ref * d_model] = E[(T_i - T_j)^2]
    frame-level SD of the reference  = sqrt((E[d_ref^2]   - E[d_ref * d_model]) / 2)
    frame-level SD of the model      = sqrt((E[d_model^2] - E[d_ref * d_model]) / 2)

(0 when the difference is negative: the estimate is then below what the pairs resolve). The
part of the HC error (model - reference) that two frames of one patient share is the
patient-level part: E[e_i * e_j]. So this splits the error the protocol reports into what the
reference adds frame by frame, what the model adds frame by frame, and what stays with the
patient. A reference that is noisy frame by frame puts a floor under every model's error; a
model that is, is what a better model can remove.

Reads the per-frame CSVs that `protocol_eval.py --per-frame` writes (several: the validation
and the test side together give more pairs), for one model, with 95 % intervals over patient
resamples as in `protocol_eval`. It reads scores only and chooses nothing.

    python benchmarks/within_patient.py VALIDATION_FRAMES.csv TEST_FRAMES.csv --model NAME \\
        [--json OUT.json]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from protocol_eval import (
    BOOTSTRAP_DRAWS,
    BOOTSTRAP_SEED,
    FrameScore,
    bootstrap,
    patient_draws,
    print_intervals,
    read_per_frame,
    write_summary,
)


@dataclass(frozen=True)
class FramePair:
    """Two frames of one patient: the reference's and the model's HC (mm) of each."""

    patient: str
    first: str
    second: str
    reference: tuple[float, float]
    model: tuple[float, float]

    @property
    def reference_difference(self) -> float:
        return self.reference[0] - self.reference[1]

    @property
    def model_difference(self) -> float:
        return self.model[0] - self.model[1]

    @property
    def errors(self) -> tuple[float, float]:
        return self.model[0] - self.reference[0], self.model[1] - self.reference[1]


def frame_pairs(frames: Sequence[FrameScore]) -> list[FramePair]:
    """Every pair of measured frames of one patient (a patient with three frames gives three),
    in the order the frames come; a file listed twice is refused."""
    repeated = sorted(file for file, n in Counter(f.file for f in frames).items() if n > 1)
    if repeated:
        raise ValueError(f"frames listed more than once: {', '.join(repeated)}")
    measured: dict[str, list[FrameScore]] = {}
    for frame in frames:
        if frame.hc_pred_mm is not None and frame.hc_ref_mm is not None:
            measured.setdefault(frame.patient, []).append(frame)
    return [
        FramePair(
            patient,
            one.file,
            other.file,
            (one.hc_ref_mm, other.hc_ref_mm),
            (one.hc_pred_mm, other.hc_pred_mm),
        )
        for patient, group in measured.items()
        for one, other in itertools.combinations(group, 2)
    ]


def _moments(pairs: Sequence[FramePair]) -> tuple[float, float, float]:
    """E[d_ref^2], E[d_model^2], E[d_ref * d_model] over the pairs."""
    reference = np.array([pair.reference_difference for pair in pairs])
    model = np.array([pair.model_difference for pair in pairs])
    return float(np.mean(reference**2)), float(np.mean(model**2)), float(np.mean(reference * model))


def _frame_sd(own: int) -> Callable[[Sequence[FramePair]], float]:
    def statistic(pairs: Sequence[FramePair]) -> float:
        moments = _moments(pairs)
        return math.sqrt(max(moments[own] - moments[2], 0.0) / 2)

    return statistic


def _rms(difference: Callable[[FramePair], float]) -> Callable[[Sequence[FramePair]], float]:
    return lambda pairs: float(np.sqrt(np.mean([difference(pair) ** 2 for pair in pairs])))


def _difference_correlation(pairs: Sequence[FramePair]) -> float:
    reference, model, shared = _moments(pairs)
    return shared / math.sqrt(reference * model) if reference > 0 and model > 0 else 0.0


def _error_sd(pairs: Sequence[FramePair]) -> float:
    """The SD of the HC error over the pairs' frames, as E[e^2] (both frames of every pair)."""
    return float(np.sqrt(np.mean([e**2 for pair in pairs for e in pair.errors])))


def _frame_level_error_sd(pairs: Sequence[FramePair]) -> float:
    """sqrt(E[(e_i - e_j)^2] / 2): the part of the error that differs between frames."""
    return float(np.sqrt(np.mean([(pair.errors[0] - pair.errors[1]) ** 2 for pair in pairs]) / 2))


def _patient_level_error_sd(pairs: Sequence[FramePair]) -> float:
    """sqrt(E[e_i * e_j]): the part of the error two frames of one patient share (0 when the
    product is negative on average)."""
    shared = float(np.mean([pair.errors[0] * pair.errors[1] for pair in pairs]))
    return math.sqrt(max(shared, 0.0))


STATISTICS: dict[str, Callable[[Sequence[FramePair]], float]] = {
    "rms_reference_difference_mm": _rms(lambda pair: pair.reference_difference),
    "rms_model_difference_mm": _rms(lambda pair: pair.model_difference),
    "difference_correlation": _difference_correlation,
    "reference_frame_sd_mm": _frame_sd(0),
    "model_frame_sd_mm": _frame_sd(1),
    "error_rms_mm": _error_sd,
    "error_frame_level_sd_mm": _frame_level_error_sd,
    "error_patient_level_sd_mm": _patient_level_error_sd,
}


def within_patient(pairs: Sequence[FramePair], draws: int = BOOTSTRAP_DRAWS) -> dict:
    """The statistics above with patient-bootstrap intervals (ValueError under three pairs)."""
    if len(pairs) < 3:
        raise ValueError(f"{len(pairs)} pairs of frames of one patient: too few to compare")
    resamples = patient_draws([pair.patient for pair in pairs], draws, BOOTSTRAP_SEED)
    return {
        "pairs": len(pairs),
        "patients": len({pair.patient for pair in pairs}),
        # protocol_eval's patient bootstrap: it needs only each item's `patient`
        "statistics": {n: bootstrap(pairs, s, resamples) for n, s in STATISTICS.items()},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("per_frame", type=Path, nargs="+", metavar="PER_FRAME.csv")
    parser.add_argument("--model", required=True, help="the model column to read")
    parser.add_argument("--json", type=Path, help="write the summary here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    frames: list[FrameScore] = []
    for path in args.per_frame:
        try:
            scored = read_per_frame(path)
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(f"error: {path}: {error}", file=sys.stderr)
            return 2
        if args.model not in scored:
            print(
                f"error: {path}: no model {args.model!r} (it holds: {', '.join(scored)})",
                file=sys.stderr,
            )
            return 2
        frames.extend(scored[args.model])
    try:
        summary = {
            "sources": [path.name for path in args.per_frame],
            "model": args.model,
            **within_patient(frame_pairs(frames)),
        }
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{summary['pairs']} pairs of frames of {summary['patients']} patients")
    print_intervals(summary["statistics"], width=28)
    if args.json:
        write_summary(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
