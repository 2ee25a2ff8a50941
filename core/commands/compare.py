"""`hc-studio compare CANDIDATE.onnx --against CURRENT.onnx DIR`: should the candidate be used?

Both models measure every labelled frame of DIR as `hc-studio evaluate` does; `core.comparison`
pairs the frames, puts bootstrap intervals on the differences and gives the verdict. Exit code 0
unless the verdict is `worse` (3), so a script can stop a worse model from being installed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..training_settings import positive_int
from .common import add_mask_label_argument, add_spacing_arguments, say

HELP = "compare a candidate model with the model in use on labelled frames (paired bootstrap)"
EXIT_OK, EXIT_WORSE = 0, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..comparison import BOOTSTRAP_SAMPLES, VERDICT_RULE

    parser.description = f"{HELP}. The {VERDICT_RULE}. Exit code 3 when worse, else 0."
    parser.add_argument(
        "candidate", type=Path, metavar="CANDIDATE.onnx", help="the new model to judge (ONNX)"
    )
    parser.add_argument(
        "--against",
        type=Path,
        required=True,
        metavar="CURRENT.onnx",
        help="the model in use, to compare with (required)",
    )
    parser.add_argument(
        "folder",
        type=Path,
        metavar="DIR",
        help="labelled frames the candidate did not train on (HC18 layout or images/ + masks/)",
    )
    add_spacing_arguments(parser)
    add_mask_label_argument(parser)
    parser.add_argument(
        "--json",
        type=Path,
        metavar="OUT",
        help="write the comparison as JSON to OUT, never an input (default: print it)",
    )
    parser.add_argument(
        "--bootstrap",
        type=positive_int,
        default=BOOTSTRAP_SAMPLES,
        metavar="N",
        help=f"bootstrap resamples of the paired differences (default: {BOOTSTRAP_SAMPLES})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap resampling (default: 0)"
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the models run (default: auto, CUDA when it works, else the CPU)",
    )


def run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write
    from ..comparison import VERDICT_WORSE, compare_models
    from ..output_paths import check_outputs, labelled_folder_inputs

    if args.json is not None:  # checked before hours of scoring, never an input
        inputs = [args.candidate, args.against, *labelled_folder_inputs(args.folder)]
        check_outputs(
            {"--json": args.json}, [*inputs, *([args.pixel_csv] if args.pixel_csv else [])]
        )
    report = compare_models(
        args.candidate,
        args.against,
        args.folder,
        pixel_csv=args.pixel_csv,
        pixel_mm=args.pixel_size,
        mask_label=args.mask_label,
        device=args.device,
        progress=say,
        samples=args.bootstrap,
        seed=args.seed,
    )
    text = json.dumps(report, indent=2) + "\n"
    if args.json is None:
        print(text, end="")
    else:
        with atomic_write(args.json) as handle:
            handle.write(text)
        say(f"comparison written to {args.json}")
    for line in summary_lines(report):
        say(line)
    return EXIT_WORSE if report["verdict"] == VERDICT_WORSE else EXIT_OK


def summary_lines(report: dict) -> list[str]:
    """The comparison in a few lines of text (also what the app's table shows)."""

    def mean(stats: dict) -> str:
        return "-" if stats["mean"] is None else f"{stats['mean']:.4f}"

    lines = []
    for role in ("current", "candidate"):
        model = report[role]
        text = f"{role}: Dice {mean(model['dice'])} (median {_fmt(model['dice']['median'])})"
        if model["hc_abs_error_mm"]["n"]:
            text += f", HC abs error {mean(model['hc_abs_error_mm'])} mm"
        agreement = model["hc_bland_altman"]
        if agreement:
            text += (
                f", HC bias {agreement['bias']:+.2f} mm "
                f"(limits {agreement['lower']:+.2f} to {agreement['upper']:+.2f})"
            )
        lines.append(text)
    dice = report["difference"]["dice"]
    if dice["mean"] is not None:
        lines.append(
            f"Dice difference {dice['mean']:+.4f} "
            f"[{dice['low']:+.4f}, {dice['high']:+.4f}] over {dice['n']} frames "
            f"(resampling {report['resampled']})"
        )
    if report["frames_worse"]:
        lines.append(f"{len(report['frames_worse'])} frames lose more than 0.05 Dice")
    lines.append(f"verdict: {report['verdict']}")
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
