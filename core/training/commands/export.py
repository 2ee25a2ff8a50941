"""`hc-studio export CKPT --out MODEL.onnx`: a training checkpoint as one ONNX model file.

CKPT may also be an ONNX model exported by HC Studio: it is exported again with new
descriptive metadata (`--name`, `--data`, `--validation` from an `hc-studio evaluate` report),
which is how a trained model is given its shipped name and held-out figures.

The file is self-contained (weights inside), takes `image` (N, 1, H, W) in 0..1 with H, W
multiples of 16 and returns `probability`; it carries the `hc_studio.*` metadata that
`hc-studio measure` and the GUI read. Every export is checked against torch in onnxruntime.
Prints the written path on stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ...commands.common import say
from ...run_folder import BEST_CHECKPOINT, CHECKPOINTS_FOLDER, LAST_CHECKPOINT

HELP = "export a checkpoint (or an HC Studio model) to one ONNX file, checked against torch"
EXIT_OK, EXIT_ERROR = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    layout = f"RUN_DIR/{CHECKPOINTS_FOLDER}/{BEST_CHECKPOINT} or {LAST_CHECKPOINT}"
    parser.add_argument(
        "checkpoint",
        type=Path,
        metavar="CKPT",
        help=f"A checkpoint ({layout}) or an HC Studio ONNX model; required.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="MODEL.onnx",
        help="The ONNX file to write; required.",
    )
    parser.add_argument(
        "--name",
        help="Model name in the metadata (default: the run folder's name for a checkpoint, "
        "the model's own name for an ONNX model).",
    )
    parser.add_argument(
        "--data",
        help="Description of the training data for an ONNX model's metadata (default: the "
        "model's own; a checkpoint carries its own).",
    )
    parser.add_argument(
        "--validation",
        type=Path,
        metavar="EVAL.json",
        help="An `hc-studio evaluate` JSON report whose figures an ONNX model should carry "
        "(default: the model's own figures).",
    )
    parser.add_argument(
        "--flip-average",
        action="store_true",
        help="Make the model average the network's output on each frame and on its left-right "
        "mirror (test-time flip augmentation: one call, twice the network's work). Default: off "
        "for a checkpoint; an ONNX model keeps its own.",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from ..checkpoint import CheckpointError
    from ..export_onnx import (
        ExportParityError,
        export_checkpoint,
        reexport_onnx,
        summarise_evaluation,
    )

    if args.checkpoint.suffix.lower() != ".onnx" and (args.data or args.validation):
        say(
            "hc-studio export: error: --data and --validation apply to an HC Studio ONNX model: "
            "export the checkpoint first, then export that model again with them"
        )
        return EXIT_ERROR
    try:
        validation = None
        if args.validation is not None:
            try:
                validation = summarise_evaluation(json.loads(args.validation.read_text()))
            except (json.JSONDecodeError, AttributeError):
                say(f"hc-studio export: error: {args.validation}: not an evaluation JSON report")
                return EXIT_ERROR
        if args.checkpoint.suffix.lower() == ".onnx":
            flip = True if args.flip_average else None  # None: keep the model's own
            path = reexport_onnx(args.checkpoint, args.out, args.name, args.data, validation, flip)
        else:
            path = export_checkpoint(
                args.checkpoint, args.out, name=args.name, flip_average=args.flip_average
            )
    except (CheckpointError, ExportParityError, OSError) as error:
        say(f"hc-studio export: error: {error}")
        return EXIT_ERROR
    say(f"wrote {path} (checked against torch in onnxruntime)")
    print(path, flush=True)
    return EXIT_OK
