"""How much of two models' HC error they share, frame by frame.

Two networks that differ in everything (architecture, initial weights, training) but err alike on
the same frames point at something neither controls: a faint or cut skull, a plane off the
standard one, or a reference ellipse drawn elsewhere than the network looks. A better network of
either kind can only remove the part of its error that is its own. This reads the per-frame CSV
that `protocol_eval.py --per-frame` writes (both models of one `--baseline` run, same frames) and
reports, with 95 % intervals over patient resamples as in `protocol_eval`:

- the correlation of the two models' signed HC errors;
- the standard deviation of each error and of their difference (the part that is not shared);
- the mean |HC error| of each model and of the average of their two HCs (what an ensemble of the
  two would measure);
- how many frames each model has over 5 mm, and how many of those the other has too.

It reads scores only; it chooses nothing, so it may be run on the test side after the test.

    python benchmarks/error_agreement.py PER_FRAME.csv [--models A B] [--json OUT.json]

Without `--models`, the CSV must hold exactly two models.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from protocol_eval import (
    BOOTSTRAP_DRAWS,
    BOOTSTRAP_SEED,
    LARGE_ERROR_MM,
    FrameScore,
    bootstrap,
    patient_draws,
    print_intervals,
    read_per_frame,
    write_summary,
)


@dataclass(frozen=True)
class PairedError:
    """One frame's signed HC error (mm) under each of the two models."""

    file: str
    patient: str
    first: float
    second: float


def paired_errors(first: Sequence[FrameScore], second: Sequence[FrameScore]) -> list[PairedError]:
    """The frames both models measured (an HC error each), in `first`'s order."""
    others = {frame.file: frame for frame in second}
    return [
        PairedError(frame.file, frame.patient, frame.hc_diff_mm, others[frame.file].hc_diff_mm)
        for frame in first
        if frame.hc_diff_mm is not None
        and frame.file in others
        and others[frame.file].hc_diff_mm is not None
    ]


def _arrays(pairs: Sequence[PairedError]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([p.first for p in pairs]), np.array([p.second for p in pairs])


def _correlation(pairs: Sequence[PairedError]) -> float:
    first, second = _arrays(pairs)
    return float(np.corrcoef(first, second)[0, 1])


def _sd(pick: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable:
    return lambda pairs: float(np.std(pick(*_arrays(pairs))))


def _mean_abs(pick: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable:
    return lambda pairs: float(np.mean(np.abs(pick(*_arrays(pairs)))))


STATISTICS: dict[str, Callable[[Sequence[PairedError]], float]] = {
    "correlation": _correlation,
    "sd_first_mm": _sd(lambda a, b: a),
    "sd_second_mm": _sd(lambda a, b: b),
    "sd_difference_mm": _sd(lambda a, b: a - b),
    "mean_abs_first_mm": _mean_abs(lambda a, b: a),
    "mean_abs_second_mm": _mean_abs(lambda a, b: b),
    "mean_abs_average_mm": _mean_abs(lambda a, b: (a + b) / 2),
}


def agreement(pairs: Sequence[PairedError], draws: int = BOOTSTRAP_DRAWS) -> dict:
    """The summary described in the module docstring (ValueError under three frames)."""
    if len(pairs) < 3:
        raise ValueError(f"{len(pairs)} frames measured by both models: too few to compare")
    resamples = patient_draws([p.patient for p in pairs], draws, BOOTSTRAP_SEED)
    first, second = _arrays(pairs)
    large_first, large_second = np.abs(first) > LARGE_ERROR_MM, np.abs(second) > LARGE_ERROR_MM
    return {
        "frames": len(pairs),
        "patients": len({p.patient for p in pairs}),
        # protocol_eval's patient bootstrap: it needs only each item's `patient`
        "statistics": {n: bootstrap(pairs, s, resamples) for n, s in STATISTICS.items()},
        "large_error_mm": LARGE_ERROR_MM,
        "large_first": int(large_first.sum()),
        "large_second": int(large_second.sum()),
        "large_both": int((large_first & large_second).sum()),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("per_frame", type=Path, metavar="PER_FRAME.csv")
    parser.add_argument("--models", nargs=2, metavar=("A", "B"), help="the two model columns")
    parser.add_argument("--json", type=Path, help="write the summary here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        scored = read_per_frame(args.per_frame)
        names = list(args.models or scored)
        if len(names) != 2 or any(name not in scored for name in names):
            raise ValueError(
                f"give two of its models with --models (it holds: {', '.join(scored)})"
            )
        summary = {
            "source": args.per_frame.name,
            "models": names,
            **agreement(paired_errors(scored[names[0]], scored[names[1]])),
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"error: {args.per_frame}: {error}", file=sys.stderr)
        return 2
    print_intervals(summary["statistics"])
    print(
        f"over {LARGE_ERROR_MM:g} mm: {summary['large_first']} ({names[0]}), "
        f"{summary['large_second']} ({names[1]}), {summary['large_both']} both"
    )
    if args.json:
        write_summary(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
